"""Where the UI's events come from: the settings of one run and a factory that decodes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Literal

from specviz.decoding.events import Event, RunStarted

Mode = Literal["speculative", "autoregressive"]


@dataclass(frozen=True)
class RunSettings:
    """What the user asks of the next run; the decoder reports what it really used in RunStarted."""

    prompt: str
    gamma: int = 4
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    drafter: str = "model"
    max_new_tokens: int = 128
    mode: Mode = "speculative"

    def __post_init__(self) -> None:
        if self.gamma < 1:
            raise ValueError(f"gamma must be >= 1, got {self.gamma}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] or None, got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def evolve(self, **changes: object) -> RunSettings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_run_started(cls, started: RunStarted) -> RunSettings:
        """The settings a recorded run used, so a replayed run shows them in the settings bar."""
        return cls(
            prompt=started.prompt,
            gamma=max(1, started.gamma),
            temperature=started.temperature,
            top_k=started.top_k,
            top_p=started.top_p,
            seed=started.seed,
            drafter=started.drafter or "model",
            max_new_tokens=max(1, started.max_new_tokens),
            mode=started.mode,
        )


EventSourceFactory = Callable[[RunSettings], Iterator[Event]]
"""Starts one decoding run and yields its events: RunStarted, Iteration..., RunFinished.

The UI calls it from a worker thread and pulls events one at a time, so a factory may do its
heavy work lazily inside the iterator. Closing the iterator (``close()``) must stop the run.
"""
