"""The ``specviz`` command. Subcommands import heavy modules lazily: torch takes seconds to import."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from specviz import __version__

DEFAULT_PROMPT = "Write a Python function that checks whether a string is a palindrome."


def _model_args(p: argparse.ArgumentParser) -> None:
    from specviz.models import DEFAULT_DRAFT, DEFAULT_TARGET

    g = p.add_argument_group("models")
    g.add_argument(
        "--target", default=DEFAULT_TARGET, help="packaged name, local folder, .gguf file or hub id"
    )
    g.add_argument("--draft", default=DEFAULT_DRAFT, help="draft model (same tokenizer as the target)")
    g.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:1, mps")
    g.add_argument(
        "--dtype",
        default="auto",
        help="auto (fastest measured per device: bfloat16 on CPUs with AMX/AVX512-BF16, else float32), float32, bfloat16, float16",
    )
    g.add_argument("--device-map", default=None, help="e.g. 'auto' to spread the target over several GPUs")
    g.add_argument(
        "--draft-quant",
        default="auto",
        choices=["auto", "int8", "none"],
        help="make the draft cheaper (lossless: only the target must be exact); auto = int8 on CPU float32",
    )
    g.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow custom model code from the hub (off by default)",
    )


def _decode_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding")
    g.add_argument("--drafter", choices=["model", "ngram"], default="model")
    g.add_argument("--gamma", type=int, default=4, help="drafted tokens per iteration")
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--max-new-tokens", type=int, default=128)
    g.add_argument("--chat", action="store_true", help="wrap the prompt in the target's chat template")
    g.add_argument(
        "--cross-method",
        choices=["auto", "text", "tli"],
        default="auto",
        help="draft and target tokenizers differ: text (greedy, via re-tokenisation) or tli (sampling, "
        "token-level intersection, lossless); auto picks by temperature",
    )
    g.add_argument(
        "--rule",
        choices=["lossless", "threshold", "typical"],
        default="lossless",
        help="acceptance rule; threshold (the lab's p>τ) and typical are LOSSY, for comparison only",
    )
    g.add_argument("--tau", type=float, default=0.1, help="threshold rule: accept when target_prob > τ")
    g.add_argument("--typical-epsilon", type=float, default=0.09)
    g.add_argument("--typical-delta", type=float, default=0.3)
    g.add_argument(
        "--draft-confidence",
        type=float,
        default=None,
        metavar="P",
        help="stop drafting early when the draft's top probability falls below P (adaptive γ, lossless)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specviz", description="See, teach and measure speculative decoding."
    )
    parser.add_argument("--version", action="version", version=f"specviz {__version__}")
    sub = parser.add_subparsers(dest="command")

    replay = sub.add_parser("replay", help="open the UI on a recorded trace (no model needed)")
    replay.add_argument("trace", type=Path)
    replay.add_argument(
        "--headless", action="store_true", help="print the recorded stream and summary instead"
    )

    run = sub.add_parser("run", help="decode a prompt speculatively (UI, or --headless)")
    run.add_argument("prompt", nargs="?", default=DEFAULT_PROMPT)
    run.add_argument(
        "--headless", action="store_true", help="print to the terminal instead of opening the UI"
    )
    run.add_argument("--trace", type=Path, help="write every event as JSON lines to this file")
    run.add_argument("--json", type=Path, help="write the run summary as JSON to this file")
    run.add_argument("--baseline", action="store_true", help="also run plain decoding with the same settings")
    run.add_argument("--hide-rejected", action="store_true", help="print only committed text")
    _model_args(run)
    _decode_args(run)

    models = sub.add_parser("models", help="list the packaged models, or provision them")
    models.add_argument(
        "--pull", nargs="*", metavar="NAME", help="provision these (no name: the default pair)"
    )

    from specviz.bench.command import add_parser as add_bench_parser

    add_bench_parser(sub, _model_args)

    theory = sub.add_parser("theory", help="Leviathan et al. expected speedup for given alpha and c")
    theory.add_argument("--alpha", type=float, default=0.8)
    theory.add_argument("--c", type=float, default=0.4, help="draft step cost / target step cost")
    theory.add_argument("--max-gamma", type=int, default=12)
    return parser


COMMANDS = ("run", "replay", "models", "bench", "theory")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `specviz` and `specviz --target X --draft Y` open the UI: they mean `specviz run ...`.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", "--chat", *argv]
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            from specviz.run_command import run_command

            return run_command(args)
        if args.command == "replay":
            return _replay_command(args)
        if args.command == "models":
            return _models_command(args)
        if args.command == "theory":
            return _theory_command(args)
        if args.command == "bench":
            from specviz.bench.command import bench_command

            return bench_command(args)
        parser.print_help()
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def _replay_command(args: Any) -> int:
    if not args.headless:
        from specviz.ui_command import open_replay

        return open_replay(args.trace)
    from rich.console import Console

    from specviz.console import StreamPrinter, summary_dict, summary_table
    from specviz.decoding.events import RunStarted, TraceError, read_trace
    from specviz.decoding.metrics import RunStats

    console = Console(highlight=False)
    printer = StreamPrinter(console)
    started, stats = None, RunStats()
    try:
        for event in read_trace(args.trace):
            if isinstance(event, RunStarted):
                if started is not None:
                    console.print(summary_table(summary_dict(started, None, stats)))
                started, stats = event, RunStats()
            stats.observe(event)
            printer(event)
    except TraceError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    if started is not None:
        console.print(summary_table(summary_dict(started, None, stats)))
    return 0


def _models_command(args: Any) -> int:
    from rich.console import Console
    from rich.table import Table

    from specviz.models import DEFAULT_DRAFT, DEFAULT_TARGET, ModelError, list_models
    from specviz.progress import provision_with_progress

    console = Console()
    if args.pull is not None:
        for name in args.pull or [DEFAULT_TARGET, DEFAULT_DRAFT]:
            try:
                path = provision_with_progress(name, console)
            except ModelError as exc:
                console.print(f"[red]error:[/red] {exc}")
                return 2
            console.print(f"{name}: ready at {path}")
    table = Table(title="packaged models (usable as --target/--draft)")
    for col in ("name", "state", "description", "path"):
        table.add_column(col)
    for row in list_models():
        table.add_row(row["name"], row["state"], row["description"], row["path"])
    console.print(table)
    console.print("Any local checkpoint folder, .gguf file or Hugging Face hub id works too.")
    return 0


def _theory_command(args: Any) -> int:
    from rich.console import Console
    from rich.table import Table

    from specviz.decoding.theory import best_gamma, expected_tokens, speedup

    if not 0 <= args.alpha <= 1:
        print("error: --alpha must be in [0, 1]", file=sys.stderr)
        return 2
    table = Table(title=f"Leviathan et al. 2023: α={args.alpha}, c={args.c}")
    for col in ("γ", "expected tokens / iteration", "walltime speedup"):
        table.add_column(col, justify="right")
    best = best_gamma(args.alpha, args.c, args.max_gamma)
    for g in range(1, args.max_gamma + 1):
        mark = " ◀ best" if g == best else ""
        table.add_row(
            str(g), f"{expected_tokens(args.alpha, g):.2f}", f"{speedup(args.alpha, g, args.c):.2f}x{mark}"
        )
    Console().print(table)
    print(json.dumps({"alpha": args.alpha, "c": args.c, "best_gamma": best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
