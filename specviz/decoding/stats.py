"""Statistics of a run, computed from its events only (so live runs and traces agree).

Conventions:
- acceptance rate = accepted / drafted (not Leviathan's alpha);
- alpha estimate = mean over verified drafted positions of sum_x min(target_probs, draft_probs);
- mean accepted length per iteration counts the resampled/bonus token, so it is >= 1;
- per-position acceptance[i] = P(accepted at position i | position i was reached and verified);
- c = draft time per drafted token / target time per single-token step (from a plain run when
  one is given, else estimated from the verify step and labelled so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specviz.decoding.events import Event, Iteration, RunFinished, RunStarted


@dataclass
class RunStats:
    iterations: int = 0
    drafted: int = 0
    accepted: int = 0
    generated: int = 0
    draft_time_s: float = 0.0
    verify_time_s: float = 0.0
    overlap_sum: float = 0.0
    overlap_n: int = 0
    reached: list[int] = field(default_factory=list)  # per draft position: times verified
    accepted_at: list[int] = field(default_factory=list)  # per draft position: times accepted
    accepted_lengths: list[int] = field(default_factory=list)  # committed tokens per iteration
    wall_time_s: float | None = None

    def observe(self, event: Event) -> None:
        if isinstance(event, Iteration):
            self.observe_iteration(event)
        elif isinstance(event, RunFinished):
            self.wall_time_s = event.wall_time_s

    def observe_iteration(self, it: Iteration) -> None:
        self.iterations += 1
        self.generated = it.total_tokens
        self.draft_time_s += it.draft_time_s
        self.verify_time_s += it.verify_time_s
        self.accepted_lengths.append(len(it.new_token_ids))
        for d in it.drafted:
            if d.verdict == "discarded":
                break  # never verified: says nothing about acceptance at this position
            self.drafted += 1
            self.overlap_sum += d.overlap
            self.overlap_n += 1
            while len(self.reached) <= d.position:
                self.reached.append(0)
                self.accepted_at.append(0)
            self.reached[d.position] += 1
            if d.verdict == "accepted":
                self.accepted += 1
                self.accepted_at[d.position] += 1
        # Drafted-but-discarded tokens still count as drafted (they cost draft time).
        self.drafted += sum(1 for d in it.drafted if d.verdict == "discarded")

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def alpha_estimate(self) -> float | None:
        return self.overlap_sum / self.overlap_n if self.overlap_n else None

    @property
    def mean_accepted_length(self) -> float:
        return sum(self.accepted_lengths) / len(self.accepted_lengths) if self.accepted_lengths else 0.0

    @property
    def per_position_acceptance(self) -> list[float]:
        return [a / r if r else 0.0 for a, r in zip(self.accepted_at, self.reached, strict=True)]

    @property
    def decode_time_s(self) -> float:
        return self.wall_time_s if self.wall_time_s is not None else self.draft_time_s + self.verify_time_s

    @property
    def tokens_per_s(self) -> float:
        t = self.decode_time_s
        return self.generated / t if t > 0 else 0.0

    @property
    def draft_step_s(self) -> float | None:
        return self.draft_time_s / self.drafted if self.drafted else None

    @property
    def verify_step_s(self) -> float | None:
        return self.verify_time_s / self.iterations if self.iterations else None


def stats_of(events: list[Event]) -> RunStats:
    stats = RunStats()
    for e in events:
        stats.observe(e)
    return stats


def started(events: list[Event]) -> RunStarted:
    for e in events:
        if isinstance(e, RunStarted):
            return e
    raise ValueError("no RunStarted event")
