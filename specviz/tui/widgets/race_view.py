"""Plain and speculative decoding side by side, played back at their measured pace.

The panel owns its race: a thread worker decodes the plain run, then the speculative one, with the
same prompt and seed, posting one message per event; once both are done they play back together,
each at the pace it was decoded, on the panel's own clock. The app hears when both runs are decoded
(:class:`RacePanel.Decoded`), when decoding stopped (:class:`~specviz.tui.messages.RaceEnded`) and
when playback reached the end (:class:`RacePanel.Stopped`).
"""

from __future__ import annotations

from time import monotonic

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import get_current_worker

from specviz.decoding.events import RunFinished, RunStarted
from specviz.decoding.settings import RunSettings
from specviz.tui.live_decode import Post, TraceTarget, decode_runs
from specviz.tui.messages import RaceEnded, RaceEvent, RaceSide
from specviz.tui.playback import TICK_S, PaceClock
from specviz.tui.race import race_verdict, speedup_text
from specviz.tui.recording import Recording
from specviz.tui.source import EventSourceFactory
from specviz.tui.widgets.token_stream import TokenStream

Runs = dict[RaceSide, Recording]


class RacePanel(Vertical):
    DEFAULT_CSS = """
    RacePanel {
        height: 1fr;
        #race-status { height: auto; padding: 0 1; background: $panel; }
        Horizontal { height: 1fr; }
        .race-side { width: 1fr; height: 1fr; }
        .race-title { height: 1; padding: 0 1; color: $text-accent; }
        .-identical { color: $text-success; }
        .-different { color: $text-error; }
    }
    """

    class Decoded(Message):
        """Both runs of a live race are decoded (and start playing)."""

        def __init__(self, plain: Recording, speculative: Recording) -> None:
            super().__init__()
            self.plain = plain
            self.speculative = speculative

    class Stopped(Message):
        """Playback reached the end of both runs by itself."""

    def __init__(self, *, show_timings: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self._show_timings = show_timings
        self.speed = 1.0  # playback speed, times the measured pace
        self._runs: Runs | None = None
        self._race_id = 0  # a cancelled race's late messages are ignored by id
        self._racing = False
        self._clocks: tuple[PaceClock, PaceClock] | None = None
        self._last_tick = 0.0
        self._timer: Timer | None = None
        self._shown = (0, 0)
        self._clock = 0.0
        self._status_text = ""

    def compose(self) -> ComposeResult:
        yield Static("Press x to race plain against speculative decoding.", id="race-status")
        with Horizontal():
            with Vertical(classes="race-side"):
                yield Static("plain", id="race-plain-title", classes="race-title")
                yield TokenStream(id="race-plain", show_boundaries=False)
            with Vertical(classes="race-side"):
                yield Static("speculative", id="race-spec-title", classes="race-title")
                yield TokenStream(id="race-spec", show_drafts=False)

    def on_mount(self) -> None:
        self._timer = self.set_interval(TICK_S, self._tick, pause=True)

    # -- state ---------------------------------------------------------------------------------------

    @property
    def runs(self) -> Runs | None:
        """The race's two runs (still decoding while :attr:`racing`), or None before any race."""
        return self._runs

    @property
    def racing(self) -> bool:
        """The worker is decoding the two runs."""
        return self._racing

    @property
    def playing(self) -> bool:
        return self._clocks is not None

    @property
    def shown(self) -> tuple[int, int]:
        return self._shown

    @property
    def status_text(self) -> str:
        return self._status_text

    # -- decoding ------------------------------------------------------------------------------------

    def set_runs(self, plain: Recording, speculative: Recording) -> None:
        """A race already decoded (a replayed trace), shown by :meth:`play`."""
        self._runs = {"plain": plain, "speculative": speculative}

    def start(self, factory: EventSourceFactory, settings: RunSettings, trace: TraceTarget | None) -> None:
        """Decode plain then speculative with ``settings``; playback starts when both are done."""
        self.stop()
        self._race_id += 1
        self._racing = True
        self._runs = {"plain": Recording(), "speculative": Recording()}
        self._load()
        self._decode(self._race_id, factory, settings, trace)

    def cancel(self) -> None:
        """Stop decoding (a live run takes over the decoder); a race playing back plays on."""
        self._race_id += 1
        self._racing = False
        self.workers.cancel_group(self, "race")

    @work(thread=True, exclusive=True, group="race", exit_on_error=False)
    def _decode(
        self, race_id: int, factory: EventSourceFactory, settings: RunSettings, trace: TraceTarget | None
    ) -> None:
        worker = get_current_worker()

        def poster(side: RaceSide) -> Post:
            return lambda event: self.post_message(RaceEvent(race_id, side, event))

        runs = [
            (settings.evolve(mode="autoregressive"), poster("plain")),
            (settings.evolve(mode="speculative"), poster("speculative")),
        ]
        error = decode_runs(factory, runs, lambda: worker.is_cancelled, trace=trace)
        self.post_message(RaceEnded(race_id, error))

    @on(RaceEvent)
    def _race_event(self, message: RaceEvent) -> None:
        if message.race_id != self._race_id or self._runs is None:
            return
        runs, event = self._runs, message.event
        runs[message.side].add(event)
        if isinstance(event, RunStarted):
            self._load()
        self._show_progress(message.side)
        if message.side == "speculative" and isinstance(event, RunFinished):
            self._racing = False
            self.post_message(self.Decoded(runs["plain"], runs["speculative"]))
            self.play()

    @on(RaceEnded)
    def _race_ended(self, message: RaceEnded) -> None:
        if message.race_id != self._race_id:
            message.stop()  # a cancelled race: nothing for the app to report
            return
        self._racing = False

    # -- playback ------------------------------------------------------------------------------------

    def play(self) -> None:
        """Play both runs from time 0, each at the pace it was decoded (times :attr:`speed`)."""
        assert self._runs is not None
        plain, spec = self._runs["plain"], self._runs["speculative"]
        self._load()
        self._clocks = (
            PaceClock(plain.cumulative_times(), speed=self.speed),
            PaceClock(spec.cumulative_times(), speed=self.speed),
        )
        self._last_tick = monotonic()
        if self._timer is not None:
            self._timer.resume()
        self._show_frame()

    def set_speed(self, speed: float) -> None:
        self.speed = speed
        for clock in self._clocks or ():
            clock.speed = speed

    def stop(self) -> None:
        """Stop playback where it is."""
        self._clocks = None
        if self._timer is not None:
            self._timer.pause()

    def finish(self) -> None:
        """Show both runs to the end and stop."""
        if self._clocks is not None:
            for clock in self._clocks:
                clock.finish()
            self._show_frame()
            self.stop()

    def _tick(self) -> None:
        now = monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if self._clocks is None or not self.app.is_running:  # the app is closing: draw nothing
            return
        plain, spec = self._clocks
        plain.advance(elapsed)
        spec.advance(elapsed)
        self._show_frame()
        if plain.done and spec.done:
            self.stop()
            self.post_message(self.Stopped())

    def _show_frame(self) -> None:
        if self._clocks is not None:
            plain, spec = self._clocks
            self.show(plain.due(), spec.due(), max(plain.time, 0.0))

    # -- drawing -------------------------------------------------------------------------------------

    def _load(self) -> None:
        """Show the race's runs (they may still be decoding); both start hidden, at time 0."""
        assert self._runs is not None
        plain, spec = self._runs["plain"], self._runs["speculative"]
        self._shown = (-1, -1)
        self.query_one("#race-plain", TokenStream).reset(_prompt(plain), plain.iterations)
        self.query_one("#race-spec", TokenStream).reset(_prompt(spec), spec.iterations)
        self.show(0, 0, 0.0)

    def _show_progress(self, side: RaceSide) -> None:
        """Progress while the two runs are decoded one after the other (before playback)."""
        assert self._runs is not None
        plain, spec = self._runs["plain"], self._runs["speculative"]
        done = f"plain {plain.committed(len(plain))} tokens" + (
            f", speculative {spec.committed(len(spec))} tokens" if side == "speculative" else ""
        )
        self._status(f"decoding {side}… ({done}); playback starts when both are done", None)

    def show(self, plain_n: int, spec_n: int, clock: float) -> None:
        """Show the first ``plain_n`` and ``spec_n`` iterations, ``clock`` seconds into the race."""
        if self._runs is None:
            return
        plain, spec = self._runs["plain"], self._runs["speculative"]
        self._clock = clock
        if (plain_n, spec_n) != self._shown:
            self._shown = (plain_n, spec_n)
            self.query_one("#race-plain", TokenStream).show(plain_n)
            self.query_one("#race-spec", TokenStream).show(spec_n)
        self._title("#race-plain-title", "plain", plain, plain_n)
        self._title("#race-spec-title", "speculative", spec, spec_n)
        verdict = race_verdict(plain, spec)
        parts = [verdict.text]
        speed = speedup_text(plain, spec)
        if speed and self._show_timings:
            parts.append(f"speculative {speed}")
        if self._show_timings:
            parts.append(f"t = {clock:.1f}s")
        self._status("   ".join(parts), verdict.identical)

    def _title(self, selector: str, label: str, run: Recording, n: int) -> None:
        text = f"{label}: {run.committed(n)}/{run.committed(len(run))} tokens"
        if self._show_timings:
            text += f" · {run.decode_time(n):.1f}s"
        if n >= len(run) and run.finished is not None:
            text += " · done"
        self.query_one(selector, Static).update(text)

    def _status(self, text: str, identical: bool | None) -> None:
        self._status_text = text
        status = self.query_one("#race-status", Static)
        status.update(Content(text))
        status.set_class(identical is True, "-identical")
        status.set_class(identical is False, "-different")


def _prompt(run: Recording) -> str | None:
    return run.started.prompt if run.started is not None else None
