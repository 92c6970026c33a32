"""Automatic γ: how many tokens to draft, decided each iteration from measured costs.

A fixed γ is right for one prompt on one machine at best. Drafting k tokens costs k draft steps
plus the target scoring k + 1 positions, T(k + 1), which on a CPU grows with k; plain decoding
commits one token per T(1). With T(k) and the draft step measured on this machine (a
:class:`~specviz.decoding.costs.CostTable`), the decoder
drafts only while drafting pays: when the tokens it commits per drafting iteration do not
beat T(1) per token, iterations become plain target steps (k = 0), with a short probe now and
then so drafting resumes when the text turns predictable. For a lookup drafter, which has no
confidence of its own, the length is the k with the most expected tokens per second for the
running α (Leviathan et al. 2023, eq. 1, with the measured T(k + 1) in place of T(1)).

Lossless by construction: pacing only decides how many tokens are proposed, never which ones or
from what distribution, and verification is unchanged.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import replace

import torch

from specviz.decoding.costs import CostTable
from specviz.decoding.drafters import Draft, Drafter


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

    Whether to draft at all: the tokens committed per drafting iteration, over the cost table's
    time for that iteration (drafted x draft step + T(drafted + 1)), against plain decoding's
    one token per T(1). This uses what the drafter really achieved, correlations included (in
    code a draft is often right 20 tokens in a row, which no single α expresses); while it stays
    below ``fall_back_below`` over the last ``window`` drafting iterations, iterations are plain
    steps, with a probe every ``probe_every``-th.
    How far to draft: a drafter with its own stop (``ModelDrafter``'s confidence stop) drafts up
    to a length that grows after full acceptance and shrinks after a rejection; a lookup drafter
    drafts the k that is best for the running α.
    The decision uses the cost table, not the clock, so a run is reproducible.
    """

    def __init__(
        self,
        inner: Drafter,
        costs: CostTable,
        probe_every: int = 4,
        window: int = 6,
        fall_back_below: float = 0.6,
        estimate: AcceptanceEstimate | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.costs = costs
        self.probe_every = probe_every
        self.window = window
        self.fall_back_below = fall_back_below
        self._fresh_estimate = estimate or AcceptanceEstimate()
        self._self_limiting = getattr(inner, "confidence_stop", None) is not None
        self.prefill_state()

    def prefill_state(self) -> None:
        self.alpha = copy.copy(self._fresh_estimate)
        # (committed tokens, cost-table seconds) of the latest drafting iterations. One iteration
        # says little (a confident draft at the start of an answer is often wrong for 16 tokens),
        # so nothing is decided before the window is full.
        self._recent: deque[tuple[int, float]] = deque(maxlen=self.window)
        self._plain_streak = 0
        # Length for a self-stopping drafter: longer after a fully accepted draft, shorter after a
        # rejection (transformers' "heuristic" schedule). Verification is nearly flat in k once
        # weights are packed, so long runs of easy text are cheap to verify in one go.
        self._length = 8

    @property
    def gain(self) -> float | None:
        """Tokens per second of the recent drafting iterations over plain decoding's 1 / T(1)."""
        if len(self._recent) < self.window:
            return None
        tokens = sum(t for t, _ in self._recent)
        seconds = sum(s for _, s in self._recent)
        return tokens / seconds * self.costs.target_step_s

    def choose(self, cap: int) -> int:
        cap = min(cap, self.costs.max_draft)
        if cap <= 0:
            return 0
        if self._self_limiting:
            k = min(cap, self._length)
        else:
            k = self.costs.best_length(self.alpha.value, cap)
        gain = self.gain
        # Hysteresis: one weak stretch is noise; only a clear loss switches drafting off.
        if k > 0 and (gain is None or gain >= self.fall_back_below):
            self._plain_streak = 0
            return k
        self._plain_streak += 1
        if self._plain_streak >= self.probe_every:  # a probe drafts as usual; its result enters the window
            self._plain_streak = 0
            return max(k, 1)
        return 0

    def prefill(self, context: list[int]) -> None:
        self.prefill_state()
        self.inner.prefill(context)

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> Draft:
        length = self.choose(k)
        draft = self.inner.propose(context, length, generator)
        return replace(draft, asked=length)

    def feedback(self, n_accepted: int, n_drafted: int) -> None:
        if n_drafted:
            self.alpha.update(n_accepted, n_drafted)
            verify_s = self.costs.verify_s[min(n_drafted, self.costs.max_draft)]
            self._recent.append((n_accepted + 1, n_drafted * self.costs.draft_step_s + verify_s))
            full = n_accepted == n_drafted
            self._length = min(self.costs.max_draft, self._length + 2) if full else max(2, self._length - 1)
        self.inner.feedback(n_accepted, n_drafted)

    def synchronize(self) -> None:
        self.inner.synchronize()
