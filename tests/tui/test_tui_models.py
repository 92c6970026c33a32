"""Loading and switching models inside the UI, and the sampling keys, with a fake loader (no torch)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator

from textual.widgets import Input, OptionList, TextArea

from specviz.decoding.events import Event
from specviz.decoding.settings import RunSettings
from specviz.tui.app import SpecvizApp
from specviz.tui.keys import KEYS
from specviz.tui.model_loading import LoadedModels, ModelChoice, ModelEntry, ModelLoadError, Progress
from specviz.tui.widgets.help_screen import HelpScreen, bindings_table
from specviz.tui.widgets.load_status import LoadStatus
from specviz.tui.widgets.model_screen import ModelScreen
from specviz.tui.widgets.settings_bar import SettingsBar
from specviz.tui.widgets.stats_bar import StatsBar
from tests.support.fake_source import FakeSource

from .conftest import run_done, wait_until

SIZE = (110, 32)
SETTINGS = RunSettings(prompt="Explain speculative decoding.", gamma=4, seed=1, max_new_tokens=60)
PAIR = ModelChoice("big", "small")


class FakeLoader:
    """Loads nothing: reports one progress stage, optionally blocks on ``gate``, fails on request.

    Every run its factories start is logged as (the choice it was loaded from, the settings).
    """

    def __init__(self, *, gate: threading.Event | None = None, fail: frozenset[str] = frozenset()) -> None:
        self.gate = gate
        self.fail = fail
        self.loads: list[ModelChoice] = []
        self.runs: list[tuple[ModelChoice, RunSettings]] = []

    def catalogue(self) -> list[ModelEntry]:
        return [
            ModelEntry("big", "the big target", True, "ready"),
            ModelEntry("small", "its draft", True, "ready"),
            ModelEntry("other", "not downloaded yet", False, "not provisioned"),
        ]

    def load(self, choice: ModelChoice, progress: Progress) -> LoadedModels:
        self.loads.append(choice)
        progress(f"packing {choice.target} for oneDNN", 3, 10)
        if self.gate is not None:
            assert self.gate.wait(timeout=30), "the test never released the loader"
        if choice.target in self.fail:
            raise ModelLoadError(f"model path {choice.target} does not exist")

        draft = f"{choice.draft} [int8]" if choice.draft else None
        source = FakeSource(target=choice.target, draft=draft or "")

        def factory(settings: RunSettings) -> Iterator[Event]:
            self.runs.append((choice, settings))
            return source(settings)

        return LoadedModels(
            factory=factory,
            # As the real loader offers them (specviz.commands.ui.offered_drafters), same tokenizer.
            drafters=("model", "ngram", "tree", "hybrid", "lookup-tree")
            if choice.draft
            else ("ngram", "lookup-tree"),
            target=choice.target,
            draft=draft,
            detail="cpu/float32",
        )


def loading_app(loader: FakeLoader, **kwargs) -> SpecvizApp:
    options = {"loader": loader, "models": PAIR, "settings": SETTINGS, "blink": False, "show_timings": False}
    options.update(kwargs)
    return SpecvizApp(**options)


def status_text(app: SpecvizApp) -> str:
    return app.query_one("#load-status", LoadStatus).plain


def bar_text(app: SpecvizApp) -> str:
    return app.query_one("#settings", SettingsBar).plain


def notes(app: SpecvizApp) -> str:
    return "\n".join(n.message for n in app._notifications)


async def test_the_ui_opens_while_models_load_and_runs_wait_for_them() -> None:
    gate = threading.Event()
    loader = FakeLoader(gate=gate)
    app = loading_app(loader, autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "packing big for oneDNN" in status_text(app))
        assert "loading big + small" in status_text(app) and "3/10" in status_text(app)
        assert "target big (loading)" in bar_text(app)
        assert app.query_one("#stats", StatsBar).view.state.startswith("⟳ loading")
        # Everything but running works meanwhile.
        await pilot.press("r")
        assert not app.decoding and "still loading" in notes(app)
        await pilot.press("x")
        assert not app.decoding and app.race_runs is None
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "3")
        assert app.query_one("#tabs").active == "tab-theory"
        await pilot.press("G", "p", "end", "space", "H", "i", "escape")
        assert app.query_one("#prompt", TextArea).text == SETTINGS.prompt + " Hi"
        assert loader.runs == []
        gate.set()
        # Ready: the autorun decodes the edited prompt with the edited settings.
        await wait_until(pilot, lambda: run_done(app))
        assert loader.loads == [PAIR]
        choice, settings = loader.runs[0]
        assert choice == PAIR and settings.prompt == SETTINGS.prompt + " Hi" and settings.gamma == 5
        assert settings.drafter == "model"
        assert app.query_one("#load-status", LoadStatus).view is None
        assert "models ready" in {n.title for n in app._notifications}
        assert "target big" in bar_text(app) and "draft small [int8]" in bar_text(app)


async def test_ready_models_do_not_run_a_prompt_being_edited() -> None:
    gate = threading.Event()
    app = loading_app(FakeLoader(gate=gate), autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        gate.set()
        await wait_until(pilot, lambda: app.models is not None)
        assert not app.decoding and isinstance(app.focused, TextArea)
        assert "ctrl+r" in notes(app)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: run_done(app))


async def test_a_failed_load_is_shown_and_other_models_can_be_chosen() -> None:
    loader = FakeLoader(fail=frozenset({"big"}))
    app = loading_app(loader)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.loading is None)
        assert "could not load big + small" in status_text(app)
        assert "model path big does not exist" in status_text(app)
        assert app.models is None
        assert app.query_one("#stats", StatsBar).view.state.startswith("✗ no models")
        assert "target big (not loaded)" in bar_text(app)
        await pilot.press("r")
        assert not app.decoding and "press M" in notes(app)
        # Still usable: pick the small model as the target and load it.
        await pilot.press("M")
        assert isinstance(app.screen, ModelScreen)
        assert app.screen.choice == PAIR  # the picker starts at the current choice
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: app.models is not None)
        assert loader.loads[-1] == ModelChoice("small", "small")
        assert app.query_one("#load-status", LoadStatus).view is None
        await pilot.press("r")
        await wait_until(pilot, lambda: run_done(app))
        assert loader.runs[-1][0] == ModelChoice("small", "small")


async def test_switching_models_keeps_the_old_pair_until_the_new_one_is_ready() -> None:
    loader = FakeLoader()
    app = loading_app(loader, autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: run_done(app))
        loader.gate = threading.Event()
        await pilot.press("M")
        assert isinstance(app.screen, ModelScreen)
        # A path typed under the target list wins over the list; the draft list's first row is "none".
        app.screen.query_one("#target-input", Input).focus()
        await pilot.press(*"/models/custom")
        app.screen.query_one("#draft-list", OptionList).focus()
        await pilot.press("home")
        assert app.screen.choice == ModelChoice("/models/custom", None)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "packing /models/custom" in status_text(app))
        assert "still using big + small" in status_text(app)
        # The old pair still runs meanwhile, and the bar still names it.
        assert "target big" in bar_text(app) and "→" not in bar_text(app)
        await pilot.press("r")
        await wait_until(pilot, lambda: not app.decoding and len(loader.runs) == 2)
        assert loader.runs[-1][0] == PAIR
        await pilot.press("M")
        assert not isinstance(app.screen, ModelScreen) and "Still loading" in notes(app)
        loader.gate.set()
        await wait_until(pilot, lambda: app.models is not None and app.models.target == "/models/custom")
        # No draft model now: the n-gram drafter, and the bar shows what changed for the next run.
        assert app.next_settings.drafter == "ngram"
        assert "target big→/models/custom" in bar_text(app)
        assert "drafter model→ngram" in bar_text(app)
        await pilot.press("r")
        await wait_until(pilot, lambda: not app.decoding and len(loader.runs) == 3)
        choice, settings = loader.runs[-1]
        assert choice == ModelChoice("/models/custom", None) and settings.drafter == "ngram"
        assert "→" not in bar_text(app)


async def test_a_failed_switch_keeps_the_old_models() -> None:
    loader = FakeLoader(fail=frozenset({"broken"}))
    app = loading_app(loader)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.models is not None)
        await pilot.press("M")
        app.screen.query_one("#target-input", Input).focus()
        await pilot.press(*"broken", "enter")
        await wait_until(pilot, lambda: app.loading is None and "could not" in status_text(app))
        assert loader.loads[-1] == ModelChoice("broken", "small")
        assert "model path broken does not exist" in status_text(app)
        assert "still using big + small" in status_text(app)
        assert app.models is not None and app.models.target == "big"
        await pilot.press("r")
        await wait_until(pilot, lambda: run_done(app))
        assert loader.runs[-1][0] == PAIR


async def test_the_model_picker_cancels_and_is_in_the_command_palette() -> None:
    loader = FakeLoader()
    app = loading_app(loader)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.models is not None)
        assert "Choose models" in {c.title for c in app.get_system_commands(app.screen)}
        await pilot.press("M")
        assert isinstance(app.screen, ModelScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, ModelScreen) and loader.loads == [PAIR]


async def test_replay_has_no_models_to_switch(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("M")
        assert not isinstance(app.screen, ModelScreen) and "no models to switch" in notes(app)


async def test_top_k_top_p_and_max_new_tokens_keys_set_the_next_run() -> None:
    loader = FakeLoader()
    app = loading_app(loader, autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: run_done(app))
        assert "top-k –" in bar_text(app) and "max 60" in bar_text(app)
        await pilot.press("k", "k", "u", "u", "L", "L")
        nxt = app.next_settings
        assert (nxt.top_k, nxt.top_p, nxt.max_new_tokens) == (50, 0.95, 128)
        assert "top-k –→50" in bar_text(app) and "top-p –→0.95" in bar_text(app)
        assert "max 60→128" in bar_text(app)
        await pilot.press("r")
        await wait_until(pilot, lambda: not app.decoding and len(loader.runs) == 2)
        settings = loader.runs[-1][1]
        assert (settings.top_k, settings.top_p, settings.max_new_tokens) == (50, 0.95, 128)
        started = app.run_recording.started
        assert (started.top_k, started.top_p, started.max_new_tokens) == (50, 0.95, 128)
        # Back up past the top rung: off again; down to the bottom rung and no further.
        await pilot.press("K", "K", "U", "U", *["l"] * 10)
        nxt = app.next_settings
        assert (nxt.top_k, nxt.top_p, nxt.max_new_tokens) == (None, None, 16)


def test_help_lists_the_new_keys() -> None:
    from rich.console import Console

    assert SpecvizApp.BINDINGS == KEYS  # the help screen and the palette list the app's bindings
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(bindings_table(KEYS))
    text = console.export_text()
    for label in ("Top-k down", "Top-p up", "Max new tokens up", "Choose models"):
        assert label in text


def test_the_settings_bar_names_switched_models() -> None:
    from textual.content import Content

    from specviz.tui.widgets.settings_bar import ModelLabels, settings_markup

    def plain(models: ModelLabels) -> str:
        return Content.from_markup(settings_markup(None, SETTINGS, models)).plain

    assert "target big  mode speculative  drafter model  draft small [int8]" in plain(
        ModelLabels("big", "small [int8]")
    )
    assert "target big (loading)" in plain(ModelLabels("big", None, "loading"))
    assert ModelChoice("t", None).label == "t (no draft model)" and PAIR.label == "big + small"


async def test_quitting_while_loading_does_not_wait_for_the_loader() -> None:
    gate = threading.Event()
    app = loading_app(FakeLoader(gate=gate))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "packing" in status_text(app))
        await pilot.press("q")
    # The app is gone while the load is still blocked: its thread is a daemon the exit ignores.
    loading = [t for t in threading.enumerate() if t.name == "specviz-load"]
    assert loading and all(t.daemon for t in loading) and not gate.is_set()
    gate.set()
