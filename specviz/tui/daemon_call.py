"""Await a blocking call made on a daemon thread, which is abandoned if nobody waits any more.

Why not Textual's ``@work(thread=True)``: its threads belong to asyncio's default executor, which
the interpreter joins at exit. A model load cannot be interrupted, so quitting while one runs
would leave the terminal back at the shell but the process alive until torch finished reading a
checkpoint nobody wants any more (tens of seconds on a CPU). A daemon thread does not hold up the
exit, and the call can stop early at its next progress report by checking ``abandoned``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

T = TypeVar("T")


class Abandoned(Exception):
    """Raised inside the call (by its own progress reports) once nobody awaits its result."""


async def call_in_daemon_thread(fn: Callable[[threading.Event], T], *, name: str) -> T:
    """Run ``fn(abandoned)`` on a new daemon thread and return (or raise) what it does.

    ``abandoned`` is set when the awaiting task is cancelled (the app is closing); ``fn`` may
    check it at convenient points and raise :class:`Abandoned` to stop. It stays clear after a
    normal return, since callbacks handed out by ``fn`` may legitimately be called later.
    """
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()
    abandoned = threading.Event()

    def settle(outcome: Callable[[], None]) -> None:
        if abandoned.is_set():
            return
        try:
            loop.call_soon_threadsafe(outcome)
        except RuntimeError:  # the loop closed meanwhile: the app has exited
            pass

    def run() -> None:
        try:
            value = fn(abandoned)
        except BaseException as exc:  # handed to the awaiting task, which decides
            settle(partial(_set_exception, result, exc))
        else:
            settle(partial(_set_result, result, value))

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        return await result
    except asyncio.CancelledError:
        abandoned.set()
        raise


def _set_result(future: asyncio.Future[T], value: T) -> None:
    if not future.done():  # a cancelled wait leaves the future cancelled
        future.set_result(value)


def _set_exception(future: asyncio.Future[T], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
