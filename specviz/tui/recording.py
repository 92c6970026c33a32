"""One run's events as received, with prefix sums so the stats at any playhead are O(1).

Stepping back and jumping never recompute anything: they move a playhead over this record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from specviz.decoding.events import Event, Iteration, RunFinished, RunStarted


@dataclass
class Recording:
    """The events of one run, in order; ``iterations[:n]`` is the state after n iterations."""

    started: RunStarted | None = None
    iterations: list[Iteration] = field(default_factory=list)
    finished: RunFinished | None = None
    # Prefix sums: entry n is the total over iterations[:n].
    _drafted: list[int] = field(default_factory=lambda: [0])
    _accepted: list[int] = field(default_factory=lambda: [0])
    _committed: list[int] = field(default_factory=lambda: [0])
    _draft_time: list[float] = field(default_factory=lambda: [0.0])
    _verify_time: list[float] = field(default_factory=lambda: [0.0])
    _overlap: list[float] = field(default_factory=lambda: [0.0])  # over verified (not discarded) drafts
    _verified: list[int] = field(default_factory=lambda: [0])
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
        elif isinstance(event, Iteration):
            self._add_iteration(event)
        elif isinstance(event, RunFinished):
            self.finished = event

    def _add_iteration(self, it: Iteration) -> None:
        self.iterations.append(it)
        self._drafted.append(self._drafted[-1] + len(it.drafted))
        self._accepted.append(self._accepted[-1] + it.n_accepted)
        self._committed.append(self._committed[-1] + len(it.new_token_ids))
        self._draft_time.append(self._draft_time[-1] + it.draft_time_s)
        self._verify_time.append(self._verify_time[-1] + it.verify_time_s)
        verified = [d for d in it.drafted if d.verdict != "discarded"]
        self._overlap.append(self._overlap[-1] + sum(d.overlap for d in verified))
        self._verified.append(self._verified[-1] + len(verified))
        for d in it.drafted:
            self._token_texts.setdefault(d.token_id, d.text)
        self._token_texts.setdefault(it.correction.token_id, it.correction.text)
        for entry in it.correction.top:
            self._token_texts.setdefault(entry.token_id, entry.text)

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

    def drafted(self, n: int) -> int:
        return self._drafted[n]

    def accepted(self, n: int) -> int:
        return self._accepted[n]

    def committed(self, n: int) -> int:
        return self._committed[n]

    def draft_time(self, n: int) -> float:
        return self._draft_time[n]

    def verify_time(self, n: int) -> float:
        return self._verify_time[n]

    def decode_time(self, n: int) -> float:
        return self._draft_time[n] + self._verify_time[n]

    def alpha_hat(self, n: int) -> float | None:
        """Mean overlap sum_x min(p, q) over the verified drafts of iterations[:n]: alpha's estimator."""
        return self._overlap[n] / self._verified[n] if self._verified[n] else None

    def cumulative_times(self) -> Sequence[float]:
        """Decode time after each iteration: element i is the time once iteration i is done."""
        return [a + b for a, b in zip(self._draft_time[1:], self._verify_time[1:], strict=True)]

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
