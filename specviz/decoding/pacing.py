"""Automatic γ: how many tokens to draft, chosen each iteration from measured costs and acceptance.

A fixed γ is right for one prompt on one machine at best. Drafting k tokens costs k draft steps
plus the target scoring k + 1 positions, T(k + 1), and commits on average
``(1 - α^(k+1)) / (1 - α)`` tokens (Leviathan et al. 2023, eq. 1); plain decoding commits one
token per T(1). So with the costs measured on this machine and a running estimate of α, the best
k is the one with the most expected tokens per second, and k = 0 (no draft: one plain target
step) wins whenever drafting does not pay, e.g. when the draft keeps getting rejected.

Lossless by construction: pacing only decides how many tokens are proposed, never which ones or
from what distribution, and verification is unchanged.

While k = 0 there is nothing to learn α from, so every ``probe_every``-th plain iteration drafts
a short probe; if the text has turned predictable again, the estimate recovers and drafting
resumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from specviz.decoding.drafters import Draft, Drafter
from specviz.decoding.theory import expected_tokens


@dataclass(frozen=True)
class CostTable:
    """Measured seconds: one draft step, and the target scoring k tokens in one forward."""

    draft_step_s: float
    verify_s: tuple[float, ...]  # verify_s[k - 1] = T(k); needs at least T(1)

    def __post_init__(self) -> None:
        if not self.verify_s or min(self.verify_s) <= 0 or self.draft_step_s < 0:
            raise ValueError("a cost table needs T(1) > 0 and a non-negative draft step")

    @property
    def max_draft(self) -> int:
        return len(self.verify_s) - 1

    def tokens_per_s(self, alpha: float, k: int) -> float:
        """Expected committed tokens per second when drafting k tokens per iteration."""
        iteration_s = k * self.draft_step_s + self.verify_s[k]
        return expected_tokens(alpha, k) / iteration_s


def best_length(alpha: float, costs: CostTable, cap: int) -> int:
    """The k in 0..cap (and within the table) with the most expected tokens per second."""
    top = max(0, min(cap, costs.max_draft))
    return max(range(top + 1), key=lambda k: costs.tokens_per_s(alpha, k))


class AcceptanceEstimate:
    """Running estimate of α, the chance that a drafted token is accepted.

    Each iteration is a run of Bernoulli trials that stops at the first rejection: n accepted out
    of d drafted is n successes in n + 1 trials when n < d, else d in d. Counts decay by ``decay``
    per iteration so the estimate follows the text (code, then prose) rather than the whole run;
    a weak prior keeps the first iterations from swinging to 0 or 1.
    """

    def __init__(self, prior: float = 0.6, prior_trials: float = 3.0, decay: float = 0.85) -> None:
        if not 0.0 < prior < 1.0 or prior_trials <= 0 or not 0.0 < decay <= 1.0:
            raise ValueError("need 0 < prior < 1, prior_trials > 0 and 0 < decay <= 1")
        self.successes = prior * prior_trials
        self.trials = prior_trials
        self.decay = decay

    @property
    def value(self) -> float:
        return self.successes / self.trials

    def update(self, n_accepted: int, n_drafted: int) -> None:
        if n_drafted <= 0:
            return
        trials = n_accepted + (1 if n_accepted < n_drafted else 0)
        self.successes = self.decay * self.successes + n_accepted
        self.trials = self.decay * self.trials + trials


class PacedDrafter:
    """Wraps a drafter; asks it for the cost-optimal number of tokens, capped by the decoder's k."""

    def __init__(
        self,
        inner: Drafter,
        costs: CostTable,
        probe_every: int = 8,
        probe_length: int = 2,
        estimate: AcceptanceEstimate | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.costs = costs
        self.probe_every = probe_every
        self.probe_length = probe_length
        self._fresh_estimate = estimate or AcceptanceEstimate()
        self.alpha = self._copy(self._fresh_estimate)
        self._plain_streak = 0

    @staticmethod
    def _copy(estimate: AcceptanceEstimate) -> AcceptanceEstimate:
        copy = AcceptanceEstimate.__new__(AcceptanceEstimate)
        copy.__dict__.update(estimate.__dict__)
        return copy

    def choose(self, cap: int) -> int:
        k = best_length(self.alpha.value, self.costs, cap)
        if k > 0 or cap == 0:
            self._plain_streak = 0
            return k
        self._plain_streak += 1
        if self._plain_streak >= self.probe_every:
            self._plain_streak = 0
            return min(cap, self.probe_length)
        return 0

    def prefill(self, context: list[int]) -> None:
        self.alpha = self._copy(self._fresh_estimate)
        self._plain_streak = 0
        self.inner.prefill(context)

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> Draft:
        length = self.choose(k)
        draft = self.inner.propose(context, length, generator)
        return replace(draft, asked=length)

    def feedback(self, n_accepted: int, n_drafted: int) -> None:
        self.alpha.update(n_accepted, n_drafted)
        self.inner.feedback(n_accepted, n_drafted)

    def synchronize(self) -> None:
        self.inner.synchronize()


def interpolate_costs(draft_step_s: float, measured: dict[int, float], max_k: int) -> CostTable:
    """A full T(1..max_k) table from T measured at some k (linear in between; measure max_k too,
    beyond the last measured k the table stays flat)."""
    if 1 not in measured:
        raise ValueError("T(1) must be measured")
    points: Sequence[int] = sorted(measured)
    table = []
    for k in range(1, max_k + 1):
        lo = max(p for p in points if p <= k)
        above = [p for p in points if p >= k]
        hi = min(above) if above else lo
        if hi == lo:
            table.append(measured[lo] if above else measured[points[-1]])
        else:
            frac = (k - lo) / (hi - lo)
            table.append(measured[lo] * (1 - frac) + measured[hi] * frac)
    return CostTable(draft_step_s, tuple(table))
