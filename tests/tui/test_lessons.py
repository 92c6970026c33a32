"""Lessons where every number is true: the greedy inspector's softmax probabilities, a 0-draft
iteration shown as a plain target step, and the speedup chart's three series (Leviathan's
flat-verify curve, this machine's cost-model curve, the measured point).

Every run here is built by hand (``_run``), so each expected number can be worked out from the
events: T(1) = 100 ms, T(5) = 150 ms, a 10 ms draft step and α = 0.8 give the curves below.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest
from rich.console import Console

from specviz.decoding.events import (
    Correction,
    CorrectionKind,
    DraftedToken,
    Event,
    Iteration,
    RunFinished,
    RunStarted,
    TokenProb,
    event_to_dict,
    loads,
)
from specviz.decoding.settings import RunSettings
from specviz.decoding.stats import RunStats
from specviz.decoding.theory import CostTable, expected_tokens, speedup
from specviz.render.console import STYLES, iteration_text
from specviz.tui.app import SpecvizApp
from specviz.tui.model_loading import LoadedModels, ModelChoice, ModelEntry, Progress
from specviz.tui.panels import measured_costs
from specviz.tui.recording import Recording, split_runs
from specviz.tui.widgets.charts import ChartData, ChartsPanel, known_costs
from specviz.tui.widgets.inspector import IterationInspector
from specviz.tui.widgets.legend import StatusLegend
from specviz.tui.widgets.token_stream import TokenStream

from .conftest import run_done, wait_until

SIZE = (120, 36)
TARGET, DRAFT = "big", "small [int8]"

# -- hand-built runs -----------------------------------------------------------------------------------


def _started(
    mode: str, *, temperature: float = 0.0, gamma: int = 4, drafter: str | None = "model"
) -> RunStarted:
    speculative = mode == "speculative"
    return RunStarted(
        mode=mode,  # type: ignore[arg-type]
        target=TARGET,
        draft=DRAFT if speculative and drafter == "model" else None,
        drafter=drafter if speculative else None,
        gamma=gamma if speculative else 0,
        temperature=temperature,
        top_k=None,
        top_p=None,
        seed=0,
        max_new_tokens=64,
        device="cpu",
        dtype="float32",
        prompt="Once",
        prompt_token_ids=(1, 2),
        prefill_time_s=0.0,
    )


def _token(i: int) -> str:
    return f" t{i}"


def _iteration(
    index: int,
    drafted: Sequence[DraftedToken],
    correction: Correction,
    *,
    draft_time_s: float,
    verify_time_s: float,
    total: int,
) -> Iteration:
    committed = [d.token_id for d in drafted if d.verdict == "accepted"] + [correction.token_id]
    return Iteration(
        index=index,
        gamma=len(drafted),
        drafted=tuple(drafted),
        correction=correction,
        new_token_ids=tuple(committed),
        new_text="".join(_token(t) for t in committed),
        draft_time_s=draft_time_s,
        verify_time_s=verify_time_s,
        total_tokens=total,
    )


def _plain_correction(token: int, kind: CorrectionKind = "plain") -> Correction:
    return Correction(kind, token, _token(token), 1.0, (TokenProb(token, _token(token), 1.0),))


def _accepted(position: int, token: int) -> DraftedToken:
    """A greedy draft the target agreed with; overlap 0.8, so the run's α estimate is 0.8."""
    return DraftedToken(position, token, _token(token), 1.0, 1.0, 1.0, None, "accepted", token, 0.8)


def _plain_run(steps: int, step_s: float) -> list[Event]:
    """Plain decoding: ``steps`` target steps of ``step_s`` each, so T(1) = step_s."""
    its = [
        _iteration(i, (), _plain_correction(100 + i), draft_time_s=0.0, verify_time_s=step_s, total=i + 1)
        for i in range(steps)
    ]
    tokens = tuple(t for it in its for t in it.new_token_ids)
    return [
        _started("autoregressive"),
        *its,
        RunFinished("max_new_tokens", "", tokens, steps, steps * step_s),
    ]


def _speculative_run(
    iterations: int, *, draft_step_s: float, verify_s: float, last_plain_s: float | None = None
) -> list[Event]:
    """``iterations`` iterations drafting 4 tokens each, all accepted (overlap 0.8), then a bonus;
    each costs 4 draft steps and one verify of 5 rows. ``last_plain_s``: end with a 0-draft
    iteration (a plain target step) timed so."""
    its: list[Iteration] = []
    for i in range(iterations):
        base = 10 * (i + 1)
        drafted = [_accepted(p, base + p) for p in range(4)]
        bonus = _plain_correction(base + 4, "bonus")
        its.append(
            _iteration(
                i, drafted, bonus, draft_time_s=4 * draft_step_s, verify_time_s=verify_s, total=5 * (i + 1)
            )
        )
    if last_plain_s is not None:
        its.append(
            _iteration(
                iterations,
                (),
                _plain_correction(999),
                draft_time_s=0.0,
                verify_time_s=last_plain_s,
                total=5 * iterations + 1,
            )
        )
    tokens = tuple(t for it in its for t in it.new_token_ids)
    wall = sum(it.draft_time_s + it.verify_time_s for it in its)
    return [_started("speculative"), *its, RunFinished("max_new_tokens", "", tokens, len(its), wall)]


def _greedy_rejection_run(*, softmax: bool) -> list[Event]:
    """One greedy iteration: " t10" accepted, " t11" rejected (the target preferred " dog"),
    " t12" discarded; with ``softmax`` the events carry each model's probabilities at T=1."""

    def soft(value: float) -> float | None:
        return value if softmax else None

    drafted = (
        DraftedToken(0, 10, " t10", 1.0, 1.0, 1.0, None, "accepted", 10, 1.0, None, soft(0.83), soft(0.91)),
        DraftedToken(1, 11, " t11", 1.0, 0.0, 0.0, None, "rejected", 77, 0.0, None, soft(0.62), soft(0.21)),
        DraftedToken(2, 12, " t12", 1.0, 0.0, 0.0, None, "discarded", 13, 0.0, None, soft(0.55), soft(0.4)),
    )
    softmax_top = (TokenProb(77, " dog", 0.7), TokenProb(11, " t11", 0.21)) if softmax else ()
    correction = Correction("resampled", 77, " dog", 1.0, (TokenProb(77, " dog", 1.0),), True, softmax_top)
    it = Iteration(0, 3, drafted, correction, (10, 77), " t10 dog", 0.03, 0.15, 2)
    return [_started("speculative"), it, RunFinished("max_new_tokens", "", (10, 77), 1, 0.18)]


def _cells(text: str, token: str) -> list[str]:
    """The inspector row of drafted token ``token``: its cells after the token, split on spaces."""
    shown = json.dumps(token)
    return next(line for line in text.splitlines() if shown in line).split(shown, 1)[1].split()


def _inspector_text(app: SpecvizApp, index: int) -> str:
    inspector = app.query_one("#inspector", IterationInspector)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(inspector.render_iteration(app.run_recording, app.run_recording.iterations[index]))
    return console.export_text()


# -- greedy: the softmax probabilities beside the argmax decision ----------------------------------------


async def test_greedy_inspector_shows_each_models_softmax_beside_the_argmax_decision() -> None:
    app = SpecvizApp(events=_greedy_rejection_run(softmax=True), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = _inspector_text(app, 0)
    # Columns after the token: draft, target, target argmax, Σmin, verdict: the events' softmax numbers.
    assert _cells(text, " t10")[:4] == ["0.830", "0.910", "=", "same"]
    # What the target preferred instead, and how sure it was (its softmax at the rejected position).
    assert _cells(text, " t11")[:5] == ["0.620", "0.210", "≠", '"', 'dog"'] and "0.700" in _cells(
        text, " t11"
    )
    assert '≠ " dog" 0.700' in text
    assert _cells(text, " t12")[:2] == ["0.550", "0.400"] and "0.700" not in _cells(text, " t12")
    assert "softmax at T=1" in text and "greedy keeps the target's argmax" in text
    assert 'resampled " dog"  target 0.700 (softmax at T=1)' in text
    assert "it gave the draft 0.210" in text
    assert 'target top at T=1: " dog" 0.700 · " t11" 0.210' in text
    # No one-hot 1.000 for the tokens, and no bare p / q labels in a greedy run.
    assert "q draft" not in text and "p target" not in text and "p=" not in text


async def test_an_old_greedy_trace_without_softmax_shows_what_it_recorded() -> None:
    app = SpecvizApp(events=_greedy_rejection_run(softmax=False), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = _inspector_text(app, 0)
    assert _cells(text, " t10")[:2] == ["1.000", "1.000"]  # one-hot, as recorded
    assert _cells(text, " t11")[:5] == ["1.000", "0.000", "≠", '"', 'dog"']
    assert "no softmax at T=1 in it" in text and "p=1.000" in text and "target argmax, replaces" in text


# -- a 0-draft iteration is a plain target step -------------------------------------------------------


def _v1(event: Event) -> Event:
    """``event`` as a version 1 trace line holds it (no softmax, no tree, no step_tv), read back."""
    data = event_to_dict(event)
    data["v"] = 1
    for key in ("tree", "step_tv"):
        data.pop(key, None)
    if "correction" in data:
        data["correction"].pop("softmax_top", None)
    for d in data.get("drafted", ()):
        d.pop("draft_softmax", None)
        d.pop("target_softmax", None)
    return loads(json.dumps(data))


def _zero_draft_run(kind: CorrectionKind) -> list[Event]:
    """A speculative run whose last iteration drafted nothing; ``kind`` is what its correction says
    ("plain" in schema 2, "bonus" in a version 1 trace)."""
    events = _speculative_run(2, draft_step_s=0.01, verify_s=0.15, last_plain_s=0.1)
    last = events[-2]
    assert isinstance(last, Iteration) and not last.drafted
    events[-2] = replace(last, correction=_plain_correction(999, kind))
    if kind == "bonus":
        events = [_v1(e) for e in events]
    return events


@pytest.mark.parametrize("kind", ["plain", "bonus"])
async def test_a_zero_draft_iteration_is_a_plain_target_step(kind: CorrectionKind) -> None:
    events = _zero_draft_run(kind)
    last = events[-2]
    assert isinstance(last, Iteration) and last.correction.kind == kind and not last.drafted
    app = SpecvizApp(events=events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        index = len(app.run_recording) - 1
        text = _inspector_text(app, index)
        statuses = app.query_one("#stream", TokenStream).statuses_of(index)
        legend = app.query_one("#legend", StatusLegend)
        assert "plain" in legend.statuses
    assert "• plain" in text and "nothing was drafted: a plain target step" in text
    assert "bonus" not in text and "free" not in text.replace("nothing free", "")
    assert statuses == [(" t999", "plain")]
    # The headless stream prints it unstyled, as plain decoding, not as a bonus.
    spans = iteration_text(last).spans
    assert [span.style for span in spans] == ([STYLES["plain"]] if STYLES["plain"] else [])
    # The stats never count a bonus: the iteration commits one token, like a plain step.
    assert RunStats.of(events).length_counts[1] == 1


# -- the speedup chart: three series from a run's numbers ----------------------------------------------

T1, T5, DRAFT_STEP, ALPHA = 0.100, 0.150, 0.010, 0.8


def _race() -> tuple[Recording, Recording]:
    plain, spec = split_runs(
        [*_plain_run(10, T1), *_speculative_run(3, draft_step_s=DRAFT_STEP, verify_s=T5)]
    )
    return plain, spec


def _by_hand(gamma: int, verify_s: float) -> float:
    """The cost model worked out: expected tokens × T(1) / (γ draft steps + T(γ + 1))."""
    return (1 - ALPHA ** (gamma + 1)) / (1 - ALPHA) * T1 / (gamma * DRAFT_STEP + verify_s)


def test_chart_data_has_leviathans_curve_this_machines_curve_and_the_measured_point() -> None:
    plain, spec = _race()
    costs = known_costs(spec, len(spec), plain)
    assert costs is not None and costs.source == "timings"
    data = ChartData.of(spec, len(spec), plain.stats(), costs)
    assert data.gamma == 4 and data.alpha_estimate == pytest.approx(ALPHA)
    # Leviathan: verifying 5 tokens costs one step; c = draft step / T(1) = 0.1.
    assert data.cost_ratio == pytest.approx(DRAFT_STEP / T1)
    assert data.theory_curve[3] == pytest.approx(expected_tokens(ALPHA, 4) / (4 * 0.1 + 1))
    assert len(data.theory_curve) == 16
    # This machine: T(5) = 150 ms measured, T(2..4) on the line from T(1); nothing beyond γ = 4.
    assert data.cost_curve == pytest.approx([_by_hand(g, T1 + (T5 - T1) * g / 4) for g in range(1, 5)])
    assert data.cost_curve[3] == pytest.approx(1.76926, abs=1e-5)
    assert data.verify_ratio == pytest.approx(1.5)
    # Measured: 15 tokens in 3 × 190 ms against 10 tokens in 10 × 100 ms.
    assert data.measured_speedup == pytest.approx((15 / 0.57) / (10 / 1.0))
    values, why = (line.plain for line in data.note)
    assert values == "γ=4: ⠒⠒ Leviathan 2.40× · •• this machine 1.77× · x measured 2.63×"
    assert "verification is not free, T(5)/T(1) = 1.50 here" in why and "runs' timings" in why


def test_without_a_timed_plain_step_the_chart_says_so_instead_of_drawing_a_curve() -> None:
    (spec,) = split_runs(_speculative_run(3, draft_step_s=DRAFT_STEP, verify_s=T5))
    assert known_costs(spec, len(spec)) is None
    data = ChartData.of(spec, len(spec), None, None)
    assert data.cost_curve == [] and data.cost_source is None and data.measured_speedup is None
    assert data.theory_curve  # Leviathan's curve is still drawn, from the stats' c
    assert "needs T(1)" in data.note[1].plain and "race (x)" in data.note[1].plain
    # A 0-draft iteration times a plain step too: then the curve is drawn, still with no measured point.
    (ended,) = split_runs(_speculative_run(3, draft_step_s=DRAFT_STEP, verify_s=T5, last_plain_s=T1))
    data = ChartData.of(ended, len(ended), None, known_costs(ended, len(ended)))
    assert data.cost_curve[3] == pytest.approx(_by_hand(4, T5)) and data.measured_speedup is None
    assert "measured: needs a plain run" in data.note[0].plain


def test_the_sessions_measured_table_is_used_only_for_runs_of_its_pair() -> None:
    table = CostTable(0.02, tuple(0.1 + 0.01 * k for k in range(17)))
    loaded = LoadedModels(lambda s: iter(()), ("model", "ngram"), TARGET, DRAFT, "cpu/float32", table)
    (spec,) = split_runs(_speculative_run(3, draft_step_s=DRAFT_STEP, verify_s=T5))
    assert measured_costs(spec, loaded) == table
    other = Recording.of([replace(_started("speculative"), draft="another")])
    assert measured_costs(other, loaded) is None
    lookup = Recording.of([_started("speculative", drafter="ngram")])
    assert measured_costs(lookup, loaded) == table.without_draft_cost()
    costs = known_costs(spec, len(spec), None, table)
    assert costs is not None and costs.source == "measured"
    data = ChartData.of(spec, len(spec), None, costs)
    assert len(data.cost_curve) == 16
    assert data.cost_curve[3] == pytest.approx(expected_tokens(ALPHA, 4) * 0.1 / (4 * 0.02 + 0.14))
    assert data.verify_ratio == pytest.approx(0.14 / 0.1) and "(T(k) measured)" in data.note[1].plain
    assert data.theory_curve[3] == pytest.approx(speedup(ALPHA, 4, 0.2))


async def test_the_charts_tab_draws_the_three_series_and_the_reason() -> None:
    plain, spec = _race()
    app = SpecvizApp(events=[*plain.events(), *spec.events()], blink=False, show_timings=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        data = app.query_one("#charts", ChartsPanel).data
        note = str(app.query_one("#speedup-note").render())
    assert data is not None and data.cost_source == "timings"
    assert data.cost_curve[3] == pytest.approx(_by_hand(4, T5))
    assert data.measured_speedup == pytest.approx((15 / 0.57) / (10 / 1.0))
    assert "T(5)/T(1) = 1.50" in note and "this machine 1.77×" in note


class _TableLoader:
    """Loads nothing; hands the app a pair whose cost table was "measured" (as automatic γ does)."""

    def __init__(self, table: CostTable) -> None:
        self.table = table

    def catalogue(self) -> list[ModelEntry]:
        return []

    def load(self, choice: ModelChoice, progress: Progress) -> LoadedModels:
        def factory(settings: RunSettings) -> Iterator[Event]:
            return iter(_speculative_run(3, draft_step_s=DRAFT_STEP, verify_s=T5))

        return LoadedModels(factory, ("model", "ngram"), TARGET, DRAFT, "cpu/float32", self.table)


async def test_a_live_pairs_measured_costs_reach_the_chart() -> None:
    table = CostTable(0.02, tuple(0.1 + 0.01 * k for k in range(17)))
    app = SpecvizApp(
        loader=_TableLoader(table),
        models=ModelChoice(TARGET, "small"),
        settings=RunSettings(prompt="Once", gamma=4),
        autorun=True,
        blink=False,
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: run_done(app))
        await pilot.press("2")
        await wait_until(pilot, lambda: app.query_one("#charts", ChartsPanel).data is not None)
        data = app.query_one("#charts", ChartsPanel).data
    assert data.cost_source == "measured"
    assert data.cost_curve == pytest.approx(table.speedup_curve(ALPHA, 16))


@pytest.mark.usefixtures("one_torch_thread")
def test_the_session_loader_hands_over_the_table_automatic_gamma_measured(tmp_path) -> None:
    """The real loader (tiny random models): the table measured for automatic γ reaches the UI
    as torch-free numbers; without automatic γ nothing extra is measured while loading."""
    from specviz.commands.ui import SessionLoader
    from specviz.session import ModelOptions
    from tests.support.tiny_models import save_tiny_checkpoint

    target = save_tiny_checkpoint(tmp_path / "target", seed=1)
    draft = save_tiny_checkpoint(tmp_path / "draft", seed=2)
    options = ModelOptions(target, draft, device="cpu")
    auto = SessionLoader(options, RunSettings(prompt="", gamma=16, auto_gamma=True))
    models = auto.load(ModelChoice(target, draft), lambda *stage: None)
    assert isinstance(models.costs, CostTable) and models.costs.max_draft == 16
    assert models.costs.draft_step_s > 0 and models.costs.target_step_s > 0
    fixed = SessionLoader(options, RunSettings(prompt="", gamma=4))
    assert fixed.load(ModelChoice(target, draft), lambda *stage: None).costs is None
