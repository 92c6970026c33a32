"""The "5 Lossy" tab: one prompt and seed under each acceptance rule, on tiny random real models.

The real decoder runs (``Session`` + ``make_factory``, as ``specviz ui`` does), so each run's
``step_tv`` and where the outputs part are the decoder's doing. Every expected value is computed
here from the runs' own events, independently of the panel.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Static

from specviz.commands.ui import make_factory
from specviz.decoding.events import Event, Iteration, RunFinished, RunStarted, read_trace
from specviz.session import ModelOptions, RunSettings, Session
from specviz.tui.app import SpecvizApp
from specviz.tui.messages import RaceEnded
from specviz.tui.recording import Recording, split_runs
from specviz.tui.widgets.lossy_view import (
    HOW_TO_RECORD,
    LossyPanel,
    comparison_settings,
    mean_step_tv,
    recorded_comparison,
    tv_text,
)
from tests.support.tiny_models import save_tiny_checkpoint
from tests.tui.test_tui_live_model import HOLD_AT, RUN_TIMEOUT_S, LoggingFactory  # the live UI tests' own

from .conftest import Handled, run_done, wait_until

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = (120, 40)
# τ below the tiny random target's flat probabilities (~1/257): the threshold rule then keeps almost
# every draft and is measurably lossy there (mean one-step TV 0.066 at T=1; at τ=0.1 it would keep
# none and emit the target's own row: lossless by accident).
SETTINGS = RunSettings(prompt="hello world", temperature=1.0, gamma=4, max_new_tokens=24, seed=3, tau=0.003)


def _app(factory, settings: RunSettings, record_to: Path | None = None) -> SpecvizApp:
    return SpecvizApp(factory=factory, settings=settings, blink=False, record_to=record_to)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """A tiny random target (seed 1) and draft (seed 2) sharing one tokenizer, loaded once."""
    root = tmp_path_factory.mktemp("tiny-models")
    target = save_tiny_checkpoint(root / "target", seed=1)
    draft = save_tiny_checkpoint(root / "draft", seed=2)
    return Session(ModelOptions(target, draft, device="cpu"))


def _finished(panel: LossyPanel) -> bool:
    return not panel.comparing and len(panel.runs) == 3 and all(c.run.finished for c in panel.runs)


def _parting(a: tuple[int, ...], b: tuple[int, ...]) -> int | None:
    """Written out again here: the first index where b differs from a, or where the shorter ends."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _mean_tv(events: list[Iteration]) -> float:
    values = [it.step_tv for it in events if it.step_tv is not None]
    assert values, "a sampled speculative run records step_tv"
    return sum(values) / len(values)


async def test_compare_rules_decodes_three_runs_and_marks_where_they_part(
    session: Session, tmp_path: Path
) -> None:
    trace = tmp_path / "t.jsonl"  # --trace / --record: the comparison is recorded for a replay
    app = _app(make_factory(session), SETTINGS, record_to=trace)
    async with app.run_test(size=SIZE) as pilot:
        ended = Handled(app, LossyPanel.Ended)
        panel = app.query_one("#lossy", LossyPanel)
        await pilot.press("y")
        await wait_until(pilot, lambda: _finished(panel) and ended.count == 1, timeout=RUN_TIMEOUT_S)
        assert app.query_one("#tabs").active == "tab-lossy"
        runs = [c.run for c in panel.runs]
        assert [r.started.lossy for r in runs] == [False, True, True]
        assert [c.label.split()[0] for c in panel.runs] == ["rejection", "threshold", "typical"]
        assert len({(r.started.prompt_token_ids, r.started.seed, r.started.temperature) for r in runs}) == 1
        lossless_ids = runs[0].finished.token_ids
        for slot in (1, 2):
            expected = _parting(lossless_ids, runs[slot].finished.token_ids)
            assert panel.divergence(slot) == expected
            title = str(app.query_one(f"#lossy-title-{slot}", Static).render())
            if expected is None:
                assert "identical to the lossless output" in title
            else:
                assert f"parts from lossless at token {expected}:" in title
        assert panel.divergence(2) is not None  # on this seed typical acceptance parts at token 1

        means = [_mean_tv(r.iterations) for r in runs]
        for slot, mean in enumerate(means):
            assert panel.mean_tv(slot) == pytest.approx(mean, rel=1e-12)
            title = str(app.query_one(f"#lossy-title-{slot}", Static).render())
            assert f"mean one-step TV {tv_text(mean)}" in title
        assert means[0] < 1e-4 < 0.05 < means[1], "rejection sampling ~0, the threshold rule not"
        assert f"rejection sampling {tv_text(means[0])}, lossless" in panel.status_text
        assert f"threshold {tv_text(means[1])}, typical {tv_text(means[2])}: LOSSY" in panel.status_text
    recorded = recorded_comparison(split_runs(read_trace(trace)))
    assert recorded is not None
    assert [c.run.finished for c in recorded] == [r.finished for r in runs]


async def test_greedy_settings_compare_at_temperature_one_and_say_so(session: Session) -> None:
    settings = SETTINGS.evolve(temperature=0.0, max_new_tokens=12)
    app = _app(make_factory(session), settings)
    async with app.run_test(size=SIZE) as pilot:
        ended = Handled(app, LossyPanel.Ended)
        panel = app.query_one("#lossy", LossyPanel)
        await pilot.press("y")
        await wait_until(pilot, lambda: _finished(panel) and ended.count == 1, timeout=RUN_TIMEOUT_S)
        assert [c.run.started.temperature for c in panel.runs] == [1.0, 1.0, 1.0]
        assert "compares at temperature 1.0" in panel.status_text
        assert "every rule reduces to argmax matching" in panel.status_text
        assert app.next_settings.temperature == 0.0  # the user's own settings are left as they were


@pytest.mark.parametrize("key", ["r", "x"], ids=["run", "race"])
async def test_a_new_run_or_race_cancels_the_comparison(session: Session, key: str) -> None:
    settings = SETTINGS.evolve(max_new_tokens=100)
    factory = LoggingFactory(make_factory(session), hold_first_at=HOLD_AT)
    app = _app(factory, settings)
    async with app.run_test(size=SIZE) as pilot:
        race_ended = Handled(app, RaceEnded)
        panel = app.query_one("#lossy", LossyPanel)
        await pilot.press("y")
        await wait_until(pilot, lambda: factory.holding.is_set() and len(panel.runs[0].run) == HOLD_AT - 1)
        assert panel.comparing and app.decoding
        await pilot.press(key)
        assert not panel.comparing
        await wait_until(pilot, lambda: len(factory.runs) == 2)
        factory.release.set()
        if key == "x":
            await wait_until(pilot, lambda: race_ended.count == 1, timeout=RUN_TIMEOUT_S)
        else:
            await wait_until(pilot, lambda: run_done(app), timeout=RUN_TIMEOUT_S)
        held = factory.runs[0]
        assert held.closed and not held.exhausted, "the cancelled comparison decoded on"
        # The comparison went no further than its first, held run, and nothing late reached it.
        assert factory.runs[0].settings.rule == "lossless"
        assert all(log.settings.rule == "lossless" for log in factory.runs[1:])
        assert len(factory.runs) == (3 if key == "x" else 2)
        assert len(panel.runs[0].run) == HOLD_AT - 1 and panel.runs[1].run.started is None
        assert panel.status_text.startswith("Stopped before every rule's run was decoded")


async def test_replay_shows_a_recorded_comparison(session: Session) -> None:
    events: list[Event] = []
    for rule in ("lossless", "threshold", "typical"):
        events += list(session.speculative(SETTINGS.evolve(rule=rule)))  # type: ignore[arg-type]
    finished = [e for e in events if isinstance(e, RunFinished)]
    app = SpecvizApp(events=events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        panel = app.query_one("#lossy", LossyPanel)
        assert app.query_one("#tabs").active == "tab-lossy"
        assert [c.lossy for c in panel.runs] == [False, True, True]
        assert [c.run.finished for c in panel.runs] == finished
        for slot in (1, 2):
            assert panel.divergence(slot) == _parting(finished[0].token_ids, finished[slot].token_ids)
        assert panel.runs[1].label.startswith("threshold τ=") and panel.runs[2].label.startswith("typical ε=")
        assert "Mean exact one-step TV" in panel.status_text

    # A trace from before RunStarted.rule: the lossy runs are shown without a rule name.
    old = [replace(e, rule=None) if isinstance(e, RunStarted) else e for e in events]
    app = SpecvizApp(events=old, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        panel = app.query_one("#lossy", LossyPanel)
        assert [c.lossy for c in panel.runs] == [False, True, True]
        assert "rule not recorded" in panel.runs[1].label
        assert app.run_recording.finished == finished[0], "replay opens on the lossless run"


async def test_replay_without_lossy_runs_says_how_to_record_one(sampled_events: list[Event]) -> None:
    assert not any(isinstance(e, RunStarted) and e.lossy for e in sampled_events)
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("y")
        panel = app.query_one("#lossy", LossyPanel)
        assert app.query_one("#tabs").active == "tab-lossy"
        assert panel.runs == [] and panel.status_text == HOW_TO_RECORD
        assert "specviz run --trace t.jsonl" in HOW_TO_RECORD


def test_mean_step_tv_leaves_out_iterations_that_recorded_none(session: Session) -> None:
    """A 0-draft iteration (the budget's last token) or a v1 trace records no step_tv: not a 0."""
    events = list(session.speculative(SETTINGS.evolve(rule="threshold")))
    iterations = [e for e in events if isinstance(e, Iteration)]
    assert len(iterations) >= 3
    gaps = {0, len(iterations) - 1}
    events = [replace(e, step_tv=None) if isinstance(e, Iteration) and e.index in gaps else e for e in events]
    kept = [it.step_tv for it in iterations if it.index not in gaps]
    assert mean_step_tv(Recording.of(events)) == pytest.approx(sum(kept) / len(kept), rel=1e-12)
    assert mean_step_tv(Recording.of(e for e in events if not isinstance(e, Iteration))) is None


@pytest.mark.parametrize(
    ("changes", "expected", "note"),
    [
        ({"temperature": 0.0}, {"temperature": 1.0}, "compares at temperature 1.0"),
        ({"mode": "autoregressive"}, {"mode": "speculative"}, "plain decoding has no acceptance rule"),
        ({"gamma": 0}, {"gamma": 4}, "compared at γ=4"),
        ({"drafter": "tree", "gamma": 16}, {"drafter": "model"}, "compared with --drafter model"),
        ({"drafter": "lookup-tree", "gamma": 16}, {"drafter": "ngram"}, "compared with --drafter ngram"),
    ],
)
def test_comparison_settings_make_any_settings_comparable(
    changes: dict[str, object], expected: dict[str, object], note: str
) -> None:
    """Whatever the next run's settings, y decodes one prompt and seed under each rule, saying what it changed."""
    runs, notes = comparison_settings(SETTINGS.evolve(**changes))
    assert [rule for rule, _ in runs] == ["lossless", "threshold", "typical"]
    assert [s.rule for _, s in runs] == ["lossless", "threshold", "typical"]
    for _, settings in runs:
        assert (settings.prompt, settings.seed) == (SETTINGS.prompt, SETTINGS.seed)
        assert {key: getattr(settings, key) for key in expected} == expected
    assert any(note in n for n in notes)
