"""The compute thread runs every call and every step of a generator on one thread, in order."""

from __future__ import annotations

import threading

import pytest

from specviz.session.compute_thread import ComputeThread


def test_calls_and_generator_steps_all_run_on_the_compute_thread() -> None:
    compute = ComputeThread(name="test-compute")
    seen: list[str] = []
    closed: list[str] = []

    def steps():
        try:
            for i in range(3):
                seen.append(threading.current_thread().name)
                yield i
        finally:
            closed.append(threading.current_thread().name)

    assert compute.call(lambda: threading.current_thread().name) == "test-compute"
    assert list(compute.iterate(steps())) == [0, 1, 2]
    assert seen == ["test-compute"] * 3 and closed == ["test-compute"]


def test_errors_reach_the_caller_and_an_abandoned_generator_is_closed_there() -> None:
    compute = ComputeThread()
    with pytest.raises(ZeroDivisionError):
        compute.call(lambda: 1 / 0)
    closed: list[str] = []

    def endless():
        try:
            while True:
                yield 1
        finally:
            closed.append(threading.current_thread().name)

    it = compute.iterate(endless())
    assert next(it) == 1
    it.close()  # the consumer stops early (a cancelled run): the decoder is closed, on its thread
    assert closed == ["specviz-compute"]
    # A call made from the compute thread itself runs in place instead of waiting on itself.
    assert compute.call(lambda: compute.call(lambda: 7)) == 7
