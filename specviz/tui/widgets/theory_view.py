"""What speculative decoding can gain in theory (Leviathan et al. 2023), at an adjustable cost ratio c."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from specviz.decoding import theory
from specviz.render.theory_charts import ALPHAS, MAX_GAMMA, draw_speedup_vs_alpha, draw_speedup_vs_gamma


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
        widget.plt.clear_figure()
        draw_speedup_vs_alpha(widget.plt, c, alpha)
        widget.refresh()

    def _plot_gamma(self, c: float, gamma: int | None) -> None:
        widget = self.query_one("#theory-gamma", PlotextPlot)
        widget.plt.clear_figure()
        draw_speedup_vs_gamma(widget.plt, c, gamma)
        widget.refresh()
