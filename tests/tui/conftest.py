from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from specviz.decoding.events import Event, read_trace
from tests.support.traces import DATA


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


async def wait_until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app (and its worker thread) run until ``condition()`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)
    await pilot.pause()


async def settle(pilot: Pilot, seconds: float = 0.1) -> None:
    """Give a worker thread time to do anything it would (wrongly) still do."""
    await asyncio.sleep(seconds)
    await pilot.pause()
