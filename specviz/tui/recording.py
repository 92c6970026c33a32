"""One run's events as received, with the run's statistics after every iteration, so the stats at any
playhead are O(1).

Stepping back and jumping never recompute anything: they move a playhead over this record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from specviz.decoding.events import Event, Iteration, RunFinished, RunStarted
from specviz.decoding.stats import RunStats


@dataclass
class Recording:
    """The events of one run, in order; ``iterations[:n]`` is the state after n iterations."""

    started: RunStarted | None = None
    iterations: list[Iteration] = field(default_factory=list)
    finished: RunFinished | None = None
    # Entry n: the stats of iterations[:n] (never the finish: a playhead knows no wall time).
    _stats: list[RunStats] = field(default_factory=lambda: [RunStats()])
    _token_texts: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Iterable[Event]) -> Recording:
        recording = cls()
        for event in events:
            recording.add(event)
        return recording

    def add(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.started = event
            if not self.iterations:
                self._stats[0] = RunStats(started=event)
        elif isinstance(event, Iteration):
            self._add_iteration(event)
        elif isinstance(event, RunFinished):
            self.finished = event

    def _add_iteration(self, it: Iteration) -> None:
        self.iterations.append(it)
        stats = self._stats[-1].copy()
        stats.observe_iteration(it)
        self._stats.append(stats)
        for d in it.drafted:
            self._token_texts.setdefault(d.token_id, d.text)
        self._token_texts.setdefault(it.correction.token_id, it.correction.text)
        for entry in it.correction.top:
            self._token_texts.setdefault(entry.token_id, entry.text)

    def events(self) -> Iterator[Event]:
        """The run's events in the order they were received (what a trace of it holds)."""
        if self.started is not None:
            yield self.started
        yield from self.iterations
        if self.finished is not None:
            yield self.finished

    def __len__(self) -> int:
        return len(self.iterations)

    @property
    def speculative(self) -> bool:
        return self.started is None or self.started.mode == "speculative"

    @property
    def greedy(self) -> bool:
        return self.started is not None and self.started.temperature == 0

    def token_text(self, token_id: int) -> str | None:
        """The text of a token id seen anywhere in this run (events carry ids without text for argmax)."""
        return self._token_texts.get(token_id)

    def stats(self, n: int | None = None) -> RunStats:
        """The stats after the first ``n`` iterations (all of them when None); shared, do not mutate."""
        return self._stats[len(self.iterations) if n is None else n]

    def committed(self, n: int) -> int:
        return self._stats[n].committed

    def decode_time(self, n: int) -> float:
        return self._stats[n].decode_time_s

    def cumulative_times(self) -> Sequence[float]:
        """Decode time after each iteration: element i is the time once iteration i is done."""
        return [stats.decode_time_s for stats in self._stats[1:]]

    def text(self, n: int) -> str:
        return "".join(it.new_text for it in self.iterations[:n])

    def token_ids(self, n: int) -> tuple[int, ...]:
        return tuple(t for it in self.iterations[:n] for t in it.new_token_ids)


def split_runs(events: Iterable[Event]) -> list[Recording]:
    """Cut a stream of events (e.g. a trace holding a plain and a speculative run) into runs."""
    runs: list[Recording] = []
    for event in events:
        if isinstance(event, RunStarted) or not runs:
            runs.append(Recording())
        runs[-1].add(event)
    return runs
