"""Four plots of the run up to the playhead: acceptance over time and by position, accepted lengths, speedup.

The speedup plot draws three things a student can check against each other: Leviathan et al.'s
curve (verifying γ + 1 tokens costs one target step), this machine's curve (the same arithmetic on
measured T(k) and draft step, :meth:`~specviz.decoding.theory.CostTable.speedup`), and the speedup
the run measured against a plain run, with a line under it saying why the first two differ.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from specviz.decoding import theory
from specviz.decoding.stats import RunStats, costs_from_timings
from specviz.decoding.theory import CostTable
from specviz.tui.recording import Recording

MAX_GAMMA = 16

COST_SOURCES = {
    "measured": "T(k) measured",
    "timings": "T(k) from the runs' timings",
}

# Each series of the speedup plot: (glyph in the note, plotext marker and colour, Rich colour). The
# note under the plot is its legend: a plotext legend would cover the curves in a quarter screen.
SERIES = {
    "leviathan": ("⠒⠒", "blue+", "bright_blue"),
    "machine": ("••", "green+", "bright_green"),
    "measured": ("x", "red+", "bright_red"),
}


@dataclass(frozen=True)
class KnownCosts:
    """This machine's costs for a run: T(k) and the draft step, and where they come from."""

    table: CostTable
    source: str  # a key of COST_SOURCES: the session's measured table, or the runs' recorded timings


def known_costs(
    run: Recording, n: int, baseline: Recording | None = None, measured: CostTable | None = None
) -> KnownCosts | None:
    """What is known of this machine's costs for ``run`` after ``n`` iterations, torch-free.

    ``measured``: the live session's table (every k timed the careful way, see costs.py), when it
    was measured for the run's models; else the run's own iteration timings, with a plain
    ``baseline``'s for T(1). None when neither times a plain step: nothing is made up.
    """
    if measured is not None:
        return KnownCosts(measured, "measured")
    plain = baseline.iterations if baseline is not None else []
    table = costs_from_timings([*plain, *run.iterations[:n]])
    return KnownCosts(table, "timings") if table is not None else None


@dataclass(frozen=True)
class ChartData:
    """Everything the charts draw, computed once per update (tests read it back)."""

    running: list[float]
    per_iteration: list[float]
    by_position: list[float]
    lengths: list[int]
    gamma: int  # the draft length most iterations asked for (a fixed γ, or automatic γ's usual choice)
    alpha_estimate: float | None
    cost_ratio: float | None  # c of Leviathan's curve: the cost table's when known, else the stats'
    theory_curve: list[float]  # Leviathan et al.: speedup per γ = 1..MAX_GAMMA, verifying at T(1)
    measured_speedup: float | None  # tokens/s over a plain run's (the race), at ``gamma``
    cost_curve: list[float]  # this machine: speedup per γ = 1.., as far as T(k) is known
    cost_source: str | None  # a key of COST_SOURCES; None when no T(1) was timed
    verify_ratio: float | None  # T(gamma + 1) / T(1): 1 in Leviathan's formula
    note: tuple[Text, ...]  # the lines under the plot: the values at γ (its legend), and why they differ

    @classmethod
    def of(
        cls, run: Recording, n: int, baseline: RunStats | None = None, costs: KnownCosts | None = None
    ) -> ChartData:
        """The charts of ``run`` after ``n`` iterations; ``baseline`` is a plain run's stats, if any;
        ``costs`` what is known of this machine's costs (see :func:`known_costs`)."""
        stats = run.stats(n)
        gamma = typical_gamma(run, n)
        alpha = None if stats.alpha_estimate is None else min(1.0, max(0.0, stats.alpha_estimate))
        # With a cost table both curves use its draft step and T(1), so they differ only in what
        # verification costs: what the note under the plot says.
        cost_ratio = costs.table.cost_ratio if costs is not None else stats.cost_ratio(baseline)
        curve: list[float] = []
        cost_curve: list[float] = []
        ratio: float | None = None
        if alpha is not None and cost_ratio is not None:
            curve = [theory.speedup(alpha, g, cost_ratio) for g in range(1, MAX_GAMMA + 1)]
        if alpha is not None and costs is not None:
            cost_curve = costs.table.speedup_curve(alpha, MAX_GAMMA)
            if 1 <= gamma <= costs.table.max_draft:
                ratio = costs.table.verify_ratio(gamma + 1)
        measured = stats.speedup(baseline)
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
            measured_speedup=measured,
            cost_curve=cost_curve,
            cost_source=costs.source if costs is not None else None,
            verify_ratio=ratio,
            note=speedup_note(gamma, curve, cost_curve, measured, ratio, costs),
        )


def typical_gamma(run: Recording, n: int) -> int:
    """The draft length most of the first ``n`` iterations asked for: the run's γ when it is fixed
    (the budget's last iterations ask for less), automatic γ's usual choice otherwise."""
    asked = Counter(it.gamma for it in run.iterations[:n] if it.gamma > 0)
    if asked:
        return asked.most_common(1)[0][0]
    return run.started.gamma if run.started is not None else 0


def speedup_note(
    gamma: int,
    curve: list[float],
    cost_curve: list[float],
    measured: float | None,
    verify_ratio: float | None,
    costs: KnownCosts | None,
) -> tuple[Text, ...]:
    """The lines under the speedup plot: the three values at the run's γ, each in its series'
    colour and glyph (the plot's legend), then why the two curves differ."""
    if not curve or not 1 <= gamma <= MAX_GAMMA:
        return ()
    values = Text(f"γ={gamma}: ")
    parts = [("leviathan", f"Leviathan {curve[gamma - 1]:.2f}×")]
    if gamma <= len(cost_curve):
        parts.append(("machine", f"this machine {cost_curve[gamma - 1]:.2f}×"))
    if measured is not None:
        parts.append(("measured", f"measured {measured:.2f}×"))
    elif costs is not None:
        parts.append(("measured", "measured: needs a plain run"))
    for i, (series, label) in enumerate(parts):
        glyph, _, colour = SERIES[series]
        values.append(" · " if i else "")
        values.append(f"{glyph} {label}", style=colour)
    plain_run = "a plain run: race (x), or a trace recorded with --baseline"
    if costs is None:
        why = f"this machine's curve needs T(1), a plain target step, timed by {plain_run}"
    elif verify_ratio is None:
        why = f"this machine's curve: T({gamma + 1}) was not timed"
    else:
        why = (
            f"why: verification is not free, T({gamma + 1})/T(1) = {verify_ratio:.2f} here, "
            f"1 for Leviathan ({COST_SOURCES[costs.source]})"
        )
    return (values, Text(why))


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
        #speedup-cell { height: 1fr; }
        #speedup-note { height: auto; padding: 0 1; color: $text-muted; }
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
        with Vertical(id="speedup-cell"):
            yield PlotextPlot(id="chart-speedup")
            yield Static(id="speedup-note", markup=False)

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
        self.query_one("#speedup-note", Static).update(Text("\n").join(data.note))
        plt = widget.plt
        plt.clear_figure()
        if not data.theory_curve or data.alpha_estimate is None or data.cost_ratio is None:
            plt.title("speedup: needs a speculative run")
            widget.refresh()
            return
        plt.title(f"speedup vs γ at α≈{data.alpha_estimate:.2f}, c={data.cost_ratio:.2f}")
        gammas = list(range(1, MAX_GAMMA + 1))
        plt.plot(gammas, data.theory_curve, marker="braille", color=SERIES["leviathan"][1])
        if data.cost_curve:
            cost_gammas = gammas[: len(data.cost_curve)]
            plt.plot(cost_gammas, data.cost_curve, marker="dot", color=SERIES["machine"][1])
        if data.measured_speedup is not None and 1 <= data.gamma <= MAX_GAMMA:
            plt.scatter([data.gamma], [data.measured_speedup], marker="x", color=SERIES["measured"][1])
        plt.hline(1.0)
        top = max([*data.theory_curve, *data.cost_curve, data.measured_speedup or 0.0, 1.0])
        plt.ylim(0, top * 1.1)
        widget.refresh()
