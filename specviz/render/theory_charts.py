"""Two plots of the expected speedup (Leviathan et al. 2023), for the UI's theory tab and
for ``specviz theory``: speedup vs α for a few γ, and speedup vs γ for a few α, at cost ratio c.

``plt`` is plotext's module or a textual-plotext widget's ``plt``: both draw the same way.
"""

from __future__ import annotations

from typing import Any

from specviz.decoding import theory

GAMMAS = (3, 5, 7)
ALPHAS = (0.5, 0.7, 0.9)
MAX_GAMMA = 16


def draw_speedup_vs_alpha(plt: Any, c: float, alpha: float | None = None) -> None:
    """Curves for γ in GAMMAS over α in [0, 1); a vertical line at the run's α when known."""
    plt.title("speedup vs α" + (f" (run: α≈{alpha:.2f})" if alpha is not None else ""))
    alphas = [i / 100 for i in range(100)]
    for g in GAMMAS:
        plt.plot(alphas, [theory.speedup(a, g, c) for a in alphas], label=f"γ={g}", marker="braille")
    plt.hline(1.0)
    if alpha is not None:
        plt.vline(alpha)
    plt.xlabel("α")


def draw_speedup_vs_gamma(plt: Any, c: float, gamma: int | None = None) -> None:
    """Curves for α in ALPHAS over γ = 1..MAX_GAMMA; a vertical line at the run's γ when known."""
    plt.title("speedup vs γ" + (f" (run: γ={gamma})" if gamma else ""))
    gammas = list(range(1, MAX_GAMMA + 1))
    for a in ALPHAS:
        plt.plot(gammas, [theory.speedup(a, g, c) for g in gammas], label=f"α={a:g}", marker="braille")
    plt.hline(1.0)
    if gamma:
        plt.vline(gamma)
    plt.xlabel("γ")
