"""Lets a decoding thread run freely, hold between iterations, or take single steps on request."""

from __future__ import annotations

import threading
from collections.abc import Callable


class PauseGate:
    """Shared by the UI thread (pause/resume/grant) and one decoding thread (wait).

    The decoding thread calls :meth:`wait` before computing each iteration, so pausing stops the
    model itself, not just the display, and a step costs exactly one iteration of compute.
    """

    def __init__(self, *, paused: bool = False, poll_s: float = 0.05) -> None:
        self._cond = threading.Condition()
        self._paused = paused
        self._credits = 0
        self._poll_s = poll_s

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._credits = 0

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._credits = 0
            self._cond.notify_all()

    def grant(self, steps: int = 1) -> None:
        """While paused, let the decoder compute ``steps`` more iterations."""
        with self._cond:
            self._credits += steps
            self._cond.notify_all()

    def wait(self, cancelled: Callable[[], bool]) -> bool:
        """Block until the decoder may go on; False if ``cancelled()`` became true meanwhile."""
        with self._cond:
            while self._paused and self._credits == 0:
                if cancelled():
                    return False
                # A timed wait, so a cancelled worker notices even if nobody notifies.
                self._cond.wait(self._poll_s)
            if self._paused:
                self._credits -= 1
        return not cancelled()
