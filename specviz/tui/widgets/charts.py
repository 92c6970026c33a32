"""Four plots of the run up to the playhead: acceptance over time and by position, accepted lengths, speedup."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Grid
from textual_plotext import PlotextPlot

from specviz.decoding import theory
from specviz.decoding.stats import RunStats
from specviz.tui.recording import Recording

MAX_GAMMA = 16


@dataclass(frozen=True)
class ChartData:
    """Everything the charts draw, computed once per update (tests read it back)."""

    running: list[float]
    per_iteration: list[float]
    by_position: list[float]
    lengths: list[int]
    gamma: int
    alpha_estimate: float | None
    cost_ratio: float | None
    theory_curve: list[float]
    measured_speedup: float | None

    @classmethod
    def of(cls, run: Recording, n: int, baseline: RunStats | None = None) -> ChartData:
        """The charts of ``run`` after ``n`` iterations; ``baseline`` is a plain run's stats, if any."""
        stats = run.stats(n)
        gamma = run.started.gamma if run.started is not None else 0
        cost_ratio = stats.cost_ratio(baseline)
        curve: list[float] = []
        if stats.alpha_estimate is not None and cost_ratio is not None:
            alpha = min(1.0, max(0.0, stats.alpha_estimate))
            curve = [theory.speedup(alpha, g, cost_ratio) for g in range(1, MAX_GAMMA + 1)]
        return cls(
            running=running_acceptance(run, n),
            per_iteration=[
                it.n_accepted / len(it.drafted) if it.drafted else 0.0 for it in run.iterations[:n]
            ],
            by_position=stats.per_position_acceptance,
            lengths=list(stats.length_counts),
            gamma=gamma,
            alpha_estimate=stats.alpha_estimate,
            cost_ratio=cost_ratio,
            theory_curve=curve,
            measured_speedup=stats.speedup(baseline),
        )


def running_acceptance(run: Recording, n: int) -> list[float]:
    """Acceptance rate after each of the first ``n`` iterations, 0.0 until something is drafted, so
    the line has a point per iteration."""
    return [rate if (rate := run.stats(i).acceptance_rate) is not None else 0.0 for i in range(1, n + 1)]


class ChartsPanel(Grid, can_focus=True):
    DEFAULT_CSS = """
    ChartsPanel {
        grid-size: 2 2;
        grid-gutter: 0 1;
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._data: ChartData | None = None

    @property
    def data(self) -> ChartData | None:
        return self._data

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="chart-running")
        yield PlotextPlot(id="chart-position")
        yield PlotextPlot(id="chart-lengths")
        yield PlotextPlot(id="chart-speedup")

    def update_data(self, data: ChartData) -> None:
        if data == self._data:
            return
        self._data = data
        self._draw_running(data)
        self._draw_position(data)
        self._draw_lengths(data)
        self._draw_speedup(data)

    def _plot(self, id: str) -> PlotextPlot:
        return self.query_one(f"#{id}", PlotextPlot)

    def _draw_running(self, data: ChartData) -> None:
        widget = self._plot("chart-running")
        plt = widget.plt
        plt.clear_figure()
        plt.title("acceptance rate by iteration")
        if data.running:
            xs = list(range(1, len(data.running) + 1))
            plt.scatter(xs, data.per_iteration, marker="dot", label="this iteration")
            plt.plot(xs, data.running, label="running", marker="braille")
        plt.ylim(0, 1)
        widget.refresh()

    def _draw_position(self, data: ChartData) -> None:
        widget = self._plot("chart-position")
        plt = widget.plt
        plt.clear_figure()
        plt.title("P(accept | reached) by draft position")
        if data.by_position:
            plt.bar([str(i + 1) for i in range(len(data.by_position))], data.by_position, width=0.5)
        plt.ylim(0, 1)
        widget.refresh()

    def _draw_lengths(self, data: ChartData) -> None:
        widget = self._plot("chart-lengths")
        plt = widget.plt
        plt.clear_figure()
        plt.title("tokens per iteration (incl. correction)")
        if data.lengths:
            ks = list(range(1, len(data.lengths)))
            plt.bar([str(k) for k in ks], data.lengths[1:], width=0.5)
        widget.refresh()

    def _draw_speedup(self, data: ChartData) -> None:
        widget = self._plot("chart-speedup")
        plt = widget.plt
        plt.clear_figure()
        if not data.theory_curve or data.alpha_estimate is None or data.cost_ratio is None:
            plt.title("speedup: needs a speculative run")
            widget.refresh()
            return
        plt.title(f"speedup vs γ at α≈{data.alpha_estimate:.2f}, c={data.cost_ratio:.2f}")
        gammas = list(range(1, MAX_GAMMA + 1))
        plt.plot(gammas, data.theory_curve, label="theory", marker="braille")
        if 1 <= data.gamma <= MAX_GAMMA:
            plt.scatter(
                [data.gamma], [data.theory_curve[data.gamma - 1]], marker="o", label=f"γ={data.gamma}"
            )
        if data.measured_speedup is not None and data.gamma >= 1:
            plt.scatter([data.gamma], [data.measured_speedup], marker="x", label="measured")
        plt.hline(1.0)
        top = max([*data.theory_curve, data.measured_speedup or 0.0, 1.0])
        plt.ylim(0, top * 1.35)  # headroom, so the legend does not hide the curve
        widget.refresh()
