"""The daemon-thread call behind model loading: results, errors, and abandoning a cancelled wait."""

from __future__ import annotations

import asyncio
import threading

import pytest

from specviz.tui.daemon_call import call_in_daemon_thread


async def test_the_result_or_the_error_comes_back() -> None:
    flags: list[threading.Event] = []

    def answer(abandoned: threading.Event) -> int:
        flags.append(abandoned)
        return 42

    assert await call_in_daemon_thread(answer, name="specviz-test") == 42
    # A normal return abandons nothing: callbacks handed out may still be called later.
    assert not flags[0].is_set()

    def broken(abandoned: threading.Event) -> int:
        raise ValueError("no such model")

    with pytest.raises(ValueError, match="no such model"):
        await call_in_daemon_thread(broken, name="specviz-test")


async def test_a_cancelled_wait_abandons_the_call_on_a_daemon_thread() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def slow(abandoned: threading.Event) -> int:
        seen.append(threading.current_thread().daemon)
        started.set()
        release.wait(10)
        seen.append(abandoned.is_set())
        finished.set()
        return 1

    task = asyncio.create_task(call_in_daemon_thread(slow, name="specviz-test"))
    assert await asyncio.to_thread(started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert await asyncio.to_thread(finished.wait, 10)
    assert seen == [True, True]  # a daemon thread, told that nobody waits for it any more
