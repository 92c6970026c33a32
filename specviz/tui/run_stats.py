"""The numbers the UI shows for a run up to a playhead, in the conventions of specviz.decoding.stats.

metrics.RunStats accumulates a whole run; here every number is available at any playhead in O(1) from
the recording's prefix sums, which stepping back and forth needs.

- acceptance rate = accepted / drafted (not Leviathan's alpha).
- alpha_hat = mean over verified drafted positions of sum_x min(p, q) (``DraftedToken.overlap``).
- mean accepted length counts the resampled/bonus token too, so it is >= 1 per iteration.
- per-position acceptance: P(accepted at position i | position i was reached); discarded tokens were
  not reached.
- c = time of one draft step / time of one target step. The target step is the plain baseline's
  per-token time when a baseline run exists, else a verify pass (an upper bound on one target step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from specviz.decoding.events import Iteration
from specviz.decoding.stats import RunStats as MetricsStats
from specviz.tui.recording import Recording


@dataclass(frozen=True)
class RunStats:
    iterations: int
    drafted: int
    accepted: int
    tokens: int
    draft_time_s: float
    verify_time_s: float
    alpha_hat: float | None
    cost_ratio: float | None
    baseline_tokens_per_s: float | None

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    @property
    def mean_accepted_length(self) -> float | None:
        return self.tokens / self.iterations if self.iterations else None

    @property
    def decode_time_s(self) -> float:
        return self.draft_time_s + self.verify_time_s

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.decode_time_s if self.decode_time_s > 0 else None

    @property
    def measured_speedup(self) -> float | None:
        if self.tokens_per_s is None or not self.baseline_tokens_per_s:
            return None
        return self.tokens_per_s / self.baseline_tokens_per_s


def baseline_step_s(baseline: Recording | None) -> float | None:
    """Seconds per token of a plain run: the measured cost of one target step."""
    if baseline is None or not len(baseline):
        return None
    n = len(baseline)
    tokens = baseline.committed(n)
    return baseline.decode_time(n) / tokens if tokens else None


def summarise(run: Recording, n: int, baseline: Recording | None = None) -> RunStats:
    """The stats of ``run`` after its first ``n`` iterations."""
    drafted = run.drafted(n)
    draft_time = run.draft_time(n)
    verify_time = run.verify_time(n)
    base_step = baseline_step_s(baseline)
    target_step = base_step if base_step is not None else (verify_time / n if n else None)
    cost_ratio = (draft_time / drafted) / target_step if drafted and target_step else None
    return RunStats(
        iterations=n,
        drafted=drafted,
        accepted=run.accepted(n),
        tokens=run.committed(n),
        draft_time_s=draft_time,
        verify_time_s=verify_time,
        alpha_hat=run.alpha_hat(n),
        cost_ratio=cost_ratio,
        baseline_tokens_per_s=1 / base_step if base_step else None,
    )


def running_acceptance(iterations: Sequence[Iteration]) -> list[float]:
    """Acceptance rate over iterations[:i+1], for each i (iterations without drafts repeat the last)."""
    rates: list[float] = []
    drafted = accepted = 0
    for it in iterations:
        drafted += len(it.drafted)
        accepted += it.n_accepted
        rates.append(accepted / drafted if drafted else (rates[-1] if rates else 0.0))
    return rates


def acceptance_by_position(iterations: Sequence[Iteration]) -> list[float]:
    """P(accepted at draft position i | reached), for i = 0 .. longest draft - 1 (metrics' definition)."""
    stats = MetricsStats()
    for it in iterations:
        stats.observe_iteration(it)
    return stats.per_position_acceptance


def accepted_length_histogram(iterations: Sequence[Iteration]) -> list[int]:
    """counts[k] = iterations that committed k tokens (accepted drafts + the correction)."""
    counts: list[int] = []
    for it in iterations:
        k = len(it.new_token_ids)
        while len(counts) <= k:
            counts.append(0)
        counts[k] += 1
    return counts
