"""Playing a recorded run back at its measured pace: which iteration is due at a given moment."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence


class PaceClock:
    """Maps elapsed playback time to the number of iterations shown.

    ``cumulative`` holds the decode time after each iteration (iteration i is shown once the clock
    reaches ``cumulative[i]``), so a run is replayed as fast as it was decoded, times ``speed``.
    """

    def __init__(self, cumulative: Sequence[float], *, start: int = 0, speed: float = 1.0) -> None:
        self._cumulative = list(cumulative)
        self.speed = speed
        self.time = self._cumulative[start - 1] if 0 < start <= len(self._cumulative) else 0.0

    @property
    def total(self) -> int:
        return len(self._cumulative)

    @property
    def duration(self) -> float:
        return self._cumulative[-1] if self._cumulative else 0.0

    def advance(self, seconds: float) -> int:
        """Move the clock on by ``seconds`` of wall time; returns the iterations now due."""
        self.time += seconds * self.speed
        return self.due()

    def due(self) -> int:
        return bisect_right(self._cumulative, self.time + 1e-12)

    def finish(self) -> int:
        self.time = self.duration
        return self.total

    @property
    def done(self) -> bool:
        return self.due() >= self.total
