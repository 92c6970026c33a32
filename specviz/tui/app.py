"""The specviz app: one screen to run, pause, step and rewind speculative decoding, and see why it is fast or not.

The app composes the screen and routes keys; each concern lives in its own module or in the widget
that owns it:

- :mod:`specviz.tui.playhead`: what is on screen (a position over a recording), and every way it
  moves: step, back, jump, play at the measured pace, follow or hold a live decoder.
- :mod:`specviz.tui.live_decode`: the body of the thread worker that decodes a live run and posts
  one message per event (the app hosts the live run's worker; the race panel hosts its own).
- :class:`~specviz.tui.widgets.race_view.RacePanel`: a race's worker, and its playback clocks.
- :class:`~specviz.tui.widgets.load_status.LoadStatus`: the model-loading worker and its progress.
- :class:`~specviz.tui.widgets.follow_status.FollowStatus`: in follow mode, the worker that tails
  the teacher's trace, and where this follower is in it.
- :mod:`specviz.tui.panels`: the panels drawn from the playhead (inspector, stats, charts, ...).
- :mod:`specviz.tui.keys`: the key bindings.

Three sources feed the screen the same events (specviz.decoding.events): a live
:data:`~specviz.tui.source.EventSourceFactory`, a recorded trace, or a trace being recorded by
another specviz (``specviz follow``: its events take the live decoder's path to the playhead, which
a follower holds and moves on its own while the teacher's run goes on). A live app may instead be
handed a :class:`~specviz.tui.model_loading.ModelLoader`: the screen opens at once, the models load
in the background, and the factory arrives with them; ``M`` loads another pair the same way while
the old one stays in use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from time import monotonic
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Container
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, TabbedContent, TabPane, TextArea
from textual.worker import get_current_worker

from specviz.decoding.events import Event, RunFinished, RunStarted, load_trace
from specviz.decoding.settings import RunSettings
from specviz.tui.export import write_metrics_csv, write_metrics_json, write_runs
from specviz.tui.keys import KEYS
from specviz.tui.live_decode import TraceFile, TraceTarget, decode_runs
from specviz.tui.messages import DecodeEnded, DecodeEvent, LoadFinished, RaceEnded, RaceSide
from specviz.tui.model_loading import LoadedModels, ModelChoice, ModelLoader, drafter_after_switch
from specviz.tui.panels import Panels, PanelState
from specviz.tui.pause_gate import PauseGate
from specviz.tui.playback import TICK_S
from specviz.tui.playhead import Playhead, StartAt
from specviz.tui.race import fair_baseline, replay_roles
from specviz.tui.recording import Recording, split_runs
from specviz.tui.settings_steps import (
    GAMMAS,
    MAX_NEW_TOKENS,
    TEMPERATURES,
    TOP_KS,
    TOP_PS,
    DrafterCycle,
    step,
)
from specviz.tui.source import EventSourceFactory
from specviz.tui.widgets.charts import ChartsPanel
from specviz.tui.widgets.follow_status import FollowPosition, FollowStatus
from specviz.tui.widgets.help_screen import HelpScreen
from specviz.tui.widgets.inspector import IterationInspector
from specviz.tui.widgets.jump_screen import JumpScreen
from specviz.tui.widgets.legend import StatusLegend
from specviz.tui.widgets.load_status import LoadStatus
from specviz.tui.widgets.lossy_view import HOW_TO_RECORD, LossyPanel
from specviz.tui.widgets.model_screen import ModelScreen
from specviz.tui.widgets.race_view import RacePanel
from specviz.tui.widgets.settings_bar import ModelLabels, SettingsBar
from specviz.tui.widgets.stats_bar import StatsBar
from specviz.tui.widgets.theory_view import TheoryPanel
from specviz.tui.widgets.token_stream import TokenStream

FOLLOWER_CANNOT_RUN = (
    "You are following the teacher's run: a follower cannot run the model or change its settings."
)


class SpecvizApp(App[None]):
    """One screen: settings, prompt, token stream + inspector, charts, theory, race; stats; footer."""

    CSS_PATH = "app.tcss"
    TITLE = "specviz"
    AUTO_FOCUS = "#stream"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (34, "-tall")]

    BINDINGS: ClassVar[list[BindingType]] = list(KEYS)

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
        notices: Sequence[str] = (),
        follow: Path | None = None,
    ) -> None:
        """Live when ``factory`` or ``loader`` is given (``settings`` are the first run's), replay
        when ``events`` are, following when ``follow`` (a trace another specviz writes) is.

        ``loader`` loads ``models`` in a worker when the app opens (unless a ``factory`` is given
        too) and any pair chosen with ``M`` later. ``show_timings=False`` hides every time-derived
        number (deterministic screenshots); ``blink=False`` stops the cursors blinking (snapshot tests).
        ``notices`` are shown as warnings when the app opens (what a replayed trace was missing).
        """
        super().__init__()
        if factory is None and events is None and loader is None and follow is None:
            raise ValueError(
                "SpecvizApp needs a factory or a loader (live), events (replay) or a trace to follow"
            )
        if loader is not None and factory is None and models is None:
            raise ValueError("SpecvizApp needs the models to load first")
        self._factory = factory
        self._loader = loader
        self._models: LoadedModels | None = None  # the loaded pair behind ``_factory``, if a loader made it
        self._models_choice: ModelChoice | None = None  # what was asked for to get ``_models``
        self._first_models = models  # loaded when the app opens, unless a factory came ready-made
        self._replay_runs = split_runs(events) if events is not None else []
        self._settings = settings or RunSettings(prompt="")
        self._trace = TraceFile(record_to)
        self._export_dir = export_dir or Path.cwd()
        self._drafters = tuple(drafters) or ("model",)
        self._drafter_cycle = DrafterCycle()
        self._autorun = autorun
        self._start_at = start_at
        self._show_timings = show_timings
        self._blink = blink
        self._notices = tuple(notices)
        self._follow = follow
        self._feed: list[Recording] = []  # follow mode: the runs read from the trace, oldest first

        self._playhead = Playhead()
        self._panels = Panels(self, self._playhead, show_timings=show_timings)
        self._baseline: Recording | None = None  # the plain run the current one is compared with
        self._run_id = 0  # the live run's: a replaced run's late messages are ignored by id
        self._timer: Timer | None = None  # advances playback while it plays

    # -- public, read-only state (tests and the CLI read it) ----------------------------------

    @property
    def live(self) -> bool:
        return self._factory is not None or self._loader is not None

    @property
    def following(self) -> Path | None:
        """The trace this app follows (``specviz follow``), or None."""
        return self._follow

    @property
    def feed_runs(self) -> list[Recording]:
        """Follow mode: every run read from the trace since it was (re)started, oldest first."""
        return list(self._feed)

    @property
    def models(self) -> LoadedModels | None:
        """The loaded pair the next run uses (None before the first load, or without a loader)."""
        return self._models

    @property
    def loading(self) -> ModelChoice | None:
        """The pair being loaded now, if any."""
        return self._load_status.loading

    @property
    def run_recording(self) -> Recording:
        return self._playhead.run

    @property
    def baseline(self) -> Recording | None:
        return self._baseline

    @property
    def playhead(self) -> Playhead:
        """What is on screen: revealed, selected, pending, speed, paused (read it; keys move it)."""
        return self._playhead

    @property
    def next_settings(self) -> RunSettings:
        return self._settings

    @property
    def decoding(self) -> bool:
        return self._playhead.decoding or self._race.racing or self._lossy.comparing

    @property
    def playing(self) -> bool:
        return self._playhead.playing or self._race.playing

    @property
    def race_runs(self) -> dict[RaceSide, Recording] | None:
        return self._race.runs

    @property
    def _stream(self) -> TokenStream:
        return self.query_one("#stream", TokenStream)

    @property
    def _race(self) -> RacePanel:
        return self.query_one("#race", RacePanel)

    @property
    def _lossy(self) -> LossyPanel:
        return self.query_one("#lossy", LossyPanel)

    @property
    def _load_status(self) -> LoadStatus:
        return self.query_one("#load-status", LoadStatus)

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SettingsBar(id="settings")
        yield LoadStatus(id="load-status", show_elapsed=self._show_timings)
        if self._follow is not None:
            yield FollowStatus(self._follow, id="follow-status")
        prompt = TextArea(
            self._settings.prompt,
            id="prompt",
            soft_wrap=True,
            show_line_numbers=False,
            read_only=not self.live,
        )
        prompt.cursor_blink = self._blink
        prompt.border_title = (
            "prompt (p edits, esc leaves, ctrl+r runs)"
            if self.live
            else "prompt (the teacher's)"
            if self._follow is not None
            else "prompt (replay)"
        )
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
            with TabPane("5 Lossy", id="tab-lossy"):
                yield LossyPanel(live=self.live, id="lossy")
        yield StatsBar(id="stats")
        yield Footer()

    def on_mount(self) -> None:
        for notice in self._notices:
            self.notify(notice, title="trace", severity="warning", timeout=30)
        self._timer = self.set_interval(TICK_S, self._tick, pause=True)
        self.set_interval(0.25, self._flush_charts)
        if self._replay_runs:
            self._load_replay()
        else:
            self._load_run(Recording(), start_at="start")
        if self._follow is not None:
            self.query_one("#follow-status", FollowStatus).start()
        if self._factory is None and self._first_models is not None:
            self._start_load(self._first_models)
        elif self._autorun and self.live:
            self.action_run()

    def _load_replay(self) -> None:
        roles = replay_roles(self._replay_runs)
        self._baseline = roles.baseline
        if roles.race is not None:
            self._race.set_runs(*roles.race)
        self._lossy.show_recorded(self._replay_runs)
        if roles.main.started is not None:
            self._settings = RunSettings.from_run_started(roles.main.started)
            self.query_one("#prompt", TextArea).text = roles.main.started.prompt
        self._load_run(roles.main, start_at=self._start_at)

    def _load_run(self, run: Recording, *, start_at: StartAt) -> None:
        prompt = run.started.prompt if run.started is not None else self._settings.prompt
        self._stream.reset(prompt or None, run.iterations)
        self._playhead.load(run, start_at)
        self._refresh_panels()

    # -- drawing ----------------------------------------------------------------------------------

    def _refresh_panels(self) -> None:
        """Redraw the stream if the playhead moved, then every panel derived from it and the app's state."""
        playhead = self._playhead
        moved = playhead.take_changed()
        if moved:
            self._stream.show(playhead.revealed, pending=playhead.pending)
        self._stream.select(playhead.selected)
        if self._timer is not None:
            (self._timer.resume if playhead.playing else self._timer.pause)()
        settings = self._settings if self.live else None
        state = PanelState(self._activity(), self._baseline, settings, self._model_labels(), self._models)
        self._panels.draw(state, moved=moved)
        if self._follow is not None:
            self.query_one("#follow-status", FollowStatus).show_position(self._follow_position())

    def _model_labels(self) -> ModelLabels | None:
        """The models the next run uses, or (before any pair is loaded) the ones on their way."""
        if self._models is not None:
            return ModelLabels(self._models.target, self._models.draft)
        pending = self.loading or self._first_models
        if pending is None or self._factory is not None:
            return None  # a factory handed in directly: the app does not know its models
        return ModelLabels(pending.target, pending.draft, "loading" if self.loading else "not loaded")

    def _activity(self) -> str:
        if self._race.racing:
            return "⟳ racing"
        if self._lossy.comparing:
            return "⟳ comparing rules"
        if self._follow is not None and self._playhead.decoding:
            return "● live" if self._playhead.follow else "⏸ holding"
        if self._playhead.decoding:
            return "⏸ paused" if self._playhead.paused else "▶ decoding"
        if self.playing:
            return f"▶ playing ×{self._playhead.speed:g}"
        if self._follow is not None:
            finished = self.run_recording.finished
            return f"■ {finished.reason}" if finished is not None else "○ waiting"
        if not self.live:
            return "◼ replay"
        if self._factory is None:
            return "⟳ loading models" if self.loading is not None else "✗ no models"
        if self.run_recording.finished is not None:
            return f"■ {self.run_recording.finished.reason}"
        return "○ ready"

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._panels.tab_shown(event.pane.id or "")
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
            "tab-lossy": "#lossy-runs",
        }
        if pane_id in target and not isinstance(self.screen, (HelpScreen, JumpScreen, ModelScreen)):
            self.query_one(target[pane_id]).focus()

    @on(TokenStream.IterationClicked, "#stream")
    def _iteration_clicked(self, event: TokenStream.IterationClicked) -> None:
        if self._playhead.select(event.iteration):
            self._refresh_panels()

    # -- live decoding --------------------------------------------------------------------------

    def action_run(self) -> None:
        """Decode the prompt with the next-run settings (cancels a run in progress)."""
        if self._follow is not None:
            self.notify(FOLLOWER_CANNOT_RUN, severity="warning")
            return
        if not self.live:
            self.notify(
                "Replay: there is no model to run. Start specviz with a model to decode.", severity="warning"
            )
            return
        settings = self._ready_settings()
        if settings is None:
            return
        assert self._factory is not None
        self._run_id += 1
        self._race.cancel()
        self._lossy.cancel()
        gate = PauseGate()
        self._playhead.attach(gate)
        self._load_run(Recording(), start_at="start")
        self._decode(self._run_id, self._factory, settings, gate, self._trace.next_target())
        self.action_focus_stream()

    def _ready_settings(self) -> RunSettings | None:
        """The next run's settings with the prompt as edited, or None (saying why) if none can start."""
        if self._factory is None:
            message = self._load_status.why_not_ready()
            self.notify(message, title="not ready", severity="warning", markup=False)
            return None
        prompt = self.query_one("#prompt", TextArea).text
        if not prompt.strip():
            self.notify("The prompt is empty.", severity="warning")
            return None
        self._settings = self._settings.evolve(prompt=prompt)
        return self._settings

    @work(thread=True, exclusive=True, group="decode", exit_on_error=False)
    def _decode(
        self,
        run_id: int,
        factory: EventSourceFactory,
        settings: RunSettings,
        gate: PauseGate,
        trace: TraceTarget | None,
    ) -> None:
        worker = get_current_worker()

        def post(event: Event) -> None:
            self.post_message(DecodeEvent(run_id, event))

        error = decode_runs(factory, [(settings, post)], lambda: worker.is_cancelled, trace=trace, gate=gate)
        self.post_message(DecodeEnded(run_id, error))

    @on(DecodeEvent)
    def _decode_event(self, message: DecodeEvent) -> None:
        if message.run_id != self._run_id:
            return
        self._receive(message.event)
        self._refresh_panels()

    def _receive(self, event: Event) -> None:
        """One event of the run the playhead is attached to: a live decoder's, or a followed trace's
        (the caller redraws)."""
        self._playhead.receive(event)
        if isinstance(event, RunStarted):
            self._stream.reset(event.prompt or None, self.run_recording.iterations)

    @on(DecodeEnded)
    def _decode_ended(self, message: DecodeEnded) -> None:
        if message.run_id != self._run_id:
            return
        self._playhead.detach()
        run = self.run_recording
        if message.error:
            self._decoding_failed(message.error)
        elif not run.speculative and run.finished is not None:
            self._baseline = run
        self._refresh_panels()

    def _decoding_failed(self, error: str) -> None:
        self.notify(error, title="decoding failed", severity="error", timeout=10, markup=False)

    # -- following a trace being recorded (specviz follow) ------------------------------------------

    @on(FollowStatus.Received)
    def _follow_event(self, message: FollowStatus.Received) -> None:
        """The teacher's next event. A follower on the newest run takes it like a live decoder's; one
        still on an older run (it stepped back there) keeps its place while the newest one grows."""
        event = message.event
        if isinstance(event, RunStarted) or not self._feed:
            self._end_feed_run()
            shown_elsewhere = self._feed_index() is not None and not self._playhead.follow
            self._feed.append(Recording())
            if not shown_elsewhere:
                self._show_feed_run(self._feed[-1], attach=True)
        newest = self._feed[-1]
        if self._playhead.run is newest and self._playhead.decoding:
            self._receive(event)
            if isinstance(event, RunStarted):
                self.query_one("#prompt", TextArea).text = event.prompt
        else:
            newest.add(event)
        if isinstance(event, RunFinished):
            self._end_feed_run()
        self._refresh_panels()

    def _feed_index(self) -> int | None:
        """The position in the feed of the run on screen (None: none of them yet)."""
        return next((i for i, run in enumerate(self._feed) if run is self._playhead.run), None)

    def _show_feed_run(self, run: Recording, *, attach: bool) -> None:
        if attach:
            self._playhead.attach(None)  # a feed: nothing to hold but this playhead
        self._load_run(run, start_at="end")
        if run.started is not None:
            self.query_one("#prompt", TextArea).text = run.started.prompt

    def _end_feed_run(self) -> None:
        """The teacher's newest run is over (finished, or cut short by the next one)."""
        if self._feed and self._playhead.run is self._feed[-1]:
            self._playhead.detach()
            # As in a live session, the last plain run that finished is what runs are compared with.
            self._baseline = next((r for r in reversed(self._feed) if not r.speculative and r.finished), None)

    def _follow_position(self) -> FollowPosition:
        playhead, shown = self._playhead, self._feed_index()
        later = self._feed[shown + 1 :] if shown is not None else []
        behind = len(playhead.run) - playhead.revealed + sum(len(run) for run in later)
        going = bool(self._feed) and self._feed[-1].finished is None
        return FollowPosition(playhead.follow and not later, behind, len(later), going)

    @on(FollowStatus.Restarted)
    def _follow_restarted(self) -> None:
        """The teacher started the trace afresh: so does this follower (a run it held is gone)."""
        self._feed.clear()
        self._baseline = None
        self._playhead.detach()
        self._playhead.catch_up()
        self._load_run(Recording(), start_at="start")
        self.query_one("#prompt", TextArea).text = ""
        self.notify(f"{self._follow} was started afresh: following it from its start.", markup=False)

    def action_catch_up(self) -> None:
        """Back to the teacher's newest iteration, live (follow mode)."""
        if self._follow is None:
            if not self._playhead.decoding:
                self.bell()
                return
            self._playhead.catch_up()  # a live run: resume the held decoder and follow it
            self._refresh_panels()
            return
        self._race.stop()
        if self._feed and self._playhead.run is not self._feed[-1]:
            newest = self._feed[-1]
            self._show_feed_run(newest, attach=newest.finished is None)
            self._baseline = next((r for r in reversed(self._feed) if not r.speculative and r.finished), None)
        self._playhead.catch_up()
        self._refresh_panels()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Only a follower has a teacher to catch up with: elsewhere the key is off and not in the footer.
        return not (action == "catch_up" and self._follow is None)

    # -- race -------------------------------------------------------------------------------------

    def action_race(self) -> None:
        """Plain then speculative with the same prompt and seed, then both played back side by side."""
        self.action_show_tab("race")
        if self._follow is not None:
            roles = replay_roles(self._feed) if self._feed else None
            race = roles.race if roles is not None else None
            if race is None or any(run.finished is None for run in race):
                self.notify(f"{FOLLOWER_CANNOT_RUN} x shows the teacher's race once it is done.")
                return
            self._race.set_runs(*race)
        if not self.live:
            if self.race_runs is None:
                self.notify("This trace has no plain run to race against.", severity="warning")
                return
            self._playhead.stop()
            self._race.play()
            self._refresh_panels()
            return
        settings = self._ready_settings()
        if settings is None:
            return
        assert self._factory is not None
        self._run_id += 1  # the live run is over: drop its late messages
        self.workers.cancel_group(self, "decode")
        self._playhead.detach()
        self._playhead.stop()
        self._lossy.cancel()
        self._race.start(self._factory, settings, self._trace.next_target())
        self._refresh_panels()

    @on(RacePanel.Decoded)
    def _race_decoded(self, message: RacePanel.Decoded) -> None:
        """The race's speculative run becomes the main run, its plain run the baseline."""
        self._baseline = message.plain
        self._load_run(message.speculative, start_at="end")

    @on(RaceEnded)
    def _race_ended(self, message: RaceEnded) -> None:
        if message.error:
            self._decoding_failed(message.error)
        self._refresh_panels()

    @on(RacePanel.Stopped)
    def _race_stopped(self) -> None:
        self._refresh_panels()

    # -- lossless vs lossy ----------------------------------------------------------------------------

    def action_compare_rules(self) -> None:
        """The prompt and seed decoded with rejection sampling, the threshold rule and typical acceptance."""
        self.action_show_tab("lossy")
        if not self.live:
            if not self._lossy.runs:
                self.notify(HOW_TO_RECORD, severity="warning", markup=False)
            return
        settings = self._ready_settings()
        if settings is None:
            return
        assert self._factory is not None
        self._run_id += 1  # like a race, it takes the decoder from the live run
        self.workers.cancel_group(self, "decode")
        self._playhead.detach()
        self._playhead.stop()
        self._race.cancel()
        self._lossy.start(self._factory, settings, self._trace.next_target())
        self._refresh_panels()

    @on(LossyPanel.Ended)
    def _lossy_ended(self, message: LossyPanel.Ended) -> None:
        if message.error:
            self._decoding_failed(message.error)
        self._refresh_panels()

    # -- loading and switching models -------------------------------------------------------------

    def action_choose_models(self) -> None:
        """Open the model picker; the chosen pair loads in a worker while the current one stays."""
        if self._loader is None:
            message = (
                FOLLOWER_CANNOT_RUN
                if self._follow is not None
                else "Replay shows a recorded run; there are no models to switch."
                if not self.live
                else "This session was started without a model loader; models cannot be switched."
            )
            self.notify(message, severity="warning")
            return
        if self.loading is not None:
            self.notify(f"Still loading {self.loading.label}; choose again once it is done.", markup=False)
            return
        try:
            entries = self._loader.catalogue()
        except Exception as exc:  # a broken cache must not stop the user typing a path instead
            entries = []
            self.notify(f"Cannot list the packaged models: {exc}", severity="warning", markup=False)
        current = self._models_choice or self._first_models
        self.push_screen(ModelScreen(entries, current, blink=self._blink), self._start_load)

    def _start_load(self, choice: ModelChoice | None) -> None:
        if choice is None or self._loader is None:
            return
        kept = self._models_choice.label if self._models_choice is not None else None
        self._load_status.load(self._loader, choice, kept=kept)
        self._refresh_panels()

    @on(LoadFinished)
    def _load_finished(self, message: LoadFinished) -> None:
        if not self._load_status.finished(message):
            return
        choice, models = message.choice, message.models
        if models is None:
            error = message.error or ""
            self.notify(
                error, title=f"could not load {choice.label}", severity="error", timeout=10, markup=False
            )
            self._refresh_panels()
            return
        first = self._models is None and self._factory is None
        self._use_models(choice, models)
        detail = f" ({models.detail})" if models.detail else ""
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
        previous, self._models, self._models_choice = self._models, models, choice
        self._factory = models.factory
        self._drafters = models.drafters or ("ngram",)
        drafter = drafter_after_switch(self._settings.drafter, self._drafters, previous)
        self._settings = self._settings.evolve(drafter=drafter)

    # -- play, pause, step ------------------------------------------------------------------------

    def action_toggle_play(self) -> None:
        if self._race.playing:
            self._race.stop()
        elif not self._playhead.toggle_play(monotonic()):
            self.notify(
                "Nothing to play yet: press r to run." if self.live else "The trace has no iterations."
            )
            return
        self._refresh_panels()

    def action_step(self) -> None:
        if not self._playhead.step():
            self.bell()
        self._refresh_panels()

    def action_step_back(self) -> None:
        if not self._playhead.back():
            self.bell()
        self._refresh_panels()

    def action_first(self) -> None:
        self._playhead.first()
        self._refresh_panels()

    def action_last(self) -> None:
        if self._follow is not None and not self._race.playing:
            self.action_catch_up()  # a follower's "last iteration" is the teacher's newest one
            return
        if self._race.playing:
            self._race.finish()
        else:
            self._playhead.last()
        self._refresh_panels()

    def action_jump(self) -> None:
        if not len(self.run_recording):
            self.bell()
            return
        last = self.run_recording.iterations[-1].index
        self.push_screen(JumpScreen(last, blink=self._blink), self.jump_to)

    def jump_to(self, index: int | None) -> None:
        """Reveal up to and including the iteration whose ``Iteration.index`` is ``index``."""
        if index is not None:
            self._playhead.jump(index)
            self._refresh_panels()

    def action_speed(self, direction: int) -> None:
        self._race.set_speed(self._playhead.change_speed(direction))
        self._refresh_panels()

    def action_toggle_two_phase(self) -> None:
        self._playhead.toggle_two_phase()
        self._refresh_panels()

    def _tick(self) -> None:
        # The app's timers outlive its screen by a moment at exit: draw nothing once it is closing.
        if self.is_running and self._playhead.tick(monotonic()):
            self._refresh_panels()

    def _flush_charts(self) -> None:
        if self.is_running:
            self._panels.flush_charts()

    # -- next-run settings ------------------------------------------------------------------------

    def _change_settings(self, **changes: object) -> None:
        if self._follow is not None:
            self.notify(FOLLOWER_CANNOT_RUN, severity="warning")
            return
        if not self.live:
            self.notify("Replay shows a recorded run; settings apply to live runs.", severity="warning")
            return
        self._settings = self._settings.evolve(**changes)
        self._refresh_panels()

    def action_gamma(self, delta: int) -> None:
        # Under automatic γ this steps its cap: RunSettings keeps the cap in ``gamma``.
        self._change_settings(gamma=step(GAMMAS, self._settings.gamma, delta))

    def action_temperature(self, direction: int) -> None:
        self._change_settings(temperature=step(TEMPERATURES, self._settings.temperature, direction))

    def action_top_k(self, direction: int) -> None:
        self._change_settings(top_k=step(TOP_KS, self._settings.top_k, direction))

    def action_top_p(self, direction: int) -> None:
        self._change_settings(top_p=step(TOP_PS, self._settings.top_p, direction))

    def action_max_new_tokens(self, direction: int) -> None:
        self._change_settings(max_new_tokens=step(MAX_NEW_TOKENS, self._settings.max_new_tokens, direction))

    def action_drafter(self) -> None:
        # A tree drafter cannot run under automatic γ or a lossy rule: the cycle changes or skips.
        changes, notice = self._drafter_cycle.step(self._settings, self._drafters)
        self._change_settings(**changes)
        if notice is not None and self._settings.drafter == changes["drafter"]:
            self.notify(notice, title="drafter", markup=False)

    def action_seed(self, delta: int) -> None:
        self._change_settings(seed=max(0, self._settings.seed + delta))

    def action_toggle_mode(self) -> None:
        mode = "autoregressive" if self._settings.mode == "speculative" else "speculative"
        self._change_settings(mode=mode)

    def action_cost_ratio(self, delta: float) -> None:
        self._panels.step_cost_ratio(delta)
        self._refresh_panels()

    # -- view options -------------------------------------------------------------------------------

    def action_toggle_drafts(self) -> None:
        self._stream.set_options(show_drafts=not self._stream.show_drafts)

    def action_toggle_boundaries(self) -> None:
        self._stream.set_options(show_boundaries=not self._stream.show_boundaries)

    def action_show_tab(self, name: str) -> None:
        self.query_one("#tabs", TabbedContent).active = f"tab-{name}"
        self._focus_pane(f"tab-{name}")

    def action_focus_prompt(self) -> None:
        self.query_one("#prompt", TextArea).focus()

    def action_focus_stream(self) -> None:
        self._stream.focus()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(k for k in KEYS if self.check_action(k.action, ()) is not False))

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
        baseline = fair_baseline(self.run_recording, self._baseline)
        runs = [r for r in (baseline, self.run_recording) if r is not None and r.started is not None]
        return [
            svg,
            write_metrics_json(
                directory / f"{stem}.json", self.run_recording, self._playhead.revealed, baseline
            ),
            write_metrics_csv(directory / f"{stem}.csv", self.run_recording, self._playhead.revealed),
            write_runs(directory / f"{stem}.jsonl", runs),
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
        for binding in KEYS:
            if binding.description in seen or binding.action in ("quit", "help"):
                continue
            if self.check_action(binding.action, ()) is False:  # e.g. catch up, outside follow mode
                continue
            seen.add(binding.description)
            yield SystemCommand(
                binding.description, f"key: {binding.key}", partial(self.run_action, binding.action)
            )


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


def run_replay(path: str | Path, *, export_dir: Path | None = None, start_at: StartAt = "end") -> list[str]:
    """Open the UI on a recorded JSON-lines trace; no model is loaded.

    A damaged trace is replayed up to its last whole event; what it was missing is shown in the UI
    and returned. Raises TraceError when the file holds no event at all.
    """
    contents = load_trace(path)
    SpecvizApp(
        events=contents.events, export_dir=export_dir, start_at=start_at, notices=contents.problems
    ).run()
    return contents.problems


def run_follow(path: Path, *, export_dir: Path | None = None) -> None:
    """Open the UI on a trace another specviz is writing (``specviz follow``), following it as it
    grows; no model is loaded. A missing file is waited for."""
    SpecvizApp(follow=path, export_dir=export_dir).run()
