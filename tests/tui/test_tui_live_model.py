"""The UI's live path end to end on tiny random transformers models: worker, streaming, races, cancel.

Everything here runs the real decoder (``Session`` + ``make_factory``, as ``specviz ui`` does), so a
race's verdict and a cancelled run are the decoder's doing, not a fake's by construction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from textual.pilot import Pilot

from specviz.commands.ui import make_factory
from specviz.decoding.events import Event, Iteration, RunFinished
from specviz.session import ModelOptions, RunSettings, Session
from specviz.tui.app import SpecvizApp
from specviz.tui.messages import RaceEnded
from specviz.tui.source import EventSourceFactory
from specviz.tui.widgets.race_view import RacePanel
from tests.support.tiny_models import save_tiny_checkpoint

from .conftest import TIMEOUT_S, Handled, run_done, wait_until

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = (100, 32)
# A real run here is slower than the fake: allow for a loaded machine decoding a few hundred steps.
RUN_TIMEOUT_S = 3 * TIMEOUT_S


@dataclass(frozen=True)
class TinyModels:
    target: str  # seed 1
    draft: str  # seed 2, same tokenizer
    other_target: str  # seed 3: another target, so greedy outputs differ from ``target``'s


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    root = tmp_path_factory.mktemp("tiny-models")
    return TinyModels(
        target=save_tiny_checkpoint(root / "target", seed=1),
        draft=save_tiny_checkpoint(root / "draft", seed=2),
        other_target=save_tiny_checkpoint(root / "other-target", seed=3),
    )


def _session(tiny: TinyModels, target: str | None = None) -> Session:
    return Session(ModelOptions(target or tiny.target, tiny.draft, device="cpu"))


def _finished(events: Iterator[Event]) -> RunFinished:
    return next(e for e in events if isinstance(e, RunFinished))


@dataclass
class RunLog:
    """One run a factory was asked for: the events the UI pulled from its decoder, and how it ended."""

    settings: RunSettings
    events: list[Event] = field(default_factory=list)
    exhausted: bool = False  # the decoder ran to its end (RunFinished)
    closed: bool = False  # the iterator is finished with: exhausted, or closed by the UI

    @property
    def tokens(self) -> int:
        return sum(len(e.new_token_ids) for e in self.events if isinstance(e, Iteration))


class LoggingFactory:
    """Wraps the real factory: logs every run it starts and counts the events pulled from each.

    ``hold_first_at``: the first run stops before handing over that many events (the decoder has
    already computed the next one) until :attr:`release` is set, so a test can act on a run in
    progress however fast or slow the machine decodes.
    """

    def __init__(self, inner: EventSourceFactory, *, hold_first_at: int | None = None) -> None:
        self._inner = inner
        self._hold_first_at = hold_first_at
        self.runs: list[RunLog] = []
        self.holding = threading.Event()  # the first run is waiting for ``release``
        self.release = threading.Event()

    def __call__(self, settings: RunSettings) -> Iterator[Event]:
        log = RunLog(settings)
        self.runs.append(log)
        hold = self._hold_first_at if len(self.runs) == 1 else None
        return self._pull(log, self._inner(settings), hold)

    def _pull(self, log: RunLog, events: Iterator[Event], hold: int | None) -> Iterator[Event]:
        try:
            for event in events:
                if len(log.events) == hold:
                    self.holding.set()
                    assert self.release.wait(RUN_TIMEOUT_S), "the test never released the held run"
                log.events.append(event)
                yield event
            log.exhausted = True
        finally:
            log.closed = True
            close = getattr(events, "close", None)  # stops the decoder and frees make_factory's lock
            if close is not None:
                close()


def _app(factory: EventSourceFactory, settings: RunSettings, **options: object) -> SpecvizApp:
    return SpecvizApp(factory=factory, settings=settings, blink=False, **options)  # type: ignore[arg-type]


# -- live runs -----------------------------------------------------------------------------------------


async def test_live_run_on_a_tiny_model_matches_the_headless_decoder(tiny: TinyModels) -> None:
    session = _session(tiny)
    settings = RunSettings(prompt="def add(a, b):\n    return", gamma=3, max_new_tokens=30)
    headless = _finished(session.speculative(settings))
    app = _app(make_factory(session), settings, autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: run_done(app), timeout=RUN_TIMEOUT_S)
        run = app.run_recording
        assert run.finished.token_ids == headless.token_ids
        assert sum(len(it.new_token_ids) for it in run.iterations) == 30
        assert run.started.drafter == "model"


async def test_the_drafter_key_reaches_a_live_token_tree_run(tiny: TinyModels) -> None:
    """d onto the hybrid drafter with automatic γ on: no crash, γ's cap becomes the node budget,
    and the run is the real tree decoder's, drawn as trees."""
    from specviz.commands.ui import offered_drafters
    from specviz.tui.widgets.inspector import IterationInspector

    session = _session(tiny)
    settings = RunSettings(prompt="def add(a, b):\n    return", gamma=6, auto_gamma=True, max_new_tokens=12)
    drafters = offered_drafters(True, session.same_vocab)
    app = _app(make_factory(session), settings, drafters=drafters)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d", "d", "d")  # model → ngram → tree → hybrid
        assert app.next_settings.drafter == "hybrid" and not app.next_settings.auto_gamma
        await pilot.press("r")
        await wait_until(pilot, lambda: run_done(app), timeout=RUN_TIMEOUT_S)
        run = app.run_recording
        assert run.started.drafter == "hybrid" and run.started.gamma == 6
        trees = [it for it in run.iterations if it.tree]
        assert trees and all(len(it.tree) <= 6 + 1 for it in trees)  # the model always gets one node
        assert sum(len(it.new_token_ids) for it in run.iterations) == 12
        expected = _finished(
            session.plain(settings.evolve(mode="autoregressive", auto_gamma=False))
        ).token_ids
        assert run.finished.token_ids == expected  # greedy trees change nothing but speed
        index = run.iterations.index(trees[0])
        app.jump_to(trees[0].index)
        await pilot.pause()
        inspector = app.query_one("#inspector", IterationInspector)
        assert inspector.index == index
        assert str(inspector.query_one("#inspector-body").content.renderables[0]).startswith(
            f"tree: {len(trees[0].tree)} nodes"
        )


def test_tree_drafters_need_a_draft_with_the_targets_tokenizer() -> None:
    from specviz.commands.ui import offered_drafters

    assert offered_drafters(True, True) == ("model", "ngram", "tree", "hybrid", "lookup-tree")
    assert offered_drafters(True, False) == ("model", "ngram", "lookup-tree")  # the chain bridges tokenizers
    assert offered_drafters(False, True) == ("ngram", "lookup-tree")


# -- cancellation: the replaced decoder stops pulling, it does not just go unseen --------------------------

HOLD_AT = 3  # RunStarted and two iterations reach the UI; the third is computed and held


def _assert_cut_short(log: RunLog, settings: RunSettings) -> None:
    """The run's decoder was closed right after the UI's next pull, long before it could finish."""
    assert log.closed and not log.exhausted, "the cancelled decoder ran on to its end"
    assert len(log.events) == HOLD_AT + 1, "the cancelled decoder was pulled after the cancel"
    assert not any(isinstance(e, RunFinished) for e in log.events)
    assert log.tokens < settings.max_new_tokens // 4


async def test_starting_a_new_run_cancels_the_live_decoder(tiny: TinyModels) -> None:
    settings = RunSettings(prompt="x = 1\n", gamma=2, max_new_tokens=100)
    factory = LoggingFactory(make_factory(_session(tiny)), hold_first_at=HOLD_AT)
    app = _app(factory, settings, autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: factory.holding.is_set() and len(app.run_recording) == HOLD_AT - 1)
        cancelled = app.run_recording
        await pilot.press("G", "r")  # γ + 1, new run: the old worker must stop
        await wait_until(pilot, lambda: len(factory.runs) == 2)  # the new worker has started
        factory.release.set()
        await wait_until(pilot, lambda: run_done(app), timeout=RUN_TIMEOUT_S)
        _assert_cut_short(factory.runs[0], settings)
        assert cancelled.finished is None and len(cancelled) == HOLD_AT - 1  # nothing late reached it
        run = app.run_recording
        assert run.started.gamma == 3 and factory.runs[1].exhausted
        assert [it.index for it in run.iterations] == list(range(len(run)))
        assert run.finished.token_ids == _finished(iter(factory.runs[1].events)).token_ids
        assert len(factory.runs) == 2


async def test_a_run_cancels_a_race_in_progress(tiny: TinyModels) -> None:
    settings = RunSettings(prompt="x = 1\n", gamma=2, max_new_tokens=100)
    factory = LoggingFactory(make_factory(_session(tiny)), hold_first_at=HOLD_AT)
    app = _app(factory, settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        await wait_until(pilot, lambda: factory.holding.is_set() and app.race_runs is not None)
        await wait_until(pilot, lambda: len(app.race_runs["plain"]) == HOLD_AT - 1)
        await pilot.press("r")
        await wait_until(pilot, lambda: len(factory.runs) == 2)
        factory.release.set()
        await wait_until(pilot, lambda: run_done(app), timeout=RUN_TIMEOUT_S)
        _assert_cut_short(factory.runs[0], settings)
        # The race never went on to its speculative run, and the panel holds what it had.
        assert [log.settings.mode for log in factory.runs] == ["autoregressive", "speculative"]
        race = app.query_one("#race", RacePanel)
        assert not race.racing and app.race_runs["speculative"].started is None
        assert app.race_runs["plain"].finished is None and len(app.race_runs["plain"]) == HOLD_AT - 1


async def test_a_race_cancels_the_live_run(tiny: TinyModels) -> None:
    settings = RunSettings(prompt="x = 1\n", gamma=2, max_new_tokens=40)
    factory = LoggingFactory(make_factory(_session(tiny)), hold_first_at=HOLD_AT)
    app = _app(factory, settings, autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        race_ended = Handled(app, RaceEnded)
        await wait_until(pilot, lambda: factory.holding.is_set() and len(app.run_recording) == HOLD_AT - 1)
        await pilot.press("x")
        await wait_until(pilot, lambda: len(factory.runs) == 2)  # the race's plain run has started
        factory.release.set()
        await wait_until(pilot, lambda: race_ended.count == 1, timeout=RUN_TIMEOUT_S)
        assert app.race_runs["speculative"].finished is not None
        _assert_cut_short(factory.runs[0], settings)
        assert [log.settings.mode for log in factory.runs] == ["speculative", "autoregressive", "speculative"]
        assert all(log.exhausted for log in factory.runs[1:])


# -- races -------------------------------------------------------------------------------------------------


async def _race(app: SpecvizApp, pilot: Pilot) -> RacePanel:
    """Race, wait until both runs are decoded and the race's worker is done, and show them to the end."""
    race_ended = Handled(app, RaceEnded)
    await pilot.press("x")
    assert app.query_one("#tabs").active == "tab-race"
    await wait_until(pilot, lambda: race_ended.count == 1, timeout=RUN_TIMEOUT_S)
    assert not app.decoding and app.race_runs["speculative"].finished is not None
    await pilot.press("end")
    race = app.query_one("#race", RacePanel)
    assert race.shown == (len(app.race_runs["plain"]), len(app.race_runs["speculative"]))
    return race


def _status_classes(race: RacePanel) -> set[str]:
    return set(race.query_one("#race-status").classes) & {"-identical", "-different"}


async def test_live_race_on_a_tiny_model_marks_identical_greedy_outputs(tiny: TinyModels) -> None:
    session = _session(tiny)
    settings = RunSettings(prompt="def add(a, b):\n    return", gamma=3, max_new_tokens=30)
    expected = _finished(session.plain(settings)).token_ids
    app = _app(make_factory(session), settings)
    async with app.run_test(size=SIZE) as pilot:
        race = await _race(app, pilot)
        plain, spec = app.race_runs["plain"], app.race_runs["speculative"]
        assert plain.finished.token_ids == spec.finished.token_ids == expected
        # Identical because the decoder corrected its draft, not because nothing was drafted.
        assert any(it.correction.kind == "resampled" for it in spec.iterations)
        assert race.status_text.startswith(f"✓ identical greedy outputs ({len(expected)} tokens)")
        assert _status_classes(race) == {"-identical"}
        # The race's plain run is the baseline of the speculative one now in the main view.
        assert app.run_recording is spec and app.baseline is plain


async def test_live_race_marks_greedy_outputs_that_differ(tiny: TinyModels) -> None:
    """A speculative decoder that is not lossless shows as such: here its target is another model.

    The only way to "differ" on screen: greedy verification is argmax matching under every rule, so
    a lossy rule still gives the plain run's tokens, and a sampled race gets no verdict ("≈ sampling").
    """
    settings = RunSettings(prompt="def add(a, b):\n    return", gamma=3, max_new_tokens=30)
    plain_session, spec_session = _session(tiny), _session(tiny, tiny.other_target)
    plain_factory, spec_factory = make_factory(plain_session), make_factory(spec_session)

    def factory(run: RunSettings) -> Iterator[Event]:
        return (plain_factory if run.mode == "autoregressive" else spec_factory)(run)

    a = _finished(plain_session.plain(settings)).token_ids
    b = _finished(spec_session.speculative(settings)).token_ids
    first = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    app = _app(factory, settings)
    async with app.run_test(size=SIZE) as pilot:
        race = await _race(app, pilot)
        plain, spec = app.race_runs["plain"], app.race_runs["speculative"]
        assert (plain.finished.token_ids, spec.finished.token_ids) == (a, b)
        assert race.status_text.startswith(f"✗ greedy outputs differ at token {first}")
        assert _status_classes(race) == {"-different"}


# -- loading models in the UI ------------------------------------------------------------------------------


def test_the_session_loader_names_each_stage_and_explains_failures(tiny: TinyModels) -> None:
    from specviz.commands.ui import SessionLoader
    from specviz.tui.model_loading import ModelChoice, ModelLoadError

    target, draft = tiny.target, tiny.draft
    loader = SessionLoader(ModelOptions(target, None, device="cpu"), RunSettings(prompt=""))
    stages: list[tuple[str, int, int]] = []
    models = loader.load(ModelChoice(target, draft), lambda *stage: stages.append(stage))
    names = [stage for stage, _, _ in stages]
    assert names[0] == f"loading {target}" and names[-1] == "warming up"
    assert f"loading {draft}" in names  # after the target's packing: the draft's load is named
    assert stages[-1] == ("warming up", 1, 1)
    assert models.drafters == ("model", "ngram", "tree", "hybrid", "lookup-tree") and models.target == target
    assert models.draft == f"{draft} [int8]" and models.detail == "cpu/float32"
    assert {entry.name for entry in loader.catalogue()} >= {"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"}
    with pytest.raises(ModelLoadError, match="does not exist"):
        loader.load(ModelChoice(str(Path(target).parent / "missing" / "model"), None), lambda *stage: None)


async def test_the_live_ui_loads_a_tiny_pair_in_a_worker_and_survives_a_bad_switch(tiny: TinyModels) -> None:
    from textual.widgets import Input

    from specviz.commands.ui import SessionLoader
    from specviz.tui.model_loading import ModelChoice
    from specviz.tui.widgets.load_status import LoadStatus
    from specviz.tui.widgets.settings_bar import SettingsBar

    target, draft = tiny.target, tiny.draft
    settings = RunSettings(prompt="def add(a, b):\n    return", gamma=3, max_new_tokens=20)
    loader = SessionLoader(ModelOptions(target, draft, device="cpu"), settings)
    app = SpecvizApp(
        loader=loader,
        models=ModelChoice(target, draft),
        settings=settings,
        autorun=True,
        blink=False,
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: run_done(app), timeout=RUN_TIMEOUT_S)
        assert app.run_recording.started.target == target and app.run_recording.started.drafter == "model"
        assert "→" not in app.query_one("#settings", SettingsBar).plain
        await pilot.press("M")
        app.screen.query_one("#target-input", Input).focus()
        await pilot.press(*"./no/such/model", "enter")
        await wait_until(pilot, lambda: app.loading is None, timeout=RUN_TIMEOUT_S)
        status = app.query_one("#load-status", LoadStatus).plain
        assert "could not load ./no/such/model" in status and "does not exist" in status
        assert app.models is not None and app.models.target == target
        await pilot.press("r")
        await wait_until(pilot, lambda: run_done(app), timeout=RUN_TIMEOUT_S)
        assert app.run_recording.started.target == target
