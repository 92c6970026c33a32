"""Playing a recorded run back at its measured pace: which iteration is due at a given moment."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # playback speed ladder: times the measured pace
TICK_S = 1 / 30  # how often a playing clock is advanced and the screen redrawn


def step_speed(speed: float, direction: int) -> float:
    """The speed ``direction`` rungs up (or down) the ladder from the rung nearest ``speed``, clamped."""
    i = min(range(len(SPEEDS)), key=lambda k: abs(SPEEDS[k] - speed))
    return SPEEDS[max(0, min(len(SPEEDS) - 1, i + direction))]


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
