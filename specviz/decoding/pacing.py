"""Automatic γ: how many tokens to draft, decided each iteration from measured costs.

A fixed γ is right for one prompt on one machine at best. Drafting k tokens costs k draft steps
plus the target scoring k + 1 positions, T(k + 1), which on a CPU grows with k; plain decoding
commits one token per T(1). With T(k) and the draft step measured on this machine:

- whether to draft at all: with a running estimate of α, drafting k tokens commits
  ``(1 - α^(k+1)) / (1 - α)`` tokens on average (Leviathan et al. 2023, eq. 1); if no k > 0 beats
  a plain step, the iteration is a plain step (k = 0), and every ``probe_every``-th such
  iteration drafts a short probe so the estimate can recover when the text turns predictable;
- how far to draft: one token at a time, while the next token's expected gain per second beats
  the iteration's average so far, the gain coming from the draft's own confidence (see
  :class:`PacedDrafter`).

Lossless by construction: pacing only decides how many tokens are proposed, never which ones or
from what distribution, and verification is unchanged.
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
    """Wraps a drafter and decides how many tokens it drafts, never more than the decoder's k.

    Whether to draft at all comes from the running α: when even one drafted token is not
    expected to pay for itself, the iteration is a plain target step (with periodic probes).
    How far to draft: a drafter that reports its confidence per token (``ModelDrafter``) keeps
    going while the next token's expected gain per second beats the iteration's average so far,
    with each token's acceptance chance taken as its confidence times a running calibration
    (acceptance is far from independent: in code the draft is often sure for 20 tokens in a row,
    which a single α cannot express). Other drafters draft the k that is best for the running α.
    """

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
        self.calibration = _Calibration()
        self._plain_streak = 0
        self._by_confidence = hasattr(inner, "keep_drafting")
        if self._by_confidence:
            inner.keep_drafting = self.keep_drafting  # type: ignore[attr-defined]

    @staticmethod
    def _copy(estimate: AcceptanceEstimate) -> AcceptanceEstimate:
        copy = AcceptanceEstimate.__new__(AcceptanceEstimate)
        copy.__dict__.update(estimate.__dict__)
        return copy

    def choose(self, cap: int) -> int:
        k = best_length(self.alpha.value, self.costs, cap)
        if k > 0 or cap == 0:
            self._plain_streak = 0
            # With per-token confidences the stop rule decides the length; the cap bounds it.
            return min(cap, self.costs.max_draft) if self._by_confidence else k
        self._plain_streak += 1
        if self._plain_streak >= self.probe_every:
            self._plain_streak = 0
            return min(cap, self.probe_length)
        return 0

    def keep_drafting(self, confidences: list[float]) -> bool:
        """After drafting ``len(confidences)`` tokens: is one more expected to raise tokens/s?"""
        i = len(confidences)
        if i + 1 > self.costs.max_draft:
            return False
        survive = 1.0  # chance that every draft so far is accepted
        expected = 1.0  # committed tokens: the accepted drafts plus the correction or bonus
        for confidence in confidences:
            survive *= self.calibration.accept_chance(confidence)
            expected += survive
        cost = i * self.costs.draft_step_s + self.costs.verify_s[i]
        # The next token's confidence is unknown until it is drafted; the last one is the best guess.
        gain = survive * self.calibration.accept_chance(confidences[-1])
        extra_cost = self.costs.draft_step_s + self.costs.verify_s[i + 1] - self.costs.verify_s[i]
        return (expected + gain) / (cost + extra_cost) > expected / cost

    def prefill(self, context: list[int]) -> None:
        self.alpha = self._copy(self._fresh_estimate)
        self.calibration = _Calibration()
        self._plain_streak = 0
        self.inner.prefill(context)

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> Draft:
        length = self.choose(k)
        draft = self.inner.propose(context, length, generator)
        return replace(draft, asked=length)

    def feedback(self, n_accepted: int, n_drafted: int) -> None:
        self.alpha.update(n_accepted, n_drafted)
        if self._by_confidence and n_drafted:
            verified = getattr(self.inner, "confidences", [])[: min(n_accepted + 1, n_drafted)]
            self.calibration.update(verified, n_accepted)
        self.inner.feedback(n_accepted, n_drafted)

    def synchronize(self) -> None:
        self.inner.synchronize()


class _Calibration:
    """Maps the draft's confidence to an acceptance chance: confidence x (accepted / expected).

    Starts at 1 (a draft that agrees with the target is accepted about as often as it is sure);
    the running ratio corrects a draft that is over- or under-confident for this text.
    """

    def __init__(self, prior: float = 4.0, decay: float = 0.9) -> None:
        self.observed = prior
        self.predicted = prior
        self.decay = decay

    @property
    def ratio(self) -> float:
        return min(1.5, max(0.5, self.observed / self.predicted))

    def accept_chance(self, confidence: float) -> float:
        return min(0.99, confidence * self.ratio)

    def update(self, verified_confidences: list[float], n_accepted: int) -> None:
        if not verified_confidences:
            return
        self.observed = self.decay * self.observed + n_accepted
        self.predicted = self.decay * self.predicted + sum(verified_confidences)


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
