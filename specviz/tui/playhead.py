"""The playhead: how much of a run is on screen, and every way it moves.

Everything on screen is derived from a :class:`~specviz.tui.recording.Recording` and this position,
so stepping back, jumping and replaying never recompute anything. The playhead moves by keys (step,
back, first, last, jump), at the run's measured pace (play), or with a live decoder as its
iterations arrive. Over a live run it also drives the decoder's :class:`PauseGate`: manual
navigation holds the decoder, and a step past the last decoded iteration asks it for exactly one
more. A *feed* (``specviz follow``: a trace another process is writing) is followed the same way,
but it cannot be held: manual navigation holds only this playhead while the feed goes on, and
:meth:`Playhead.catch_up` returns to its newest iteration. Textual-free: the app redraws when
:meth:`Playhead.take_changed` says the position moved.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Literal

from specviz.decoding.events import Event, Iteration, RunFinished, RunStarted
from specviz.tui.pause_gate import PauseGate
from specviz.tui.playback import PaceClock, step_speed
from specviz.tui.recording import Recording

StartAt = Literal["start", "end"]


class Playhead:
    """A position over one run (``revealed`` iterations shown), its selection, and its playback."""

    def __init__(self) -> None:
        self.run = Recording()
        self.revealed = 0
        self.selected: int | None = None  # position in ``run.iterations`` of the inspected iteration
        self.pending = False  # iteration ``revealed``'s drafts are shown, not yet verified
        self.two_phase = False  # steps show the drafts first, the verification on the next step
        self.speed = 1.0
        self._clock: PaceClock | None = None
        self._last_tick = 0.0
        self._changed = True
        # Over a live run: whether a source fills it (a decoder, or a feed with no gate), the
        # decoder's gate, whether the playhead follows the source to each new iteration, and how
        # many steps were asked of the held decoder and not yet shown.
        self._attached = False
        self._gate: PauseGate | None = None
        self.follow = True
        self._asked = 0

    # -- state -------------------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._clock is not None

    @property
    def decoding(self) -> bool:
        """A live decoder (it may be paused) or a feed fills this run."""
        return self._attached

    @property
    def holding(self) -> bool:
        """Attached to a source but not following it: the user looks at an earlier iteration."""
        return self._attached and not self.follow

    @property
    def paused(self) -> bool:
        return self._gate is not None and self._gate.paused

    def take_changed(self) -> bool:
        """Whether the shown iterations changed since the last call (the stream must be redrawn)."""
        changed, self._changed = self._changed, False
        return changed

    # -- moving ------------------------------------------------------------------------------------

    def load(self, run: Recording, start_at: StartAt) -> None:
        """Show ``run`` from its start or end; stops playback."""
        self._clock = None
        self.run = run
        self._show(len(run) if start_at == "end" else 0, pending=False)

    def reveal(self, n: int, *, pending: bool = False) -> None:
        """Show iterations[:n] (and iteration n's drafts, unverified, if ``pending``)."""
        n = max(0, min(n, len(self.run)))
        pending = pending and n < len(self.run)
        if n != self.revealed or pending != self.pending:
            self._show(n, pending=pending)

    def _show(self, n: int, *, pending: bool) -> None:
        self.revealed, self.pending = n, pending
        self.selected = n if pending else (n - 1 if n > 0 else None)
        self._changed = True

    def select(self, index: int) -> bool:
        """Inspect an iteration already shown (a click); False if it is not shown."""
        if index >= self.revealed:
            return False
        self.selected = index
        return True

    def hold(self) -> None:
        """Manual navigation stops playback and holds a live decoder between iterations."""
        self._clock = None
        if self._gate is not None and not self._gate.paused:
            self._gate.pause()
        self.follow = False

    def step(self) -> bool:
        """One iteration on (or its verification, in two-phase mode); False if nothing comes next."""
        if self._attached and self._gate is None and self.revealed >= len(self.run):
            # At the newest iteration of a feed: it cannot be asked for more, and a follower who
            # presses → there should stay live rather than drop into holding.
            return False
        self.hold()
        if self.revealed < len(self.run):
            self._advance()
        elif self._gate is not None:
            # Ask the held decoder for exactly one more iteration; it is shown when it arrives.
            self._asked += 1
            self._gate.grant(1)
        else:
            return False
        return True

    def _advance(self) -> None:
        if self.two_phase and not self.pending:
            self.reveal(self.revealed, pending=True)
        else:
            self.reveal(self.revealed + 1)

    def back(self) -> bool:
        """One iteration back (or back to before its verification); False at the start."""
        self.hold()
        if self.pending:
            self.reveal(self.revealed)
        elif self.revealed > 0:
            self.reveal(self.revealed - 1)
        else:
            return False
        return True

    def first(self) -> None:
        self.hold()
        self.reveal(0)

    def last(self) -> None:
        self.hold()
        self.reveal(len(self.run))

    def jump(self, index: int) -> None:
        """Show up to and including the iteration whose ``Iteration.index`` is ``index``."""
        self.hold()
        self.reveal(bisect_right([it.index for it in self.run.iterations], index))

    def toggle_two_phase(self) -> None:
        self.two_phase = not self.two_phase
        if not self.two_phase and self.pending:
            self.reveal(self.revealed)

    # -- playing at the measured pace ---------------------------------------------------------------

    def toggle_play(self, now: float) -> bool:
        """Pause or resume a live decoder (hold or catch up with a feed), else stop or start
        playback; False if nothing can play."""
        if self._attached and self._gate is None:
            if self.follow:
                self.hold()
            else:
                self.catch_up()
            return True
        if self._gate is not None:
            if self._gate.paused:
                self._gate.resume()
                self.follow = True
                self.reveal(len(self.run))
            else:
                self._gate.pause()
                self.follow = False
            return True
        if self._clock is not None:
            self._clock = None
            return True
        if not len(self.run):
            return False
        start = 0 if self.revealed >= len(self.run) else self.revealed
        self.reveal(start)
        self._clock = PaceClock(self.run.cumulative_times(), start=start, speed=self.speed)
        self._last_tick = now
        return True

    def stop(self) -> None:
        self._clock = None

    def tick(self, now: float) -> bool:
        """Advance playback to wall time ``now``; True if the playhead moved or playback ended."""
        if self._clock is None:
            return False
        elapsed, self._last_tick = now - self._last_tick, now
        due = self._clock.advance(elapsed)
        moved = due != self.revealed
        if moved:
            self.reveal(due)
        if self._clock.done:
            self._clock = None  # stops by itself at the end of the run
            return True
        return moved

    def change_speed(self, direction: int) -> float:
        self.speed = step_speed(self.speed, direction)
        if self._clock is not None:
            self._clock.speed = self.speed
        return self.speed

    # -- following a live decoder -------------------------------------------------------------------

    def attach(self, gate: PauseGate | None) -> None:
        """A live decoder starts filling ``run``, held between iterations by ``gate``; with no gate,
        a feed that cannot be held (the playhead alone holds)."""
        self._attached = True
        self._gate = gate
        self.follow = True
        self._asked = 0

    def detach(self) -> None:
        """The source stopped (ended, failed, or was replaced): a following playhead shows it all."""
        self._attached = False
        self._gate = None
        self._asked = 0
        if self.follow:
            self.reveal(len(self.run))

    def catch_up(self) -> None:
        """Back to live: show every iteration received, follow the next ones, resume a held decoder."""
        self._clock = None
        if self._gate is not None and self._gate.paused:
            self._gate.resume()
        self._asked = 0
        self.follow = True
        self.reveal(len(self.run))

    def receive(self, event: Event) -> None:
        """Record an event of the live run and follow it, or show it if a step asked for it."""
        self.run.add(event)
        if isinstance(event, RunStarted):
            self._show(0, pending=False)
        elif isinstance(event, Iteration):
            if self.follow:
                self.reveal(len(self.run))
            elif self._asked > 0:
                self._asked -= 1
                self._advance()
        elif isinstance(event, RunFinished):
            self._asked = 0
