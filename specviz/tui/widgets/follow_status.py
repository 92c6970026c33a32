"""One line under the settings in follow mode: where this follower is in the teacher's run.

The widget owns the feed: a thread worker tails the trace file the teacher's specviz writes
(:class:`~specviz.tui.follow.TraceTail`, polled every :data:`POLL_S`; an unchanged file costs one
``stat`` per poll) and posts one :class:`FollowStatus.Received` per event, which bubbles up to the
app, and :class:`FollowStatus.Restarted` when the teacher starts the file afresh. The app feeds the
events to its playhead as it does a live decoder's, and tells this widget where the follower's
playhead is (:meth:`FollowStatus.show_position`): live, some iterations behind, or on an older run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.content import Content
from textual.markup import escape
from textual.message import Message
from textual.widget import Widget
from textual.worker import get_current_worker

from specviz.decoding.events import Event
from specviz.tui.follow import Restarted, Skipped, TailState, TraceTail

# Between two reads of the file. A teacher's iteration takes 50-500 ms on the default pair on a CPU,
# so a follower is at most one poll behind what it could show; 30 followers polling an unchanged
# file cost 30 stats per poll, nothing else.
POLL_S = 0.15


@dataclass(frozen=True)
class FollowPosition:
    """Where the follower's playhead is against the feed (the app computes it)."""

    live: bool  # following the newest iteration as it arrives
    behind: int  # iterations received that the playhead has not reached (this run and later ones)
    newer_runs: int  # runs the teacher started after the one shown
    going: bool  # the newest run is still being written (no run_finished yet)


def follow_markup(path: Path, state: TailState | None, position: FollowPosition) -> str:
    """The line for the feed's ``state`` and the follower's ``position``."""
    name = escape(str(path))
    if state is None or state.kind == "missing":
        return (
            f"[$text-accent b]⟳ waiting for {name} to appear[/] · "
            f"[$text-muted]the teacher's `specviz run --trace {name}` creates it[/]"
        )
    if state.kind == "error":
        return f"[$text-error b]✗ {escape(state.detail)}[/] · [$text-muted]still watching the file[/]"
    if state.kind == "empty":
        return f"[$text-accent b]⟳ waiting for the teacher's run[/] · [$text-muted]{name} has no event yet[/]"
    if position.live:
        if position.going:
            return f"[$text-success b]● following {name} — live[/]"
        return (
            f"[$text-success b]● following {name}[/] · "
            "[$text-muted]the teacher's run is over; the next one shows here when it starts[/]"
        )
    behind = f"{position.behind} iteration{'s' if position.behind != 1 else ''} behind"
    if position.newer_runs:
        runs = "a new run" if position.newer_runs == 1 else f"{position.newer_runs} new runs"
        return f"[$text-warning b]⏸ the teacher started {runs}[/] · {behind} · [b]c[/] catches up"
    if position.behind == 0:
        return "[$text-warning b]⏸ holding at the newest iteration[/] · [b]c[/] follows live"
    return f"[$text-warning b]⏸ {behind}[/] · [b]c[/] catches up"


class FollowStatus(Widget):
    DEFAULT_CSS = """
    FollowStatus {
        height: auto;
        max-height: 2;
        background: $panel;
        padding: 0 1;
    }
    """

    class Received(Message):
        """One event of the followed trace, in file order."""

        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    class Restarted(Message):
        """The teacher started the file afresh: what was received before is gone."""

    class _Changed(Message, bubble=False):
        """The file's state changed, or a line in it was skipped (handled here)."""

        def __init__(self, update: TailState | Skipped) -> None:
            super().__init__()
            self.update = update

    def __init__(self, path: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.path = path
        self._state: TailState | None = None
        self._position = FollowPosition(live=True, behind=0, newer_runs=0, going=False)

    @property
    def state(self) -> TailState | None:
        """The followed file's state: None before the first poll."""
        return self._state

    @property
    def position(self) -> FollowPosition:
        return self._position

    @property
    def plain(self) -> str:
        return Content.from_markup(self._markup()).plain

    def start(self) -> None:
        """Start tailing the file (from its first byte)."""
        self._follow(TraceTail(self.path))

    def show_position(self, position: FollowPosition) -> None:
        if position != self._position:
            self._position = position
            self.refresh(layout=True)

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False)
    def _follow(self, tail: TraceTail) -> None:
        worker = get_current_worker()
        tick = threading.Event()  # never set: a sleep that is not a busy loop
        while not worker.is_cancelled:
            try:
                updates = tail.poll()
            except Exception as exc:  # shown, never raised into the UI
                self.post_message(self._Changed(TailState("error", f"{type(exc).__name__}: {exc}")))
                return
            for update in updates:
                if isinstance(update, TailState | Skipped):
                    self.post_message(self._Changed(update))
                elif isinstance(update, Restarted):
                    self.post_message(self.Restarted())
                else:
                    self.post_message(self.Received(update))
            tick.wait(POLL_S)

    @on(_Changed)
    def _changed(self, message: _Changed) -> None:
        update = message.update
        if isinstance(update, Skipped):
            self.notify(update.problem, title="trace", severity="warning", timeout=10, markup=False)
            return
        self._state = update
        self.refresh(layout=True)

    def _markup(self) -> str:
        return follow_markup(self.path, self._state, self._position)

    def render(self) -> Content:
        return Content.from_markup(self._markup())
