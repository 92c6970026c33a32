"""One thread for all of an interactive session's torch work: loading, warm-up and decoding.

Why: each thread that runs torch operators starts its own team of OpenMP threads, and a team
stays around after its thread stops using it. Measured on this project's 2-core CPU (torch 2.13,
default pair): with the models loaded on the main thread, the same forwards ran 20-50 % slower
on a second thread (target step 326 -> 388 ms, draft step 44 -> 66 ms; with
OMP_WAIT_POLICY=ACTIVE, twice as slow), and a UI run reached 0.67x the headless tokens/s. When
every operator ran on one thread (any one), the speed was the main thread's. The UI loads models
and decodes from different worker threads, so it hands both to one ComputeThread instead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


class ComputeThread:
    """A daemon thread that runs submitted calls one at a time, in order.

    A daemon: a model load cannot be interrupted, and quitting the app must not wait for one.
    """

    def __init__(self, name: str = "specviz-compute") -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            fn, future = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller, which decides
                future.set_exception(exc)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the compute thread and return (or raise) what it does."""
        if threading.current_thread() is self._thread:
            return fn()  # already here: queueing would wait on itself
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future.result()

    def iterate(self, items: Iterator[T]) -> Iterator[T]:
        """``items``, each one produced on the compute thread (a lazy generator stays lazy)."""
        try:
            while True:
                item = self.call(lambda: next(items, _END))
                if item is _END:
                    return
                yield item  # type: ignore[misc]
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                self.call(close)
