"""Messages worker threads post: one per event (never one per token), and a model load's progress.

Each worker posts to the node it runs on: the app (the live run), the race panel (a race), the
load status (a model load). The two the app must act on bubble up to it: :class:`RaceEnded` once
the race panel has handled it, and :class:`LoadFinished`, which the app hands back to the load
status. The rest stay with their node.
"""

from __future__ import annotations

from typing import Literal

from textual.message import Message

from specviz.decoding.events import Event
from specviz.tui.model_loading import LoadedModels, ModelChoice

RaceSide = Literal["plain", "speculative"]


class DecodeEvent(Message, bubble=False):
    """One event of the live run ``run_id`` (a stale run's messages are ignored by id)."""

    def __init__(self, run_id: int, event: Event) -> None:
        super().__init__()
        self.run_id = run_id
        self.event = event


class DecodeEnded(Message, bubble=False):
    """The run's event source is exhausted, was cancelled, or raised (``error`` set)."""

    def __init__(self, run_id: int, error: str | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.error = error


class RaceEvent(Message, bubble=False):
    """One event of one side of race ``race_id``, decoded one side after the other."""

    def __init__(self, race_id: int, side: RaceSide, event: Event) -> None:
        super().__init__()
        self.race_id = race_id
        self.side = side
        self.event = event


class RaceEnded(Message):
    """Race ``race_id`` stopped decoding: both sides done, cancelled, or failed (``error`` set)."""

    def __init__(self, race_id: int, error: str | None = None) -> None:
        super().__init__()
        self.race_id = race_id
        self.error = error


class LoadProgress(Message, bubble=False):
    """The model loader of load ``load_id`` reached ``done``/``total`` of ``stage``."""

    def __init__(self, load_id: int, stage: str, done: int, total: int) -> None:
        super().__init__()
        self.load_id = load_id
        self.stage = stage
        self.done = done
        self.total = total


class LoadFinished(Message):
    """Load ``load_id`` of ``choice`` ended: ``models`` when it worked, else ``error`` (what to tell the user)."""

    def __init__(
        self, load_id: int, choice: ModelChoice, models: LoadedModels | None, error: str | None = None
    ) -> None:
        super().__init__()
        self.load_id = load_id
        self.choice = choice
        self.models = models
        self.error = error
