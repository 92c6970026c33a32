"""``specviz run``: load models, decode, stream, summarise; Ctrl-C keeps what was decoded."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from specviz.commands.output_files import (
    TraceRecorder,
    check_writable,
    survive_closed_stdout,
    write_json_atomically,
)
from specviz.decoding.decoder import PromptTooLongError
from specviz.decoding.events import Event, Iteration, RunFinished
from specviz.decoding.settings import RunSettings, gamma_fields
from specviz.decoding.stats import RunStats, summary_of
from specviz.models import ModelError, oom_errors
from specviz.models.loading import dtype_advice
from specviz.models.memory import peak_rss_bytes
from specviz.render.console import StreamPrinter, summary_table
from specviz.session import ModelOptions, Session

DEFAULT_PROMPT = "Write a Python function that checks whether a string is a palindrome."


def options_from_args(args: Any, with_draft: bool) -> ModelOptions:
    """The model flags every model-loading command shares (cli._model_args)."""
    return ModelOptions(
        target=args.target,
        draft=args.draft if with_draft else None,
        device=args.device,
        dtype=args.dtype,
        device_map=args.device_map,
        trust_remote_code=args.trust_remote_code,
        draft_quant=args.draft_quant,
        pack=args.pack,
    )


def settings_from_args(args: Any) -> RunSettings:
    """The decoding flags (cli._decode_args) as settings; raises ValueError naming a bad flag."""
    gamma, auto_gamma = gamma_fields(args.gamma)
    return RunSettings(
        prompt=_prompt(args),
        drafter=args.drafter,
        gamma=gamma,
        auto_gamma=auto_gamma,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        chat=args.chat,
        draft_confidence=args.draft_confidence,
        adaptive=args.adaptive,
        cross_method=args.cross_method,
        rule=args.rule,
        tau=args.tau,
        typical_epsilon=args.typical_epsilon,
        typical_delta=args.typical_delta,
    )


def _prompt(args: Any) -> str:
    """The positional prompt, or ``--prompt-file`` (``-``: standard input) for long prompts."""
    prompt_file = getattr(args, "prompt_file", None)
    if prompt_file is None:
        return args.prompt if args.prompt is not None else DEFAULT_PROMPT
    if args.prompt is not None:
        raise ValueError("give the prompt either as an argument or with --prompt-file, not both")
    try:
        raw = sys.stdin.buffer.read() if str(prompt_file) == "-" else Path(prompt_file).read_bytes()
    except OSError as exc:
        raise ValueError(f"--prompt-file {prompt_file}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"--prompt-file {prompt_file} is not UTF-8 text (byte {exc.start}): re-encode it as UTF-8"
        ) from None


def consume(events: Iterator[Event], sinks: list[Any], decode: Any = None) -> RunStats:
    """Feed every event to every sink and return the run's stats. Ctrl-C closes the run as
    ``cancelled`` (the sinks see that event, so a trace stays well-formed) and returns what was
    decoded."""
    stats = RunStats()
    generated: list[int] = []
    try:
        for event in events:
            stats.observe(event)
            if isinstance(event, Iteration):
                generated.extend(event.new_token_ids)
            for sink in sinks:
                sink(event)
            if isinstance(event, RunFinished):
                return stats
    except KeyboardInterrupt:
        cancelled = RunFinished(
            reason="cancelled",
            text=decode(generated) if decode else "",
            token_ids=tuple(generated),
            iterations=stats.iterations,
            wall_time_s=stats.draft_time_s + stats.verify_time_s,
        )
        stats.observe(cancelled)
        for sink in sinks:
            sink(cancelled)
    return stats


def main(args: Any) -> int:
    console = Console(highlight=False)
    survive_closed_stdout(console)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        # Checked before the UI opens and before any model loads: a bad flag or an output path
        # that cannot be written is a one-line error at once, not a traceback minutes later.
        settings = settings_from_args(args)
        for path, flag in ((args.trace, "--trace"), (getattr(args, "json", None), "--json")):
            if path is not None:
                check_writable(path, flag)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    options = options_from_args(args, with_draft=settings.uses_draft_model)
    if not args.headless:
        # The UI opens at once and loads the models in a worker, showing the progress itself.
        from specviz.commands.ui import open_live

        open_live(options, settings, args.trace)
        return 0
    advice = dtype_advice(options.dtype, options.device)
    if advice:
        err.print(f"[yellow]warning:[/yellow] {escape(advice)}")
    recorder = TraceRecorder(args.trace) if args.trace else None
    try:
        session = load_session(options, err)
        session.warm_up()
        if settings.auto_gamma:
            with err.status("measuring the target's verify cost T(k) for automatic γ (once per setup)…"):
                session.costs(settings.gamma + 1)
        with ExitStack() as stack:
            # The trace comes first: an interrupt while printing an event still records it. It is
            # opened at the first event, so a run that fails before one leaves an old trace alone.
            recorders: list[Any] = []
            if recorder is not None:
                stack.callback(recorder.close)
                recorders.append(recorder)
            sinks = [*recorders, StreamPrinter(console, show_rejected=not args.hide_rejected)]
            stats = consume(session.speculative(settings), sinks, session.codec.decode)
            interrupted = _cancelled(stats)
            baseline: RunStats | None = None
            if args.baseline and not interrupted:
                console.print("[dim]plain decoding baseline (same target, settings and seed)…[/dim]")
                # The trace gets the baseline too: `specviz replay` can then race the two runs.
                plain = consume(session.plain(settings), recorders)
                interrupted = _cancelled(plain)
                baseline = None if interrupted else plain
            summary = summary_of(stats, baseline)
            summary["peak_rss_bytes"] = peak_rss_bytes()  # the whole process: models, caches, runs
    except (ModelError, PromptTooLongError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        written = recorder is not None and recorder.events > 0
        err.print(
            "\n[yellow]interrupted[/yellow]" + (f": the trace so far is in {args.trace}" if written else "")
        )
        return 130
    except oom_errors() as exc:
        err.print(
            f"[red]error:[/red] out of memory on {options.device}: {str(exc).splitlines()[0]}\n"
            "Try --dtype bfloat16, a smaller --max-new-tokens or --gamma, or --device cpu."
        )
        return 3
    if args.json:
        write_json_atomically(args.json, summary)
    console.print(summary_table(summary))
    if args.json:
        console.print(f"[dim]summary written to {args.json}[/dim]")
    if interrupted:
        err.print("[yellow]interrupted: the summary covers what was decoded[/yellow]")
        return 130
    return 0


def _cancelled(stats: RunStats) -> bool:
    return stats.finished is not None and stats.finished.reason == "cancelled"


def load_session(options: ModelOptions, err: Console) -> Session:
    """Provision (with a progress bar) and load the models, naming each stage on ``err``."""
    from specviz.models import PACKAGED, is_provisioned
    from specviz.render.progress import provision_with_progress

    for spec in (options.target, options.draft):
        if spec in PACKAGED and not is_provisioned(spec):
            provision_with_progress(spec, err)
    with err.status(
        f"loading {options.target}" + (f" and {options.draft}" if options.draft else "")
    ) as status:
        return Session(options, progress=lambda stage, done, total: status.update(f"{stage}…"))
