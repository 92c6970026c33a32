"""The UI's live path end to end on a tiny random transformers model: worker, streaming, cancel."""

from __future__ import annotations

from pathlib import Path

from specviz.decoding.events import RunFinished
from specviz.session import ModelOptions, RunSettings, Session
from specviz.tui.app import SpecvizApp
from specviz.ui_command import make_factory, ui_settings
from tests.tiny_models import save_tiny_checkpoint

from .conftest import wait_until


def _session(tmp_path: Path) -> Session:
    target = save_tiny_checkpoint(tmp_path / "target", seed=1)
    draft = save_tiny_checkpoint(tmp_path / "draft", seed=2)
    return Session(ModelOptions(target, draft, device="cpu"))


async def test_live_run_on_a_tiny_model_matches_the_headless_decoder(tmp_path: Path) -> None:
    session = _session(tmp_path)
    settings = RunSettings(prompt="def add(a, b):\n    return", gamma=3, max_new_tokens=30)
    headless = next(e for e in session.speculative(settings) if isinstance(e, RunFinished))
    app = SpecvizApp(
        factory=make_factory(session, settings), settings=ui_settings(settings), autorun=True, blink=False
    )
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: app.run_recording.finished is not None, timeout=60)
        run = app.run_recording
        assert run.finished.token_ids == headless.token_ids
        assert sum(len(it.new_token_ids) for it in run.iterations) == 30
        assert run.started.drafter == "model"


async def test_starting_a_new_run_cancels_the_live_decoder(tmp_path: Path) -> None:
    session = _session(tmp_path)
    settings = RunSettings(prompt="x = 1\n", gamma=2, max_new_tokens=200)
    app = SpecvizApp(
        factory=make_factory(session, settings), settings=ui_settings(settings), autorun=True, blink=False
    )
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: len(app.run_recording) >= 2, timeout=60)
        await pilot.press("G", "r")  # γ + 1, new run: the old worker must stop
        await wait_until(pilot, lambda: app.run_recording.finished is not None, timeout=120)
        run = app.run_recording
        assert run.started.gamma == 3
        assert [it.index for it in run.iterations] == list(range(len(run)))
        assert run.finished.reason == "max_new_tokens"
