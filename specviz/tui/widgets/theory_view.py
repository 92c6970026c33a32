"""What speculative decoding can gain in theory (Leviathan et al. 2023), at an adjustable cost ratio c."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from specviz.decoding import theory

GAMMAS = (3, 5, 7)
ALPHAS = (0.5, 0.7, 0.9)
MAX_GAMMA = 16


def theory_summary(c: float, source: str) -> str:
    """Markup: the cost ratio in use (``source``: measured, assumed or set), formulas, best γ for a few α."""
    best = "  ".join(
        f"α {a:g} → γ {theory.best_gamma(a, c, MAX_GAMMA)} "
        f"({theory.speedup(a, theory.best_gamma(a, c, MAX_GAMMA), c):.2f}×)"
        for a in ALPHAS
    )
    return (
        f"[b]c = {c:.2f}[/] [$text-muted]{source}, \\[ ] adjust[/]   [$text-muted]best[/] {best}\n"
        "[$text-muted]tokens/iteration[/] (1−α^(γ+1))/(1−α)   "
        "[$text-muted]speedup[/] (1−α^(γ+1))/((1−α)(γc+1))   [$text-muted]Leviathan et al. 2023[/]"
    )


class TheoryPanel(Vertical, can_focus=True):
    DEFAULT_CSS = """
    TheoryPanel {
        height: 1fr;
        #theory-summary { height: auto; padding: 0 1; }
        Horizontal { height: 1fr; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._c: float | None = None
        self._drawn_for: tuple[float, str, float | None, int | None] | None = None

    @property
    def cost_ratio(self) -> float | None:
        return self._c

    def compose(self) -> ComposeResult:
        yield Static(id="theory-summary")
        with Horizontal():
            yield PlotextPlot(id="theory-alpha")
            yield PlotextPlot(id="theory-gamma")

    def set_context(
        self, c: float, *, source: str, alpha: float | None = None, gamma: int | None = None
    ) -> None:
        """Redraw for cost ratio ``c``, marking the run's estimated α and its γ when known."""
        c = round(max(0.0, min(c, 2.0)), 4)
        context = (c, source, None if alpha is None else round(alpha, 3), gamma)
        if context == self._drawn_for:
            return
        self._drawn_for = context
        self._c = c
        self.query_one("#theory-summary", Static).update(theory_summary(c, source))
        self._plot_alpha(c, context[2])
        self._plot_gamma(c, gamma)

    def _plot_alpha(self, c: float, alpha: float | None) -> None:
        widget = self.query_one("#theory-alpha", PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        plt.title("speedup vs α" + (f" (run: α≈{alpha:.2f})" if alpha is not None else ""))
        alphas = [i / 100 for i in range(100)]
        for g in GAMMAS:
            plt.plot(alphas, [theory.speedup(a, g, c) for a in alphas], label=f"γ={g}", marker="braille")
        plt.hline(1.0)
        if alpha is not None:
            plt.vline(alpha)
        plt.xlabel("α")
        widget.refresh()

    def _plot_gamma(self, c: float, gamma: int | None) -> None:
        widget = self.query_one("#theory-gamma", PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        plt.title("speedup vs γ" + (f" (run: γ={gamma})" if gamma else ""))
        gammas = list(range(1, MAX_GAMMA + 1))
        for a in ALPHAS:
            plt.plot(gammas, [theory.speedup(a, g, c) for g in gammas], label=f"α={a:g}", marker="braille")
        plt.hline(1.0)
        if gamma:
            plt.vline(gamma)
        plt.xlabel("γ")
        widget.refresh()
