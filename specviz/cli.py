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
        help="auto (float32 on CPU: token-exact, and with packed weights about as fast as bf16; bfloat16 "
        "on CUDA), float32, bfloat16 (not token-exact in greedy mode), float16",
    )
    g.add_argument("--device-map", default=None, help="e.g. 'auto' to spread the target over several GPUs")
    g.add_argument(
        "--draft-quant",
        default="auto",
        choices=["auto", "int8", "none"],
        help="make the draft cheaper (lossless: only the target must be exact); auto = int8 on CPU float32",
    )
    g.add_argument(
        "--pack",
        default="auto",
        choices=["auto", "none"],
        help="auto = pre-pack float32 Linear weights for oneDNN on CPU (faster steps, near-flat "
        "verification cost); none = plain torch kernels",
    )
    g.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow custom model code from the hub (off by default)",
    )


def _gamma(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"γ must be a whole number or 'auto', not {text!r}") from None


def _decode_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding")
    g.add_argument("--drafter", choices=["model", "ngram"], default="model")
    g.add_argument(
        "--gamma",
        type=_gamma,
        default=8,
        help="drafted tokens per iteration (at most), or 'auto': each iteration drafts the number of "
        "tokens (0 to 16) that measured costs and the running acceptance predict to be fastest",
    )
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
        "--adaptive",
        action="store_true",
        help="adapt the draft length per iteration (+2 after full acceptance, -1 otherwise); γ is the cap",
    )
    g.add_argument(
        "--draft-confidence",
        type=float,
        default=0.4,
        metavar="P",
        help="stop drafting early when the draft's top probability falls below P (adaptive γ, lossless; 0 = off)",
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

    cost = sub.add_parser("lossy-cost", help="exact total-variation distance of lossy rules on toy models")
    cost.add_argument("--tau", type=float, default=0.1, help="threshold rule: accept when target_prob > τ")
    cost.add_argument("--typical-epsilon", type=float, default=0.09)
    cost.add_argument("--typical-delta", type=float, default=0.3)
    cost.add_argument("--temperature", type=float, default=1.0)
    cost.add_argument("--gamma", type=int, default=2)
    cost.add_argument("--seeds", type=int, default=5, help="random toy model pairs to average over")

    theory = sub.add_parser("theory", help="Leviathan et al. expected speedup for given alpha and c")
    theory.add_argument("--alpha", type=float, default=0.8)
    theory.add_argument("--c", type=float, default=0.4, help="draft step cost / target step cost")
    theory.add_argument("--max-gamma", type=int, default=12)
    return parser


COMMANDS = ("run", "replay", "models", "bench", "theory", "lossy-cost")


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
        if args.command == "lossy-cost":
            return _lossy_cost_command(args)
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
    from specviz.decoding.events import RunFinished, RunStarted, TraceError, read_trace
    from specviz.decoding.metrics import RunStats

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


def _lossy_cost_command(args: Any) -> int:
    """What a shortcut costs, computed exactly: the TV distance between each rule's output
    distribution (every branch of the speculative loop enumerated) and the target's."""
    from rich.console import Console
    from rich.table import Table

    from specviz.decoding.acceptance import verify
    from specviz.decoding.backends import TableLM
    from specviz.decoding.lossy import (
        exact_output_distribution,
        exact_target_distribution,
        threshold_verifier,
        total_variation,
        typical_verifier,
    )
    from specviz.decoding.sampling import SamplingConfig

    sampling = SamplingConfig(temperature=args.temperature)
    rules = {
        "lossless (rejection sampling)": verify,
        f"threshold τ={args.tau} (the lab's rule)": threshold_verifier(args.tau),
        f"typical ε={args.typical_epsilon} δ={args.typical_delta}": typical_verifier(
            args.typical_epsilon, args.typical_delta
        ),
    }
    table = Table(
        title=f"TV distance to the target's output distribution (vocab 4, 3 tokens, γ={args.gamma})"
    )
    table.add_column("rule")
    table.add_column("mean TV", justify="right")
    table.add_column("max TV", justify="right")
    for name, rule in rules.items():
        tvs = []
        for seed in range(args.seeds):
            target = TableLM(4, order=2, seed=2 * seed + 1, sharpness=1.0)
            draft = TableLM(4, order=2, seed=2 * seed + 2, sharpness=1.0)
            exact = exact_target_distribution(target, [1], 3, sampling)
            got = exact_output_distribution(target, draft, [1], 3, sampling, args.gamma, rule)
            tvs.append(total_variation(exact, got))
        table.add_row(name, f"{sum(tvs) / len(tvs):.4f}", f"{max(tvs):.4f}")
    Console().print(table)
    return 0


def _theory_command(args: Any) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

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
    console = Console()
    console.print(table)
    import plotext as plt

    from specviz.theory_charts import draw_speedup_vs_alpha, draw_speedup_vs_gamma

    # The UI's theory tab, headless: this α and its best γ are marked on the curves.
    for draw, mark in ((draw_speedup_vs_alpha, args.alpha), (draw_speedup_vs_gamma, best)):
        plt.clf()
        plt.plotsize(max(40, min(100, console.width - 2)), 18)
        plt.theme("clear")
        draw(plt, args.c, mark)
        console.print(Text.from_ansi(plt.build()), soft_wrap=True)
    print(json.dumps({"alpha": args.alpha, "c": args.c, "best_gamma": best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
