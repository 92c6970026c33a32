"""The UI's live path end to end on a tiny random transformers model: worker, streaming, cancel."""

from __future__ import annotations

from pathlib import Path

import pytest

from specviz.commands.ui import make_factory, ui_settings
from specviz.decoding.events import RunFinished
from specviz.session import ModelOptions, RunSettings, Session
from specviz.tui.app import SpecvizApp
from tests.support.tiny_models import save_tiny_checkpoint

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


def test_the_session_loader_names_each_stage_and_explains_failures(tmp_path: Path) -> None:
    from specviz.commands.ui import SessionLoader
    from specviz.tui.model_loading import ModelChoice, ModelLoadError

    target = save_tiny_checkpoint(tmp_path / "target", seed=1)
    draft = save_tiny_checkpoint(tmp_path / "draft", seed=2)
    loader = SessionLoader(ModelOptions(target, None, device="cpu"), RunSettings(prompt=""))
    stages: list[tuple[str, int, int]] = []
    models = loader.load(ModelChoice(target, draft), lambda *stage: stages.append(stage))
    names = [stage for stage, _, _ in stages]
    assert names[0] == f"loading {target}" and names[-1] == "warming up"
    assert f"loading {draft}" in names  # after the target's packing: the draft's load is named
    assert stages[-1] == ("warming up", 1, 1)
    assert models.drafters == ("model", "ngram") and models.target == target
    assert models.draft == f"{draft} [int8]" and models.detail == "cpu/float32"
    assert {entry.name for entry in loader.catalogue()} >= {"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"}
    with pytest.raises(ModelLoadError, match="does not exist"):
        loader.load(ModelChoice(str(tmp_path / "missing" / "model"), None), lambda *stage: None)


async def test_the_live_ui_loads_a_tiny_pair_in_a_worker_and_survives_a_bad_switch(tmp_path: Path) -> None:
    from textual.widgets import Input

    from specviz.commands.ui import SessionLoader
    from specviz.tui.model_loading import ModelChoice
    from specviz.tui.widgets.load_status import LoadStatus
    from specviz.tui.widgets.settings_bar import SettingsBar

    target = save_tiny_checkpoint(tmp_path / "target", seed=1)
    draft = save_tiny_checkpoint(tmp_path / "draft", seed=2)
    settings = RunSettings(prompt="def add(a, b):\n    return", gamma=3, max_new_tokens=20)
    loader = SessionLoader(ModelOptions(target, draft, device="cpu"), settings)
    app = SpecvizApp(
        loader=loader,
        models=ModelChoice(target, draft),
        settings=ui_settings(settings),
        autorun=True,
        blink=False,
    )
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: app.run_recording.finished is not None, timeout=120)
        assert app.run_recording.started.target == target and app.run_recording.started.drafter == "model"
        assert "→" not in app.query_one("#settings", SettingsBar).plain
        await pilot.press("M")
        app.screen.query_one("#target-input", Input).focus()
        await pilot.press(*"./no/such/model", "enter")
        await wait_until(pilot, lambda: app.loading is None, timeout=60)
        status = app.query_one("#load-status", LoadStatus).plain
        assert "could not load ./no/such/model" in status and "does not exist" in status
        assert app.models is not None and app.models.target == target
        await pilot.press("r")
        await wait_until(
            pilot, lambda: not app.decoding and app.run_recording.finished is not None, timeout=120
        )
        assert app.run_recording.started.target == target
