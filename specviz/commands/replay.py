"""``specviz replay TRACE``: the UI on a recorded trace, or its stream and summary headless."""

from __future__ import annotations

from typing import Any


def main(args: Any) -> int:
    if not args.headless:
        from specviz.commands.ui import open_replay

        return open_replay(args.trace)
    from rich.console import Console
    from rich.markup import escape

    from specviz.decoding.events import RunFinished, RunStarted, TraceError, load_trace
    from specviz.decoding.stats import RunStats, summary_of
    from specviz.render.console import StreamPrinter, summary_table

    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        # A damaged trace is replayed up to its last whole event; what it lacks is said after.
        contents = load_trace(args.trace)
    except TraceError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    printer = StreamPrinter(console)
    stats = RunStats()  # of the run being read; a trace may hold several (a race)
    for event in contents.events:
        if isinstance(event, RunStarted):
            stats = RunStats()
        stats.observe(event)
        printer(event)
        if isinstance(event, RunFinished):
            console.print(summary_table(summary_of(stats)))
            stats = RunStats()
    if stats.iterations:  # a run cut short (e.g. Ctrl-C while recording, or a damaged file)
        console.print()
        console.print(summary_table(summary_of(stats)))
    for problem in contents.problems:
        err.print(f"[yellow]warning:[/yellow] {escape(problem)}")
    return 0
