"""Everything drawn from the playhead besides the token stream: inspector, stats bar, settings bar,
legend, charts and theory tab, redrawn together so that no two of them disagree.

The charts are the costly panel, so they are drawn only while their tab is shown, and while a live
run streams in at most a few times a second (:meth:`Panels.flush_charts`, on the app's timer).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.dom import DOMNode
from textual.widgets import TabbedContent

from specviz.decoding.settings import RunSettings
from specviz.decoding.stats import RunStats
from specviz.decoding.theory import CostTable
from specviz.tui.model_loading import LoadedModels
from specviz.tui.playhead import Playhead
from specviz.tui.race import fair_baseline
from specviz.tui.recording import Recording
from specviz.tui.widgets.charts import ChartData, ChartsPanel, known_costs
from specviz.tui.widgets.inspector import IterationInspector
from specviz.tui.widgets.legend import StatusLegend, tree_budget
from specviz.tui.widgets.settings_bar import ModelLabels, SettingsBar
from specviz.tui.widgets.stats_bar import StatsBar, StatsView
from specviz.tui.widgets.theory_view import TheoryPanel

# The theory tab's cost ratio c until a run measures one: roughly the default model pair's on a CPU.
ASSUMED_COST_RATIO = 0.4


@dataclass(frozen=True)
class PanelState:
    """What the panels show besides the playhead's run and position."""

    activity: str  # what the app is doing: "▶ decoding", "◼ replay", ...
    baseline: Recording | None  # a plain run to compare with; used only where the comparison is fair
    settings: RunSettings | None  # the next run's settings (None in a replay: there is no next run)
    models: ModelLabels | None  # the models the next run uses, if the app knows them
    loaded: LoadedModels | None = None  # the loaded pair, with its measured costs if it has them


class Panels:
    """Draws the panels of the screen under ``root`` (the app) for ``playhead`` and a :class:`PanelState`."""

    def __init__(self, root: DOMNode, playhead: Playhead, *, show_timings: bool) -> None:
        self._root = root
        self._playhead = playhead
        self._show_timings = show_timings
        self._state = PanelState("", None, None, None)
        self._charts_dirty = True
        self._theory_c: float | None = None  # the cost ratio set with [ and ], over the measured one

    def draw(self, state: PanelState, *, moved: bool) -> None:
        """Redraw every panel; ``moved``: the playhead moved, so the charts are out of date."""
        self._state = state
        self._charts_dirty = self._charts_dirty or moved
        query, playhead = self._root.query_one, self._playhead
        run = playhead.run
        query("#inspector", IterationInspector).show(run, playhead.selected, pending=playhead.pending)
        stats, baseline = run.stats(playhead.revealed), self._baseline_stats()
        label = f"{state.activity} · 2-step" if playhead.two_phase else state.activity
        query("#stats", StatsBar).update_view(
            StatsView(label, playhead.revealed, len(run), stats, self._show_timings, baseline)
        )
        query("#settings", SettingsBar).show(run.started, state.settings, state.models)
        query("#legend", StatusLegend).set_speculative(run.speculative, tree_budget(run.started))
        if self._tab_visible("theory"):
            self._draw_theory(stats, baseline)
        if self._tab_visible("charts") and not (playhead.decoding and playhead.follow):
            self.flush_charts()

    def flush_charts(self) -> None:
        """Draw the charts if the playhead moved since they were drawn and their tab is shown."""
        if not self._charts_dirty or not self._tab_visible("charts"):
            return
        self._charts_dirty = False
        run, n = self._playhead.run, self._playhead.revealed
        plain = fair_baseline(run, self._state.baseline)
        costs = known_costs(run, n, plain, measured_costs(run, self._state.loaded))
        self._root.query_one("#charts", ChartsPanel).update_data(
            ChartData.of(run, n, plain.stats() if plain is not None else None, costs)
        )

    def tab_shown(self, pane_id: str) -> None:
        """A tab came into view: draw it (hidden tabs are not kept up to date)."""
        if pane_id == "tab-charts":
            self._charts_dirty = True
            self.flush_charts()
        elif pane_id == "tab-theory":
            self._draw_theory(self._playhead.run.stats(self._playhead.revealed), self._baseline_stats())

    def step_cost_ratio(self, delta: float) -> None:
        """Set the theory tab's c, starting from the one it shows (then the next draw shows it)."""
        shown = self._root.query_one("#theory", TheoryPanel).cost_ratio
        current = self._theory_c if self._theory_c is not None else (shown or ASSUMED_COST_RATIO)
        self._theory_c = round(max(0.0, min(2.0, current + delta)), 2)

    def _baseline_stats(self) -> RunStats | None:
        base = fair_baseline(self._playhead.run, self._state.baseline)
        return base.stats() if base is not None else None

    def _tab_visible(self, name: str) -> bool:
        return self._root.query_one("#tabs", TabbedContent).active == f"tab-{name}"

    def _draw_theory(self, stats: RunStats, baseline: RunStats | None) -> None:
        theory = self._root.query_one("#theory", TheoryPanel)
        started = self._playhead.run.started
        gamma = started.gamma if started is not None and started.mode == "speculative" else None
        alpha = stats.alpha_estimate
        measured = stats.cost_ratio(baseline)
        if self._theory_c is not None:
            theory.set_context(self._theory_c, source="set", alpha=alpha, gamma=gamma)
        elif measured is not None:
            theory.set_context(measured, source="measured", alpha=alpha, gamma=gamma)
        else:
            theory.set_context(ASSUMED_COST_RATIO, source="assumed", alpha=alpha, gamma=gamma)


def measured_costs(run: Recording, loaded: LoadedModels | None) -> CostTable | None:
    """The loaded pair's measured cost table, if ``run`` was decoded on that pair (else None).

    A run decoded before ``M`` switched pairs keeps its own timings; a run that used no draft model
    (prompt lookup: ``RunStarted.draft`` is None) pays no draft forward, so its table has no draft cost.
    """
    started = run.started
    if loaded is None or loaded.costs is None or started is None or started.mode != "speculative":
        return None
    if started.target != loaded.target:
        return None
    if started.draft is None:
        return loaded.costs.without_draft_cost()
    return loaded.costs if started.draft == loaded.draft else None
