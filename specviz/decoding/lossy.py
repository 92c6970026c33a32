"""Lossy acceptance rules, kept only to *measure* what a shortcut costs against the lossless rule.

Each rule here is a drop-in :class:`~specviz.decoding.decoder.Verifier` (same signature as
:func:`specviz.decoding.acceptance.verify`) for ``DecodeConfig(verifier=..., lossy=True)``. None of
them preserves the target's output distribution; a run that uses one must say so
(``RunStarted.lossy``).

- :func:`threshold_verifier` (the lab notebook's rule): accept a drafted token when the target gives
  it more than ``tau``.
- :func:`typical_verifier` (typical acceptance, Medusa, Cai et al. 2024): accept when the target
  gives it more than ``min(epsilon, delta * exp(-H(target_probs)))``.

To say *how* lossy a rule is, :func:`exact_output_distribution` enumerates every branch of the
speculative loop on exact toy models (:class:`~specviz.decoding.backends.TableLM`) and returns the
exact distribution of the generated sequence; :func:`total_variation` compares it with
:func:`exact_target_distribution`. For real models, :func:`estimate_tv_from_samples` gives the
empirical TV of sampled outputs (with :func:`tv_permutation_baseline` as the value "no difference"
would produce at that sample size).

Why the exact computation has to enumerate the loop rather than multiply per-token distributions:
with a lossy rule, the distribution of the *i*-th committed token depends on where it falls in the
iteration (drafted and accepted, correction, bonus), which depends on gamma, on the remaining
budget (the loop drafts fewer tokens near the end) and on the draft distribution.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch

from specviz.decoding.acceptance import VerifyResult, one_hot_draft, residual, verify
from specviz.decoding.backends import TableLM
from specviz.decoding.sampling import SamplingConfig, sample, to_probs

SequenceDist = dict[tuple[int, ...], float]


class ExactRule(Protocol):
    """An acceptance rule described well enough to compute its output distribution exactly.

    Rows are ``[vocab]`` float64 distributions at one drafted position.
    """

    lossy: ClassVar[bool]

    def acceptance_probability(
        self, draft_probs: torch.Tensor, target_probs: torch.Tensor, token: int
    ) -> float: ...

    def correction(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        """Distribution ``[vocab]`` of the token emitted after a rejection at this position."""
        ...


@dataclass(frozen=True)
class LosslessRule:
    """The standard rule (:func:`acceptance.verify`), described for exact enumeration."""

    lossy: ClassVar[bool] = False

    def acceptance_probability(
        self, draft_probs: torch.Tensor, target_probs: torch.Tensor, token: int
    ) -> float:
        q, p = float(draft_probs[token]), float(target_probs[token])
        return 1.0 if q <= 0 else min(1.0, p / q)

    def correction(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        return residual(target_probs, draft_probs)

    def __call__(
        self,
        draft_tokens: torch.Tensor,  # [k]
        draft_probs: torch.Tensor | None,  # [k, vocab]
        target_probs: torch.Tensor,  # [k + 1, vocab]
        generator: torch.Generator,
        greedy: bool,
    ) -> VerifyResult:
        return verify(draft_tokens, draft_probs, target_probs, generator, greedy)


def _cut_verify(
    thresholds: list[float],
    draft_tokens: torch.Tensor,  # [k]
    draft_probs: torch.Tensor | None,  # [k, vocab]
    target_probs: torch.Tensor,  # [k + 1, vocab]
    generator: torch.Generator,
    greedy: bool,
) -> VerifyResult:
    """Deterministic-cut verification shared by the lossy rules.

    Drafted token ``i`` is accepted iff ``target_probs[i, x_i] > thresholds[i]``. The first failure is
    replaced by a token drawn from ``target_probs[i]`` itself (not from the residual: that is what
    makes these rules lossy), and a full acceptance earns a bonus token from ``target_probs[k]``.
    Greedy mode emits the argmax instead of drawing, so it never touches ``generator``.
    """
    k = int(draft_tokens.shape[0])
    if target_probs.shape[0] != k + 1:
        raise ValueError(f"target_probs must have k+1={k + 1} rows, got {target_probs.shape[0]}")
    if draft_probs is None:
        draft_probs = one_hot_draft(draft_tokens, target_probs.shape[-1])
    idx = torch.arange(k, device=draft_tokens.device)
    draft_token_probs = draft_probs[idx, draft_tokens].tolist()
    target_token_probs = target_probs[idx, draft_tokens].tolist()

    ratios: list[float] = []
    uniforms: list[float | None] = []
    n_accepted = k
    for i in range(k):
        q, p = draft_token_probs[i], target_token_probs[i]
        ratios.append(p / q if q > 0 else float("inf"))
        uniforms.append(None)  # the rule draws no uniform: acceptance is a deterministic cut
        if not p > thresholds[i]:
            n_accepted = i
            break
    dist = target_probs[n_accepted]  # [vocab]
    token = int(dist.argmax()) if greedy else int(sample(dist.unsqueeze(0), generator)[0])
    return VerifyResult(
        n_accepted=n_accepted,
        next_token=token,
        next_kind="bonus" if n_accepted == k else "resampled",
        next_dist=dist,
        ratios=ratios,
        uniforms=uniforms,
        draft_token_probs=draft_token_probs,
        target_token_probs=target_token_probs,
    )


class _CutRule:
    """A lossy rule that accepts a drafted token iff the target gives it more than ``threshold(row)``."""

    lossy: ClassVar[bool] = True

    def threshold(self, target_probs: torch.Tensor) -> float:  # target_probs: [vocab]
        raise NotImplementedError

    def acceptance_probability(
        self, draft_probs: torch.Tensor, target_probs: torch.Tensor, token: int
    ) -> float:
        return 1.0 if float(target_probs[token]) > self.threshold(target_probs) else 0.0

    def correction(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        return target_probs

    def __call__(
        self,
        draft_tokens: torch.Tensor,  # [k]
        draft_probs: torch.Tensor | None,  # [k, vocab]
        target_probs: torch.Tensor,  # [k + 1, vocab]
        generator: torch.Generator,
        greedy: bool,
    ) -> VerifyResult:
        k = int(draft_tokens.shape[0])
        thresholds = [self.threshold(target_probs[i]) for i in range(k)]
        return _cut_verify(thresholds, draft_tokens, draft_probs, target_probs, generator, greedy)


@dataclass(frozen=True)
class ThresholdRule(_CutRule):
    """The lab notebook's rule, as the issue describes it (LOSSY).

    What the lab did, as reported to us (we have not seen the notebook itself): accept drafted token
    ``x`` iff ``target_probs[i, x] > tau``, ignoring the draft's probability entirely; on the first
    failure emit a token sampled from ``target_probs[i]``. What we chose where that description is
    silent: the correction is drawn from the *plain* target row (not the residual), the tokens after
    the failure are discarded as in the lossless rule, and a full acceptance earns a bonus token from
    ``target_probs[k]``. With greedy decoding (one-hot target rows) it coincides with greedy
    verification for any ``tau < 1``. With sampling it is lossy twice over: every token the target
    gives more than ``tau`` is emitted at the *draft's* rate, and the correction row still contains
    the tokens the draft had its chance to propose, so they are over-emitted too.
    """

    tau: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.tau < 1.0:
            raise ValueError(f"tau must be in [0, 1), got {self.tau}")

    def threshold(self, target_probs: torch.Tensor) -> float:
        return self.tau


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats over the last dimension, with ``0 log 0 = 0``: ``[..., vocab]`` -> ``[...]``."""
    logs = torch.where(probs > 0, probs.log(), torch.zeros_like(probs))
    return -(probs * logs).sum(dim=-1)


@dataclass(frozen=True)
class TypicalRule(_CutRule):
    """Typical acceptance (Medusa, Cai et al. 2024, section 2.3.1) (LOSSY).

    Accept drafted token ``x`` iff ``target_probs[i, x] > min(epsilon, delta * exp(-H(target_probs[i])))``
    where ``H`` is the entropy (nats) of the target row after temperature/top-k/top-p; on the first
    failure emit a token drawn from ``target_probs[i]``; bonus from ``target_probs[k]``. A flat target
    (high entropy) lowers the bar, a peaked one raises it to at most ``epsilon``. Medusa's defaults are
    ``epsilon = 0.09``, ``delta = 0.3``. Greedy decoding: the target rows are one-hot (H = 0), so it
    coincides with greedy verification.
    """

    epsilon: float
    delta: float

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon < 1.0:
            raise ValueError(f"epsilon must be in (0, 1), got {self.epsilon}")
        if self.delta <= 0.0:
            raise ValueError(f"delta must be > 0, got {self.delta}")

    def threshold(self, target_probs: torch.Tensor) -> float:
        return min(self.epsilon, self.delta * math.exp(-float(entropy(target_probs.double()))))


def threshold_verifier(tau: float) -> ThresholdRule:
    """The lab notebook's lossy rule as a Verifier (see :class:`ThresholdRule`)."""
    return ThresholdRule(tau)


def typical_verifier(epsilon: float, delta: float) -> TypicalRule:
    """Typical acceptance as a Verifier (see :class:`TypicalRule`)."""
    return TypicalRule(epsilon=epsilon, delta=delta)


def as_exact_rule(verifier: object) -> ExactRule:
    """The exact description of a verifier: :func:`acceptance.verify` or one of this module's rules."""
    if verifier is verify:
        return LosslessRule()
    if hasattr(verifier, "acceptance_probability") and hasattr(verifier, "correction"):
        return verifier  # type: ignore[return-value]
    raise TypeError(
        f"{verifier!r} has no exact description (acceptance_probability, correction): "
        "only acceptance.verify and the rules of specviz.decoding.lossy can be enumerated"
    )


def _row(model: TableLM, context: list[int], sampling: SamplingConfig) -> torch.Tensor:
    # float64 and renormalised, so the lossless identity holds to ~1e-15 and the comparison
    # measures the rule, not float32 rounding of the rows.
    probs = to_probs(model.logits_for(context).unsqueeze(0), sampling)[0].double()  # [vocab]
    return probs / probs.sum()


def exact_target_distribution(
    target: TableLM, prompt: list[int], n_tokens: int, sampling: SamplingConfig
) -> SequenceDist:
    """Exact probability of every length-``n_tokens`` continuation under plain decoding of ``target``."""
    dist: SequenceDist = {(): 1.0}
    for _ in range(n_tokens):
        nxt: SequenceDist = {}
        for seq, prob in dist.items():
            for tok, p in enumerate(_row(target, prompt + list(seq), sampling).tolist()):
                if p > 0:
                    nxt[(*seq, tok)] = prob * p
        dist = nxt
    return dist


def exact_output_distribution(
    target: TableLM,
    drafter_model: TableLM,
    prompt: list[int],
    n_tokens: int,
    sampling: SamplingConfig,
    gamma: int,
    verifier: object = verify,
) -> SequenceDist:
    """Exact distribution of the ``n_tokens`` generated by the speculative loop with ``verifier``.

    Models :func:`~specviz.decoding.decoder.speculative_decode` with a
    :class:`~specviz.decoding.drafters.ModelDrafter` on ``drafter_model`` (same vocabulary) and no
    EOS or stop strings: each iteration drafts ``k = min(gamma, n_tokens - generated - 1)`` tokens
    from the draft rows, verifies them with the rule, commits ``accepted + [correction or bonus]``.
    Every branch (drafted tokens, where the first rejection falls, correction token) is enumerated
    with its probability; the state after an iteration is the committed sequence alone, so results
    are memoised on it. Cost grows like ``vocab ** (gamma + 1)`` per state: keep vocab, gamma and
    ``n_tokens`` tiny (e.g. 4, 2, 3).

    Worked example: with ``verifier=acceptance.verify`` the result equals
    :func:`exact_target_distribution` (the losslessness theorem, checked in tests/test_lossy.py).
    """
    rule = as_exact_rule(verifier)
    if target.vocab_size != drafter_model.vocab_size:
        raise ValueError("the toy drafter must share the target's vocabulary")
    memo: dict[tuple[int, ...], SequenceDist] = {}

    def drafts(context: list[int], k: int) -> list[tuple[tuple[int, ...], float, list[torch.Tensor]]]:
        """Every k-token draft with its probability and the draft rows it was drawn from."""
        out: list[tuple[tuple[int, ...], float, list[torch.Tensor]]] = [((), 1.0, [])]
        for _ in range(k):
            grown = []
            for seq, prob, rows in out:
                row = _row(drafter_model, context + list(seq), sampling)  # [vocab]
                for tok, q in enumerate(row.tolist()):
                    if q > 0:
                        grown.append(((*seq, tok), prob * q, [*rows, row]))
            out = grown
        return out

    def rest(generated: tuple[int, ...]) -> SequenceDist:
        if len(generated) >= n_tokens:
            return {(): 1.0}
        if generated in memo:
            return memo[generated]
        k = max(0, min(gamma, n_tokens - len(generated) - 1))
        context = prompt + list(generated)
        result: defaultdict[tuple[int, ...], float] = defaultdict(float)
        for drafted, draft_prob, draft_rows in drafts(context, k):
            reach = draft_prob  # P(these drafts and the first i of them accepted)
            for i in range(k + 1):
                target_row = _row(target, context + list(drafted[:i]), sampling)  # [vocab]
                if i < k:
                    accept = rule.acceptance_probability(draft_rows[i], target_row, drafted[i])
                    stop, emit = reach * (1.0 - accept), rule.correction(draft_rows[i], target_row)
                else:
                    accept, stop, emit = 0.0, reach, target_row  # bonus after full acceptance
                if stop > 0:
                    for tok, prob in enumerate(emit.tolist()):
                        if prob <= 0:
                            continue
                        committed = (*drafted[:i], tok)
                        for tail, tail_prob in rest(generated + committed).items():
                            result[committed + tail] += stop * prob * tail_prob
                reach *= accept
                if reach <= 0:
                    break
        memo[generated] = dict(result)
        return memo[generated]

    return rest(())


def total_variation(dist_a: dict[Hashable, float], dist_b: dict[Hashable, float]) -> float:
    """``0.5 * sum_x |a(x) - b(x)|`` over the union of supports (missing keys count as 0)."""
    keys = set(dist_a) | set(dist_b)
    return 0.5 * sum(abs(dist_a.get(x, 0.0) - dist_b.get(x, 0.0)) for x in keys)


def _empirical(samples: Sequence[Sequence[int]], prefix_len: int | None) -> dict[Hashable, float]:
    keys = [tuple(s) if prefix_len is None else tuple(s[:prefix_len]) for s in samples]
    counts = Counter(keys)
    return {key: c / len(keys) for key, c in counts.items()}


def estimate_tv_from_samples(
    samples_a: Sequence[Sequence[int]],
    samples_b: Sequence[Sequence[int]],
    prefix_len: int | None = None,
) -> float:
    """Empirical TV between two sets of generated token sequences (for real models).

    Compares the empirical distributions of the whole sequences (``prefix_len=None``) or of their
    first ``prefix_len`` tokens. It is biased upwards: two samples of the *same* distribution give
    a positive TV, roughly ``sqrt(outcomes / samples)`` while outcomes are many, and ~1 when almost
    every sequence is unique (whole sequences from a real model). Use a short prefix (1 or 2 tokens)
    and read the result against :func:`tv_permutation_baseline` at the same sample sizes.
    """
    if not samples_a or not samples_b:
        raise ValueError("need at least one sample on each side")
    return total_variation(_empirical(samples_a, prefix_len), _empirical(samples_b, prefix_len))


def tv_permutation_baseline(
    samples_a: Sequence[Sequence[int]],
    samples_b: Sequence[Sequence[int]],
    generator: torch.Generator,
    prefix_len: int | None = None,
    rounds: int = 20,
) -> float:
    """Mean empirical TV after randomly relabelling the pooled samples into two groups of the same
    sizes: what :func:`estimate_tv_from_samples` reads when there is no difference at all."""
    pooled = list(samples_a) + list(samples_b)
    n_a = len(samples_a)
    total = 0.0
    for _ in range(rounds):
        order = torch.randperm(len(pooled), generator=generator).tolist()
        shuffled = [pooled[i] for i in order]
        total += estimate_tv_from_samples(shuffled[:n_a], shuffled[n_a:], prefix_len)
    return total / rounds
