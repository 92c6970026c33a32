"""The ``specviz`` command. Subcommands import heavy modules lazily: torch takes seconds to import."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import get_args

from specviz import __version__
from specviz.decoding.settings import DrafterName, GammaChoice, parse_gamma
from specviz.models.catalogue import ModelError

EXIT_CODES = (
    "exit codes: 0 done; 2 bad input or a model/trace problem (the message says what to do); "
    "3 out of memory; 130 interrupted (what was decoded is kept in the trace and summary)"
)


def _model_args(p: argparse.ArgumentParser) -> None:
    from specviz.models import DEFAULT_DRAFT, DEFAULT_TARGET

    g = p.add_argument_group("models")
    g.add_argument(
        "--target", default=DEFAULT_TARGET, help="packaged name, local folder, .gguf file or hub id"
    )
    g.add_argument(
        "--draft",
        default=DEFAULT_DRAFT,
        help="draft model, as --target; one with another tokenizer is bridged automatically (through "
        "text when greedy, token-level intersection when sampling)",
    )
    g.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:1, mps")
    g.add_argument(
        "--dtype",
        default="auto",
        help="auto (float32 on CPU: token-exact; bfloat16 on CUDA), float32, bfloat16 or float16 (not "
        "token-exact in greedy mode; on a CPU their speed depends on the CPU and the model: measured "
        "here 1.4x faster than float32 for the 1.5B target on a CPU with AMX, 10-20x slower for "
        "smollm2-135m; `specviz bench --reference-dtype` measures it)",
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


def _gamma(text: str) -> GammaChoice:
    """parse_gamma for argparse: its message, instead of argparse's bare "invalid value"."""
    try:
        return parse_gamma(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _decode_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding")
    g.add_argument(
        "--drafter",
        choices=get_args(DrafterName),
        default="model",
        help="model: the draft model, a chain; ngram: prompt lookup; tree, lookup-tree, hybrid: token "
        "trees of γ nodes (draft model, lookup, both)",
    )
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
        help="acceptance rule; threshold (accept when target_prob > τ) and typical are LOSSY, for "
        "comparison only",
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
        prog="specviz", description="See, teach and measure speculative decoding.", epilog=EXIT_CODES
    )
    parser.add_argument("--version", action="version", version=f"specviz {__version__}")
    sub = parser.add_subparsers(dest="command")

    replay = sub.add_parser("replay", help="open the UI on a recorded trace (no model needed)")
    replay.add_argument("trace", type=Path)
    replay.add_argument(
        "--headless", action="store_true", help="print the recorded stream and summary instead"
    )

    run = sub.add_parser("run", help="decode a prompt speculatively (UI, or --headless)", epilog=EXIT_CODES)
    run.add_argument(
        "prompt", nargs="?", default=None, help="the prompt (default: a palindrome-function request)"
    )
    run.add_argument(
        "--prompt-file",
        type=Path,
        metavar="PATH",
        help="read the prompt from a UTF-8 file ('-': standard input)",
    )
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

    from specviz.commands.bench import add_parser as add_bench_parser

    add_bench_parser(sub, _model_args)

    cost = sub.add_parser("lossy-cost", help="exact total-variation distance of lossy rules on toy models")
    cost.add_argument("--tau", type=float, default=0.1, help="threshold rule: accept when target_prob > τ")
    cost.add_argument("--typical-epsilon", type=float, default=0.09)
    cost.add_argument("--typical-delta", type=float, default=0.3)
    cost.add_argument("--temperature", type=float, default=1.0)
    cost.add_argument("--gamma", type=int, default=2)
    cost.add_argument("--seeds", type=int, default=5, help="random toy model pairs to average over")

    from specviz.commands.follow import add_parser as add_follow_parser
    from specviz.commands.serve import add_parser as add_serve_parser

    add_follow_parser(sub)
    add_serve_parser(sub)

    theory = sub.add_parser("theory", help="Leviathan et al. expected speedup for given alpha and c")
    theory.add_argument("--alpha", type=float, default=0.8)
    theory.add_argument("--c", type=float, default=0.4, help="draft step cost / target step cost")
    theory.add_argument("--max-gamma", type=int, default=12)
    return parser


COMMANDS = ("run", "replay", "follow", "serve", "models", "bench", "theory", "lossy-cost")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `specviz` and `specviz --target X --draft Y` open the UI: they mean `specviz run ...`.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", "--chat", *argv]
    args = parser.parse_args(argv)
    try:
        if args.command in COMMANDS:
            # Each subcommand's module is imported only when it runs: torch takes seconds to import.
            module = importlib.import_module(f"specviz.commands.{args.command.replace('-', '_')}")
            return int(module.main(args))
        parser.print_help()
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except ModelError as exc:  # a model or cache problem the message tells the user how to fix
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
