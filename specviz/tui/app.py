"""The specviz screen: run, pause, step and rewind speculative decoding, and see why it is fast or not.

Two sources feed it the same events (specviz.decoding.events): a live :data:`EventSourceFactory`,
decoded in a thread worker that posts one message per event, or a recorded trace. Everything on
screen is derived from a :class:`~specviz.tui.recording.Recording` and a playhead (how many
iterations are revealed), so stepping back, jumping and replaying never recompute anything.

A live app may instead be handed a :class:`~specviz.tui.model_loading.ModelLoader`: the screen
opens at once, the models load on a background thread that reports its progress, and the factory
arrives with them; ``M`` loads another pair the same way while the old one stays in use.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from time import monotonic
from typing import IO, ClassVar, Literal

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, TabbedContent, TabPane, TextArea
from textual.worker import get_current_worker

from specviz.decoding.events import Event, Iteration, RunFinished, RunStarted, TraceWriter, read_trace
from specviz.tui.daemon_call import Abandoned, call_in_daemon_thread
from specviz.tui.export import write_metrics_csv, write_metrics_json, write_trace
from specviz.tui.messages import DecodeEnded, DecodeEvent, LoadFinished, LoadProgress, RaceEvent, RaceSide
from specviz.tui.model_loading import LoadedModels, ModelChoice, ModelLoader, ModelLoadError
from specviz.tui.pause_gate import PauseGate
from specviz.tui.playback import PaceClock
from specviz.tui.recording import Recording, split_runs
from specviz.tui.run_stats import summarise
from specviz.tui.settings_steps import MAX_NEW_TOKENS, TEMPERATURES, TOP_KS, TOP_PS, step
from specviz.tui.source import EventSourceFactory, RunSettings
from specviz.tui.widgets.charts import ChartData, ChartsPanel
from specviz.tui.widgets.help_screen import HelpScreen
from specviz.tui.widgets.inspector import IterationInspector
from specviz.tui.widgets.jump_screen import JumpScreen
from specviz.tui.widgets.legend import StatusLegend
from specviz.tui.widgets.load_status import LoadStatus, LoadView
from specviz.tui.widgets.model_screen import ModelScreen
from specviz.tui.widgets.race_view import RacePanel
from specviz.tui.widgets.settings_bar import ModelLabels, SettingsBar
from specviz.tui.widgets.stats_bar import StatsBar, StatsView
from specviz.tui.widgets.theory_view import TheoryPanel
from specviz.tui.widgets.token_stream import TokenStream

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
TICK_S = 1 / 30
ASSUMED_COST_RATIO = 0.4  # c of the default model pair on the reference CPU (DESIGN.md)
TABS = ("stream", "charts", "theory", "race")

StartAt = Literal["start", "end"]


class SpecvizApp(App[None]):
    """One screen: settings, prompt, token stream + inspector, charts, theory, race; stats; footer."""

    CSS_PATH = "app.tcss"
    TITLE = "specviz"
    AUTO_FOCUS = "#stream"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (34, "-tall")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_play", "Play/Pause"),
        Binding("right,n", "step", "Step"),
        Binding("left,b", "step_back", "Back"),
        Binding("home", "first", "First iteration", show=False),
        Binding("end", "last", "Last iteration", show=False),
        Binding("j", "jump", "Jump to iteration", show=False),
        Binding("r", "run", "Run"),
        Binding("ctrl+r", "run", "Run", show=False, priority=True),
        Binding("x", "race", "Race"),
        Binding("m", "toggle_mode", "Speculative/plain", show=False),
        Binding("g", "gamma(-1)", "γ −1", show=False),
        Binding("G", "gamma(1)", "γ +1", show=False),
        Binding("t", "temperature(-1)", "Temperature down", show=False),
        Binding("T", "temperature(1)", "Temperature up", show=False),
        Binding("k", "top_k(-1)", "Top-k down", show=False),
        Binding("K", "top_k(1)", "Top-k up (past 100: off)", show=False),
        Binding("u", "top_p(-1)", "Top-p down", show=False),
        Binding("U", "top_p(1)", "Top-p up (past 0.99: off)", show=False),
        Binding("l", "max_new_tokens(-1)", "Max new tokens down", show=False),
        Binding("L", "max_new_tokens(1)", "Max new tokens up", show=False),
        Binding("d", "drafter", "Next drafter", show=False),
        Binding("s", "seed(-1)", "Seed −1", show=False),
        Binding("S", "seed(1)", "Seed +1", show=False),
        Binding("M", "choose_models", "Choose models", show=False),
        Binding("minus", "speed(-1)", "Slower playback", show=False),
        Binding("plus,equals_sign", "speed(1)", "Faster playback", show=False),
        Binding("left_square_bracket", "cost_ratio(-0.05)", "Theory: c −0.05", show=False),
        Binding("right_square_bracket", "cost_ratio(0.05)", "Theory: c +0.05", show=False),
        Binding("o", "toggle_drafts", "Show/hide rejected drafts", show=False),
        Binding("i", "toggle_boundaries", "Show/hide iteration marks", show=False),
        Binding("w", "toggle_two_phase", "Step draft, then verify", show=False),
        Binding("p", "focus_prompt", "Edit prompt", show=False),
        Binding("escape", "focus_stream", "Leave prompt", show=False),
        Binding("e", "export", "Export"),
        Binding("1", "show_tab('stream')", "Stream view", show=False),
        Binding("2", "show_tab('charts')", "Charts view", show=False),
        Binding("3", "show_tab('theory')", "Theory view", show=False),
        Binding("4", "show_tab('race')", "Race view", show=False),
        Binding("question_mark,f1", "help", "Help"),
        Binding("q", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        *,
        factory: EventSourceFactory | None = None,
        settings: RunSettings | None = None,
        events: Iterable[Event] | None = None,
        loader: ModelLoader | None = None,
        models: ModelChoice | None = None,
        record_to: Path | None = None,
        export_dir: Path | None = None,
        drafters: Sequence[str] = ("model", "ngram"),
        autorun: bool = False,
        start_at: StartAt = "end",
        show_timings: bool = True,
        blink: bool = True,
    ) -> None:
        """Live when ``factory`` or ``loader`` is given (``settings`` are the first run's), replay
        when ``events`` are.

        ``loader`` loads ``models`` in a worker when the app opens (unless a ``factory`` is given
        too) and any pair chosen with ``M`` later. ``show_timings=False`` hides every time-derived
        number (deterministic screenshots); ``blink=False`` stops the cursors blinking (snapshot tests).
        """
        super().__init__()
        if factory is None and events is None and loader is None:
            raise ValueError("SpecvizApp needs a factory or a loader (live) or events (replay)")
        if loader is not None and factory is None and models is None:
            raise ValueError("SpecvizApp needs the models to load first")
        self._factory = factory
        self._loader = loader
        self._models: LoadedModels | None = None  # the loaded pair behind ``_factory``, if a loader made it
        self._models_choice: ModelChoice | None = None  # what was asked for to get ``_models``
        self._first_models = models  # loaded when the app opens, unless a factory came ready-made
        self._load_id = 0
        self._loading: ModelChoice | None = None  # the pair a worker is loading now
        self._replay_runs = split_runs(events) if events is not None else []
        self._settings = settings or RunSettings(prompt="")
        self._record_to = record_to
        self._trace_opened = False
        self._export_dir = export_dir or Path.cwd()
        self._drafters = tuple(drafters) or ("model",)
        self._autorun = autorun
        self._start_at = start_at
        self._show_timings = show_timings
        self._blink = blink

        self._run = Recording()
        self._baseline: Recording | None = None
        self._revealed = 0
        self._selected: int | None = None
        self._pending = False  # the next iteration's drafts are shown, unverified
        self._two_phase = False

        self._run_id = 0
        self._gate: PauseGate | None = None
        self._decoding = False
        self._follow = True
        self._pending_steps = 0

        self._speed = 1.0
        self._clock: PaceClock | None = None
        self._last_tick = 0.0
        self._timer: Timer | None = None

        self._race: dict[RaceSide, Recording] | None = None
        self._race_clocks: tuple[PaceClock, PaceClock] | None = None
        self._race_decoding = False

        self._theory_c: float | None = None
        self._charts_dirty = True

    # -- public, read-only state (tests and the CLI read it) ----------------------------------

    @property
    def live(self) -> bool:
        return self._factory is not None or self._loader is not None

    @property
    def models(self) -> LoadedModels | None:
        """The loaded pair the next run uses (None before the first load, or without a loader)."""
        return self._models

    @property
    def loading(self) -> ModelChoice | None:
        """The pair being loaded now, if any."""
        return self._loading

    @property
    def run_recording(self) -> Recording:
        return self._run

    @property
    def baseline(self) -> Recording | None:
        return self._baseline

    @property
    def revealed(self) -> int:
        """How many iterations of the current run are on screen (the playhead)."""
        return self._revealed

    @property
    def selected(self) -> int | None:
        """Position (in the run's iteration list) of the iteration in the inspector."""
        return self._selected

    @property
    def pending(self) -> bool:
        return self._pending

    @property
    def next_settings(self) -> RunSettings:
        return self._settings

    @property
    def decoding(self) -> bool:
        return self._decoding or self._race_decoding

    @property
    def playing(self) -> bool:
        return self._clock is not None or self._race_clocks is not None

    @property
    def paused(self) -> bool:
        return self._gate is not None and self._gate.paused

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def race_runs(self) -> dict[RaceSide, Recording] | None:
        return self._race

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SettingsBar(id="settings")
        yield LoadStatus(id="load-status", show_elapsed=self._show_timings)
        prompt = TextArea(
            self._settings.prompt,
            id="prompt",
            soft_wrap=True,
            show_line_numbers=False,
            read_only=not self.live,
        )
        prompt.cursor_blink = self._blink
        prompt.border_title = "prompt (p edits, esc leaves, ctrl+r runs)" if self.live else "prompt (replay)"
        yield prompt
        with TabbedContent(initial="tab-stream", id="tabs"):
            with TabPane("1 Stream", id="tab-stream"):
                yield StatusLegend(id="legend")
                with Container(id="stream-row"):
                    yield TokenStream(id="stream")
                    yield IterationInspector(id="inspector", show_timings=self._show_timings)
            with TabPane("2 Charts", id="tab-charts"):
                yield ChartsPanel(id="charts")
            with TabPane("3 Theory", id="tab-theory"):
                yield TheoryPanel(id="theory")
            with TabPane("4 Race", id="tab-race"):
                yield RacePanel(id="race", show_timings=self._show_timings)
        yield StatsBar(id="stats")
        yield Footer()

    def on_mount(self) -> None:
        self._timer = self.set_interval(TICK_S, self._tick, pause=True)
        self.set_interval(0.25, self._flush_charts)
        if self._replay_runs:
            self._load_replay()
        else:
            self._load_run(Recording(), start_at="start")
        if self._factory is None and self._first_models is not None:
            self._start_load(self._first_models)
        elif self._autorun and self.live:
            self.action_run()

    def _load_replay(self) -> None:
        runs = self._replay_runs
        speculative = [r for r in runs if r.speculative]
        plain = [r for r in runs if not r.speculative]
        main = speculative[-1] if speculative else runs[-1]
        self._baseline = plain[-1] if plain and main is not plain[-1] else None
        if speculative and plain:
            self._race = {"plain": plain[-1], "speculative": speculative[-1]}
        if main.started is not None:
            self._settings = RunSettings.from_run_started(main.started)
            self.query_one("#prompt", TextArea).text = main.started.prompt
        self._load_run(main, start_at=self._start_at)

    def _load_run(self, run: Recording, *, start_at: StartAt) -> None:
        self._stop_playback()
        self._run = run
        self._pending = False
        prompt = run.started.prompt if run.started is not None else self._settings.prompt
        self._stream.reset(prompt or None, run.iterations)
        self._revealed = -1
        self._reveal(len(run) if start_at == "end" else 0)

    # -- the playhead -------------------------------------------------------------------------

    @property
    def _stream(self) -> TokenStream:
        return self.query_one("#stream", TokenStream)

    def _reveal(self, n: int, *, pending: bool = False) -> None:
        """Move the playhead: show iterations[:n] (and iteration n's drafts if ``pending``)."""
        n = max(0, min(n, len(self._run)))
        pending = pending and n < len(self._run)
        changed = n != self._revealed or pending != self._pending
        self._revealed, self._pending = n, pending
        if changed:
            self._selected = n if pending else (n - 1 if n > 0 else None)
            self._stream.show(n, pending=pending)
            self._stream.select(self._selected)
            self._charts_dirty = True
        self._refresh_panels()

    def _refresh_panels(self) -> None:
        run = self._run
        self.query_one("#inspector", IterationInspector).show(run, self._selected, pending=self._pending)
        stats = summarise(run, self._revealed, self._baseline_for(run))
        self.query_one("#stats", StatsBar).update_view(
            StatsView(self._state_label(), self._revealed, len(run), stats, self._show_timings)
        )
        self.query_one("#settings", SettingsBar).show(
            run.started, self._settings if self.live else None, self._model_labels()
        )
        self.query_one("#legend", StatusLegend).set_speculative(run.speculative)
        if self._tab_visible("theory"):
            self._refresh_theory(stats.cost_ratio, stats.alpha_hat)
        if self._tab_visible("charts") and not (self._decoding and self._follow):
            self._flush_charts()

    def _model_labels(self) -> ModelLabels | None:
        """The models the next run uses, or (before any pair is loaded) the ones on their way."""
        if self._models is not None:
            return ModelLabels(self._models.target, self._models.draft)
        pending = self._loading or self._first_models
        if pending is None or self._factory is not None:
            return None  # a factory handed in directly: the app does not know its models
        return ModelLabels(pending.target, pending.draft, "loading" if self._loading else "not loaded")

    def _state_label(self) -> str:
        label = self._activity()
        return f"{label} · 2-step" if self._two_phase else label

    def _activity(self) -> str:
        if self._race_decoding:
            return "⟳ racing"
        if self._decoding:
            return "⏸ paused" if self.paused else "▶ decoding"
        if self.playing:
            return f"▶ playing ×{self._speed:g}"
        if not self.live:
            return "◼ replay"
        if self._factory is None:
            return "⟳ loading models" if self._loading is not None else "✗ no models"
        if self._run.finished is not None:
            return f"■ {self._run.finished.reason}"
        return "○ ready"

    def _baseline_for(self, run: Recording) -> Recording | None:
        """A plain run of the same model and device: only then is its tokens/s a fair baseline."""
        base = self._baseline
        if base is None or base is run or run.started is None or base.started is None:
            return None
        a, b = run.started, base.started
        if (a.target, a.device, a.dtype) != (b.target, b.device, b.dtype):
            return None
        return base

    def _tab_visible(self, name: str) -> bool:
        return self.query_one("#tabs", TabbedContent).active == f"tab-{name}"

    def _flush_charts(self) -> None:
        if not self._charts_dirty or not self._tab_visible("charts"):
            return
        self._charts_dirty = False
        stats = summarise(self._run, self._revealed, self._baseline_for(self._run))
        self.query_one("#charts", ChartsPanel).update_data(ChartData.of(self._run, self._revealed, stats))

    def _refresh_theory(self, measured: float | None, alpha: float | None) -> None:
        theory = self.query_one("#theory", TheoryPanel)
        started = self._run.started
        gamma = started.gamma if started is not None and started.mode == "speculative" else None
        if self._theory_c is not None:
            theory.set_context(self._theory_c, source="set", alpha=alpha, gamma=gamma)
        elif measured is not None:
            theory.set_context(measured, source="measured", alpha=alpha, gamma=gamma)
        else:
            theory.set_context(ASSUMED_COST_RATIO, source="assumed", alpha=alpha, gamma=gamma)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-charts":
            self._charts_dirty = True
            self._flush_charts()
        elif event.pane.id == "tab-theory":
            stats = summarise(self._run, self._revealed, self._baseline_for(self._run))
            self._refresh_theory(stats.cost_ratio, stats.alpha_hat)
        focused = self.focused
        if focused is None or event.pane not in focused.ancestors_with_self:
            self._focus_pane(event.pane.id or "")

    def _focus_pane(self, pane_id: str) -> None:
        """Focus a widget in the shown pane, else Textual refocuses the hidden one's pane and flips back."""
        target = {
            "tab-stream": "#stream",
            "tab-charts": "#charts",
            "tab-theory": "#theory",
            "tab-race": "#race-spec",
        }
        if pane_id in target and not isinstance(self.screen, (HelpScreen, JumpScreen, ModelScreen)):
            self.query_one(target[pane_id]).focus()

    @on(TokenStream.IterationClicked, "#stream")
    def _iteration_clicked(self, event: TokenStream.IterationClicked) -> None:
        if event.iteration < self._revealed:
            self._selected = event.iteration
            self._stream.select(event.iteration)
            self._refresh_panels()

    # -- live decoding --------------------------------------------------------------------------

    def action_run(self) -> None:
        """Decode the prompt with the next-run settings (cancels a run in progress)."""
        if not self.live:
            self.notify(
                "Replay: there is no model to run. Start specviz with a model to decode.", severity="warning"
            )
            return
        if not self._models_ready():
            return
        prompt = self.query_one("#prompt", TextArea).text
        if not prompt.strip():
            self.notify("The prompt is empty.", severity="warning")
            return
        self._settings = self._settings.evolve(prompt=prompt)
        self._start_run(self._settings)
        self.action_focus_stream()

    def _models_ready(self) -> bool:
        """Whether a run can start now; if not, say why (still loading, or the load failed)."""
        if self._factory is not None:
            return True
        if self._loading is not None:
            view = self.query_one("#load-status", LoadStatus).view
            stage = f" ({view.stage})" if view is not None and view.loading else ""
            self.notify(
                f"The models are still loading{stage}: the run can start once they are ready.",
                title="not ready",
                severity="warning",
                markup=False,
            )
        else:
            self.notify(
                "No models are loaded: press M to choose models.", title="not ready", severity="warning"
            )
        return False

    def _start_run(self, settings: RunSettings) -> None:
        self._run_id += 1
        self._race_decoding = False
        self._gate = PauseGate()
        self._decoding = True
        self._follow = True
        self._pending_steps = 0
        self._load_run(Recording(), start_at="start")
        self._decode(self._run_id, settings, self._gate, self._open_trace())

    def _open_trace(self) -> tuple[Path, str] | None:
        """Where the worker records this run: the first run starts the file, later ones append."""
        if self._record_to is None:
            return None
        mode = "a" if self._trace_opened else "w"
        self._trace_opened = True
        return self._record_to, mode

    def _events_for(self, settings: RunSettings) -> Iterator[Event]:
        assert self._factory is not None
        return self._factory(settings)

    @work(thread=True, exclusive=True, group="decode", exit_on_error=False)
    def _decode(
        self, run_id: int, settings: RunSettings, gate: PauseGate, trace: tuple[Path, str] | None
    ) -> None:
        worker = get_current_worker()
        error: str | None = None
        handle: IO[str] | None = None
        events: Iterator[Event] | None = None
        try:
            if trace is not None:
                handle = trace[0].open(trace[1], encoding="utf-8")
            writer = TraceWriter(handle) if handle is not None else None
            events = self._events_for(settings)
            first = True
            while not worker.is_cancelled:
                # Hold between iterations while paused; RunStarted (after prefill) always flows.
                if not first and not gate.wait(lambda: worker.is_cancelled):
                    break
                first = False
                event = next(events, None)
                if event is None or worker.is_cancelled:
                    break
                if writer is not None:
                    writer.write(event)
                self.post_message(DecodeEvent(run_id, event))
        except Exception as exc:  # a failing decoder must not take the UI down; show it instead
            error = f"{type(exc).__name__}: {exc}"
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
            if handle is not None:
                handle.close()
            self.post_message(DecodeEnded(run_id, error))

    @on(DecodeEvent)
    def _decode_event(self, message: DecodeEvent) -> None:
        if message.run_id != self._run_id:
            return
        event = message.event
        self._run.add(event)
        if isinstance(event, RunStarted):
            self._stream.reset(event.prompt or None, self._run.iterations)
            self._revealed = -1
            self._reveal(0)
        elif isinstance(event, Iteration):
            if self._follow:
                self._reveal(len(self._run))
            elif self._pending_steps > 0:
                self._pending_steps -= 1
                self._advance()
            else:
                self._refresh_panels()
        elif isinstance(event, RunFinished):
            self._pending_steps = 0
            self._refresh_panels()

    @on(DecodeEnded)
    def _decode_ended(self, message: DecodeEnded) -> None:
        if message.run_id != self._run_id:
            return
        self._decoding = False
        self._race_decoding = False
        self._gate = None
        self._pending_steps = 0
        if message.error:
            self.notify(message.error, title="decoding failed", severity="error", timeout=10, markup=False)
        elif not self._run.speculative and self._run.finished is not None:
            self._baseline = self._run
        if self._follow:
            self._reveal(len(self._run))
        self._refresh_panels()

    # -- loading and switching models -------------------------------------------------------------

    def action_choose_models(self) -> None:
        """Open the model picker; the chosen pair loads in a worker while the current one stays."""
        if self._loader is None:
            message = (
                "Replay shows a recorded run; there are no models to switch."
                if not self.live
                else "This session was started without a model loader; models cannot be switched."
            )
            self.notify(message, severity="warning")
            return
        if self._loading is not None:
            self.notify(f"Still loading {self._loading.label}; choose again once it is done.", markup=False)
            return
        try:
            entries = self._loader.catalogue()
        except Exception as exc:  # a broken cache must not stop the user typing a path instead
            entries = []
            self.notify(f"Cannot list the packaged models: {exc}", severity="warning", markup=False)
        current = self._current_choice()
        self.push_screen(ModelScreen(entries, current, blink=self._blink), self._models_chosen)

    def _current_choice(self) -> ModelChoice | None:
        return self._models_choice or self._first_models

    def _models_chosen(self, choice: ModelChoice | None) -> None:
        if choice is not None:
            self._start_load(choice)

    def _start_load(self, choice: ModelChoice) -> None:
        self._load_id += 1
        self._loading = choice
        kept = self._models_choice.label if self._models_choice is not None else None
        self.query_one("#load-status", LoadStatus).show(LoadView(choice.label, kept=kept))
        self._load_models(self._load_id, choice)
        self._refresh_panels()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load_models(self, load_id: int, choice: ModelChoice) -> None:
        loader = self._loader
        assert loader is not None

        def load(abandoned: threading.Event) -> LoadedModels:
            # On a daemon thread (see daemon_call): quitting mid-load must not wait for torch.
            def progress(stage: str, done: int, total: int) -> None:
                if abandoned.is_set():
                    raise Abandoned  # the app is gone: stop at the loader's next report
                self.post_message(LoadProgress(load_id, stage, done, total))

            return loader.load(choice, progress)

        models: LoadedModels | None = None
        error: str | None = None
        try:
            models = await call_in_daemon_thread(load, name="specviz-load")
        except ModelLoadError as exc:  # the loader's own words: what to do about it
            error = str(exc)
        except Exception as exc:  # anything else is shown too, never raised into the UI
            error = f"{type(exc).__name__}: {exc}"
        self.post_message(LoadFinished(load_id, models, error))

    @on(LoadProgress)
    def _load_progress(self, message: LoadProgress) -> None:
        if message.load_id != self._load_id or self._loading is None:
            return
        status = self.query_one("#load-status", LoadStatus)
        if status.view is not None:
            status.show(
                LoadView(status.view.what, message.stage, message.done, message.total, kept=status.view.kept)
            )

    @on(LoadFinished)
    def _load_finished(self, message: LoadFinished) -> None:
        if message.load_id != self._load_id or self._loading is None:
            return
        choice, self._loading = self._loading, None
        status = self.query_one("#load-status", LoadStatus)
        kept = self._models_choice.label if self._models_choice is not None else None
        if message.models is None:
            error = message.error or "the loader returned nothing"
            status.show(LoadView(choice.label, error=error, kept=kept))
            self.notify(
                error, title=f"could not load {choice.label}", severity="error", timeout=10, markup=False
            )
            self._refresh_panels()
            return
        first = self._models is None and self._factory is None
        self._use_models(choice, message.models)
        status.show(None)
        detail = f" ({message.models.detail})" if message.models.detail else ""
        self.notify(f"Loaded {choice.label}{detail}.", title="models ready", markup=False)
        self._refresh_panels()
        if first and self._autorun:
            if isinstance(self.focused, TextArea):
                # The user is editing the prompt: do not run it from under their cursor.
                self.notify("Press ctrl+r to run the prompt.", title="models ready")
            else:
                self.action_run()

    def _use_models(self, choice: ModelChoice, models: LoadedModels) -> None:
        """Runs from now on decode with ``models``; a run in progress finishes on the old pair."""
        previous = self._models
        self._models = models
        self._models_choice = choice
        self._factory = models.factory
        self._drafters = models.drafters or ("ngram",)
        drafter = self._settings.drafter
        if drafter not in self._drafters:  # no draft model now: only the n-gram drafter is left
            drafter = self._drafters[0]
        elif previous is not None and previous.draft is None and "model" in self._drafters:
            drafter = "model"  # a draft model was just added to the pair: the user wants it used
        self._settings = self._settings.evolve(drafter=drafter)

    # -- play, pause, step ------------------------------------------------------------------------

    def action_toggle_play(self) -> None:
        if self._race_clocks is not None:
            self._stop_race()
            return
        if self._decoding and self._gate is not None:
            if self._gate.paused:
                self._gate.resume()
                self._follow = True
                self._reveal(len(self._run))
            else:
                self._gate.pause()
                self._follow = False
                self._refresh_panels()
            return
        if self._clock is not None:
            self._stop_playback()
            self._refresh_panels()
            return
        if not len(self._run):
            self.notify(
                "Nothing to play yet: press r to run." if self.live else "The trace has no iterations."
            )
            return
        start = 0 if self._revealed >= len(self._run) else self._revealed
        self._reveal(start)
        self._clock = PaceClock(self._run.cumulative_times(), start=start, speed=self._speed)
        self._start_timer()
        self._refresh_panels()

    def _hold(self) -> None:
        """Manual navigation stops playback and holds a live decoder between iterations."""
        self._stop_playback()
        if self._decoding and self._gate is not None and not self._gate.paused:
            self._gate.pause()
        self._follow = False

    def action_step(self) -> None:
        self._hold()
        if self._revealed < len(self._run):
            self._advance()
        elif self._decoding and self._gate is not None:
            # Ask the paused decoder for exactly one more iteration; it is shown when it arrives.
            self._pending_steps += 1
            self._gate.grant(1)
            self._refresh_panels()
        else:
            self.bell()
            self._refresh_panels()

    def _advance(self) -> None:
        if self._two_phase and not self._pending:
            self._reveal(self._revealed, pending=True)
        else:
            self._reveal(self._revealed + 1)

    def action_step_back(self) -> None:
        self._hold()
        if self._pending:
            self._reveal(self._revealed)
        elif self._revealed > 0:
            self._reveal(self._revealed - 1)
        else:
            self.bell()

    def action_first(self) -> None:
        self._hold()
        self._reveal(0)

    def action_last(self) -> None:
        if self._race_clocks is not None:
            self._finish_race()
            return
        self._hold()
        self._reveal(len(self._run))

    def action_jump(self) -> None:
        if not len(self._run):
            self.bell()
            return
        self.push_screen(JumpScreen(self._run.iterations[-1].index, blink=self._blink), self._jump_to)

    def jump_to(self, index: int) -> None:
        """Reveal up to and including the iteration whose ``Iteration.index`` is ``index``."""
        self._jump_to(index)

    def _jump_to(self, index: int | None) -> None:
        if index is None:
            return
        self._hold()
        indices = [it.index for it in self._run.iterations]
        self._reveal(bisect_right(indices, index))

    def action_speed(self, direction: int) -> None:
        i = min(range(len(SPEEDS)), key=lambda k: abs(SPEEDS[k] - self._speed))
        self._speed = SPEEDS[max(0, min(len(SPEEDS) - 1, i + direction))]
        if self._clock is not None:
            self._clock.speed = self._speed
        if self._race_clocks is not None:
            for clock in self._race_clocks:
                clock.speed = self._speed
        self._refresh_panels()

    def _start_timer(self) -> None:
        self._last_tick = monotonic()
        if self._timer is not None:
            self._timer.resume()

    def _stop_playback(self) -> None:
        self._clock = None
        if self._timer is not None and self._race_clocks is None:
            self._timer.pause()

    def _tick(self) -> None:
        now = monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if self._clock is not None:
            due = self._clock.advance(elapsed)
            if due != self._revealed:
                self._reveal(due)
            if self._clock.done:
                self._stop_playback()
                self._refresh_panels()
        if self._race_clocks is not None:
            plain, spec = self._race_clocks
            plain.advance(elapsed)
            spec.advance(elapsed)
            self._show_race_frame()
            if plain.done and spec.done:
                self._stop_race()

    # -- race -------------------------------------------------------------------------------------

    def action_race(self) -> None:
        """Plain then speculative with the same prompt and seed, then both played back side by side."""
        self.action_show_tab("race")
        if not self.live:
            if self._race is None:
                self.notify("This trace has no plain run to race against.", severity="warning")
                return
            self._start_race_playback()
            return
        if not self._models_ready():
            return
        prompt = self.query_one("#prompt", TextArea).text
        if not prompt.strip():
            self.notify("The prompt is empty.", severity="warning")
            return
        self._settings = self._settings.evolve(prompt=prompt)
        self._stop_race()
        self._stop_playback()
        self._run_id += 1
        self._decoding = False
        self._gate = None
        self._race_decoding = True
        self._race = {"plain": Recording(), "speculative": Recording()}
        self.query_one("#race", RacePanel).load(self._race["plain"], self._race["speculative"])
        self._race_worker(self._run_id, self._settings, self._open_trace())
        self._refresh_panels()

    @work(thread=True, exclusive=True, group="decode", exit_on_error=False)
    def _race_worker(self, run_id: int, settings: RunSettings, trace: tuple[Path, str] | None) -> None:
        worker = get_current_worker()
        error: str | None = None
        handle: IO[str] | None = None
        try:
            if trace is not None:
                handle = trace[0].open(trace[1], encoding="utf-8")
            writer = TraceWriter(handle) if handle is not None else None
            sides: tuple[tuple[RaceSide, RunSettings], ...] = (
                ("plain", settings.evolve(mode="autoregressive")),
                ("speculative", settings.evolve(mode="speculative")),
            )
            for side, side_settings in sides:
                events = self._events_for(side_settings)
                try:
                    for event in events:
                        if worker.is_cancelled:
                            return
                        if writer is not None:
                            writer.write(event)
                        self.post_message(RaceEvent(run_id, side, event))
                finally:
                    close = getattr(events, "close", None)
                    if close is not None:
                        close()
        except Exception as exc:  # shown to the user, not raised into the UI
            error = f"{type(exc).__name__}: {exc}"
        finally:
            if handle is not None:
                handle.close()
            self.post_message(DecodeEnded(run_id, error))

    @on(RaceEvent)
    def _race_event(self, message: RaceEvent) -> None:
        if message.run_id != self._run_id or self._race is None:
            return
        self._race[message.side].add(message.event)
        panel = self.query_one("#race", RacePanel)
        if isinstance(message.event, RunStarted):
            panel.load(self._race["plain"], self._race["speculative"])
        panel.decoding(message.side, self._race["plain"], self._race["speculative"])
        if message.side == "speculative" and isinstance(message.event, RunFinished):
            self._race_decoding = False
            self._baseline = self._race["plain"]
            self._load_run(self._race["speculative"], start_at="end")
            self._start_race_playback()

    def _start_race_playback(self) -> None:
        assert self._race is not None
        plain, spec = self._race["plain"], self._race["speculative"]
        self._stop_playback()
        self.query_one("#race", RacePanel).load(plain, spec)
        self._race_clocks = (
            PaceClock(plain.cumulative_times(), speed=self._speed),
            PaceClock(spec.cumulative_times(), speed=self._speed),
        )
        self._start_timer()
        self._show_race_frame()
        self._refresh_panels()

    def _show_race_frame(self) -> None:
        if self._race_clocks is None:
            return
        plain, spec = self._race_clocks
        self.query_one("#race", RacePanel).show(plain.due(), spec.due(), max(plain.time, 0.0))

    def _finish_race(self) -> None:
        if self._race_clocks is not None:
            for clock in self._race_clocks:
                clock.finish()
            self._show_race_frame()
            self._stop_race()

    def _stop_race(self) -> None:
        self._race_clocks = None
        if self._timer is not None and self._clock is None:
            self._timer.pause()
        self._refresh_panels()

    # -- next-run settings ------------------------------------------------------------------------

    def _change_settings(self, **changes: object) -> None:
        if not self.live:
            self.notify("Replay shows a recorded run; settings apply to live runs.", severity="warning")
            return
        self._settings = self._settings.evolve(**changes)
        self._refresh_panels()

    def action_gamma(self, delta: int) -> None:
        self._change_settings(gamma=max(1, min(16, self._settings.gamma + delta)))

    def action_temperature(self, direction: int) -> None:
        self._change_settings(temperature=step(TEMPERATURES, self._settings.temperature, direction))

    def action_top_k(self, direction: int) -> None:
        self._change_settings(top_k=step(TOP_KS, self._settings.top_k, direction))

    def action_top_p(self, direction: int) -> None:
        self._change_settings(top_p=step(TOP_PS, self._settings.top_p, direction))

    def action_max_new_tokens(self, direction: int) -> None:
        self._change_settings(max_new_tokens=step(MAX_NEW_TOKENS, self._settings.max_new_tokens, direction))

    def action_drafter(self) -> None:
        current = self._settings.drafter
        i = self._drafters.index(current) if current in self._drafters else -1
        self._change_settings(drafter=self._drafters[(i + 1) % len(self._drafters)])

    def action_seed(self, delta: int) -> None:
        self._change_settings(seed=max(0, self._settings.seed + delta))

    def action_toggle_mode(self) -> None:
        mode = "autoregressive" if self._settings.mode == "speculative" else "speculative"
        self._change_settings(mode=mode)

    def action_cost_ratio(self, delta: float) -> None:
        theory = self.query_one("#theory", TheoryPanel)
        current = self._theory_c if self._theory_c is not None else (theory.cost_ratio or ASSUMED_COST_RATIO)
        self._theory_c = round(max(0.0, min(2.0, current + delta)), 2)
        self._refresh_panels()

    # -- view options -------------------------------------------------------------------------------

    def action_toggle_drafts(self) -> None:
        self._stream.set_options(show_drafts=not self._stream.show_drafts)

    def action_toggle_boundaries(self) -> None:
        self._stream.set_options(show_boundaries=not self._stream.show_boundaries)

    def action_toggle_two_phase(self) -> None:
        self._two_phase = not self._two_phase
        if not self._two_phase and self._pending:
            self._reveal(self._revealed)
        self._refresh_panels()

    def action_show_tab(self, name: str) -> None:
        self.query_one("#tabs", TabbedContent).active = f"tab-{name}"
        self._focus_pane(f"tab-{name}")

    def action_focus_prompt(self) -> None:
        self.query_one("#prompt", TextArea).focus()

    def action_focus_stream(self) -> None:
        self._stream.focus()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self._all_bindings()))

    def _all_bindings(self) -> list[Binding]:
        return [b for b in self.BINDINGS if isinstance(b, Binding)]

    # -- export -----------------------------------------------------------------------------------

    def action_export(self) -> None:
        paths = self.export()
        self.notify(
            f"Exported {', '.join(p.name for p in paths)} to {self._export_dir}", title="export", markup=False
        )

    def export(self, stem: str | None = None) -> list[Path]:
        """Write the screen (SVG), the metrics at the playhead (JSON, CSV) and the runs (JSONL)."""
        directory = self._export_dir
        directory.mkdir(parents=True, exist_ok=True)
        stem = stem or self._free_stem(directory)
        svg = Path(self.save_screenshot(filename=f"{stem}.svg", path=str(directory)))
        baseline = self._baseline_for(self._run)
        runs = [r for r in (baseline, self._run) if r is not None and r.started is not None]
        return [
            svg,
            write_metrics_json(directory / f"{stem}.json", self._run, self._revealed, baseline),
            write_metrics_csv(directory / f"{stem}.csv", self._run, self._revealed),
            write_trace(directory / f"{stem}.jsonl", runs),
        ]

    @staticmethod
    def _free_stem(directory: Path) -> str:
        base = f"specviz-{datetime.now():%Y%m%d-%H%M%S}"
        stem, k = base, 1
        while any(directory.glob(f"{stem}.*")):
            k += 1
            stem = f"{base}-{k}"
        return stem

    # -- command palette ----------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for binding in self._all_bindings():
            if binding.description in seen or binding.action in ("quit", "help"):
                continue
            seen.add(binding.description)
            yield SystemCommand(
                binding.description, f"key: {binding.key}", partial(self.run_action, binding.action)
            )


def run_live(
    factory: EventSourceFactory,
    settings: RunSettings,
    *,
    record_to: Path | None = None,
    export_dir: Path | None = None,
    drafters: Sequence[str] = ("model", "ngram"),
    autorun: bool = True,
) -> None:
    """Open the UI on a live decoder; ``factory(settings)`` yields one run's events."""
    SpecvizApp(
        factory=factory,
        settings=settings,
        record_to=record_to,
        export_dir=export_dir,
        drafters=drafters,
        autorun=autorun,
    ).run()


def run_loading(
    loader: ModelLoader,
    models: ModelChoice,
    settings: RunSettings,
    *,
    record_to: Path | None = None,
    export_dir: Path | None = None,
    autorun: bool = True,
) -> None:
    """Open the UI at once and load ``models`` with ``loader`` in a worker; runs once they are ready."""
    SpecvizApp(
        loader=loader,
        models=models,
        settings=settings,
        record_to=record_to,
        export_dir=export_dir,
        autorun=autorun,
    ).run()


def run_replay(path: str | Path, *, export_dir: Path | None = None, start_at: StartAt = "end") -> None:
    """Open the UI on a recorded JSON-lines trace; no model is loaded. Raises TraceError on a bad file."""
    events = list(read_trace(path))
    SpecvizApp(events=events, export_dir=export_dir, start_at=start_at).run()
