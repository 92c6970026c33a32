"""``specviz replay TRACE``: the UI on a recorded trace, or its stream and summary headless."""

from __future__ import annotations

from typing import Any


def main(args: Any) -> int:
    if not args.headless:
        from specviz.commands.ui import open_replay

        return open_replay(args.trace)
    from rich.console import Console

    from specviz.decoding.events import RunFinished, RunStarted, TraceError, read_trace
    from specviz.decoding.stats import RunStats
    from specviz.render.console import StreamPrinter, summary_dict, summary_table

    console = Console(highlight=False)
    printer = StreamPrinter(console)
    started: RunStarted | None = None
    finished: RunFinished | None = None
    stats = RunStats()
    try:
        for event in read_trace(args.trace):
            if isinstance(event, RunStarted):
                started, finished, stats = event, None, RunStats()
            elif isinstance(event, RunFinished):
                finished = event
            stats.observe(event)
            printer(event)
            if isinstance(event, RunFinished) and started is not None:
                console.print(summary_table(summary_dict(started, finished, stats)))
    except TraceError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    if started is not None and finished is None:  # a trace cut short (e.g. Ctrl-C while recording)
        console.print(summary_table(summary_dict(started, None, stats)))
    return 0
