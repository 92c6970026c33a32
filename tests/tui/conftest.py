from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable

import pytest
from textual.message import Message
from textual.pilot import Pilot

from specviz.decoding.events import Event, read_trace
from specviz.tui.app import SpecvizApp
from specviz.tui.pause_gate import PauseGate
from tests.support.traces import DATA

# How long a test waits for the UI (or its worker) to reach a state before failing. Generous on
# purpose: on a loaded machine one UI round trip can take seconds; waiting costs nothing when the
# state comes at once, and a timeout only ever turns a slow run into a false failure.
TIMEOUT_S = 60.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop, so the UI tests need no asyncio plugin."""
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        return None
    names = inspect.signature(test).parameters
    asyncio.run(test(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture
def sampled_events() -> list[Event]:
    return list(read_trace(DATA / "sampled.jsonl"))


@pytest.fixture
def greedy_race_events() -> list[Event]:
    return list(read_trace(DATA / "greedy_race.jsonl"))


async def wait_until(pilot: Pilot, condition: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    """Let the app (and its worker threads) run until ``condition()`` holds; fail after ``timeout``.

    The one way these tests wait: on a state, never for a fixed time, so a busy machine makes a
    test slower but not wrong.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout:g} s")
        await pilot.pause(0.02)
    await pilot.pause()


def run_done(app: SpecvizApp) -> bool:
    """The live run has finished, and its worker's last message (DecodeEnded) has been handled.

    Its RunFinished alone is not enough to end a test on: leaving ``run_test`` closes the screen
    while the app still handles messages, and a DecodeEnded arriving then finds no widgets.
    """
    return not app.decoding and app.run_recording.finished is not None


class Handled:
    """How many messages of one type the app itself has finished handling since this was made.

    For the last message a worker posts when nothing on screen changes with it (a race's
    RaceEnded): a test waits for it before leaving ``run_test``, for the reason given in
    :func:`run_done`. Make it inside ``run_test`` (the app must be running).
    """

    def __init__(self, app: SpecvizApp, message_type: type[Message]) -> None:
        self._type = message_type
        self.count = 0
        app.message_signal.subscribe(app, self._handled, immediate=True)

    def _handled(self, message: Message) -> None:
        if isinstance(message, self._type):
            self.count += 1


class WatchedGate(PauseGate):
    """A PauseGate that shows whether its decoding thread is held in :meth:`wait` right now.

    Held: inside ``wait``, paused, and no step granted that it has not used. Such a thread stays
    put until the UI acts, so a test can see that a paused decoder computes nothing, and that a
    step costs exactly one iteration, without sleeping to find out.
    """

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._waits = 0
        self._inside = False
        self._unused_steps = 0  # granted while paused, not yet taken by the decoding thread

    @property
    def waits(self) -> int:
        """How many times the decoding thread has called :meth:`wait`."""
        return self._waits

    @property
    def holding(self) -> bool:
        with self._lock:
            return self._inside and self.paused and self._unused_steps == 0

    def pause(self) -> None:
        with self._lock:
            self._unused_steps = 0
        super().pause()

    def resume(self) -> None:
        with self._lock:
            self._unused_steps = 0
        super().resume()

    def grant(self, steps: int = 1) -> None:
        with self._lock:  # counted before the thread can take it: ``holding`` never reads stale
            self._unused_steps += steps
        super().grant(steps)

    def wait(self, cancelled: Callable[[], bool]) -> bool:
        with self._lock:
            self._waits += 1
            self._inside = True
        go_on = False
        try:
            go_on = super().wait(cancelled)
            return go_on
        finally:
            with self._lock:
                self._inside = False
                if go_on and self.paused:
                    # It went on while paused: it took a granted step (or went on just before the
                    # pause, which granted nothing; hence never below 0).
                    self._unused_steps = max(0, self._unused_steps - 1)
