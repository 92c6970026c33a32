"""``specviz theory``: Leviathan et al.'s expected speedup per γ, the best γ, and the theory tab's charts."""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def main(args: Any) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from specviz.decoding.theory import best_gamma, expected_tokens, speedup

    problem = _invalid(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
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

    from specviz.render.theory_charts import draw_speedup_vs_alpha, draw_speedup_vs_gamma

    # The UI's theory tab, headless: this α and its best γ are marked on the curves.
    for draw, mark in ((draw_speedup_vs_alpha, args.alpha), (draw_speedup_vs_gamma, best)):
        plt.clf()
        plt.plotsize(max(40, min(100, console.width - 2)), 18)
        plt.theme("clear")
        draw(plt, args.c, mark)
        console.print(Text.from_ansi(plt.build()), soft_wrap=True)
    print(json.dumps({"alpha": args.alpha, "c": args.c, "best_gamma": best}))
    return 0


def _invalid(args: Any) -> str | None:
    """What is wrong with the arguments (None when they make sense); NaN fails every comparison."""
    if not 0 <= args.alpha <= 1:
        return f"--alpha must be in [0, 1] (the chance a drafted token is accepted), got {args.alpha}"
    if not (math.isfinite(args.c) and args.c >= 0):
        return f"--c must be a finite number >= 0 (draft step time / target step time), got {args.c}"
    if not 1 <= args.max_gamma <= 64:
        return f"--max-gamma must be between 1 and 64, got {args.max_gamma}"
    return None
