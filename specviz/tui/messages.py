"""Messages the worker threads post to the app: one per event (never one per token), load progress."""

from __future__ import annotations

from typing import Literal

from textual.message import Message

from specviz.decoding.events import Event
from specviz.tui.model_loading import LoadedModels

RaceSide = Literal["plain", "speculative"]


class DecodeEvent(Message):
    """One event of the live run ``run_id`` (a stale run's messages are ignored by id)."""

    def __init__(self, run_id: int, event: Event) -> None:
        super().__init__()
        self.run_id = run_id
        self.event = event


class DecodeEnded(Message):
    """The run's event source is exhausted, was cancelled, or raised (``error`` set)."""

    def __init__(self, run_id: int, error: str | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.error = error


class RaceEvent(Message):
    """One event of one side of a race, decoded one side after the other."""

    def __init__(self, run_id: int, side: RaceSide, event: Event) -> None:
        super().__init__()
        self.run_id = run_id
        self.side = side
        self.event = event


class LoadProgress(Message):
    """The model loader of load ``load_id`` reached ``done``/``total`` of ``stage``."""

    def __init__(self, load_id: int, stage: str, done: int, total: int) -> None:
        super().__init__()
        self.load_id = load_id
        self.stage = stage
        self.done = done
        self.total = total


class LoadFinished(Message):
    """Load ``load_id`` ended: ``models`` when it worked, else ``error`` (what to tell the user)."""

    def __init__(self, load_id: int, models: LoadedModels | None, error: str | None = None) -> None:
        super().__init__()
        self.load_id = load_id
        self.models = models
        self.error = error
