"""Where the UI's events come from: a factory that decodes one run of the given settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from specviz.decoding.events import Event
from specviz.decoding.settings import RunSettings

EventSourceFactory = Callable[[RunSettings], Iterator[Event]]
"""Starts one decoding run and yields its events: RunStarted, Iteration..., RunFinished.

The UI calls it from a worker thread and pulls events one at a time, so a factory may do its
heavy work lazily inside the iterator. Closing the iterator (``close()``) must stop the run.
"""
