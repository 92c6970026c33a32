"""The verification math of speculative sampling, model-free (Leviathan et al. 2023, Chen et al. 2023).

Given ``k`` drafted tokens, the distributions they were drawn from (``draft_probs``) and the
target's distributions at the same positions plus one more (``target_probs``):

- drafted token ``i`` is **accepted** with the rule's acceptance probability; for the lossless
  rule when ``u_i < min(1, target_probs[i, x_i] / draft_probs[i, x_i])`` with ``u_i ~ U(0, 1)``;
  in greedy mode (every rule) when ``x_i == argmax target_probs[i]``;
- the first failure is **rejected**; the target then draws a **resampled** token from the rule's
  correction distribution, for the lossless rule the residual
  ``norm(max(0, target_probs[i] - draft_probs[i]))`` (greedy: the argmax of ``target_probs[i]``);
- if all ``k`` are accepted, the target draws a **bonus** token from ``target_probs[k]``.

That loop is written once, in :meth:`AcceptanceRule.__call__`; a rule supplies only its acceptance
probability and its correction. :data:`verify` is the lossless rule, the decoder's default: each
emitted token is then distributed exactly as ``target_probs`` (see tests/decoding/test_acceptance.py).
The lossy rules kept for comparison live in :mod:`specviz.decoding.lossy`.
A deterministic drafter (n-gram) passes ``draft_probs=None``: a one-hot distribution on its token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch

from specviz.decoding.sampling import sample


@dataclass(frozen=True)
class VerifyResult:
    n_accepted: int
    next_token: int  # the resampled or bonus token
    next_kind: str  # "resampled" or "bonus"
    next_dist: torch.Tensor  # [vocab] distribution next_token was drawn from
    ratios: list[float]  # target_prob / draft_prob per drafted token (greedy: 1.0 or 0.0)
    uniforms: list[float | None]  # u per verified drafted token; None when greedy, not reached or not drawn
    draft_token_probs: list[float]
    target_token_probs: list[float]


class Verifier(Protocol):
    """What the decoder calls to verify a draft; every :class:`AcceptanceRule` is one."""

    def __call__(
        self,
        draft_tokens: torch.Tensor,  # [k] int64
        draft_probs: torch.Tensor | None,  # [k, vocab]; None for a deterministic drafter
        target_probs: torch.Tensor,  # [k + 1, vocab]
        generator: torch.Generator,
        greedy: bool,
    ) -> VerifyResult: ...


def one_hot_draft(tokens: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The draft distribution of a deterministic drafter: ``[k]`` -> ``[k, vocab]``."""
    probs = torch.zeros(tokens.shape[0], vocab_size, device=tokens.device)
    probs.scatter_(-1, tokens.unsqueeze(-1), 1.0)
    return probs


def residual(target_probs: torch.Tensor, draft_probs: torch.Tensor) -> torch.Tensor:
    """``norm(max(0, target_probs - draft_probs))`` over the last dimension.

    Rejection can only happen where ``target_probs[x] < draft_probs[x]`` for some x, which makes
    the residual's mass positive; when the two distributions are equal up to rounding the mass
    is ~0 and any choice is equally (im)probable, so fall back to the target itself.
    """
    diff = (target_probs - draft_probs).clamp_min(0.0)
    mass = diff.sum(dim=-1, keepdim=True)
    return torch.where(mass > 1e-12, diff / mass.clamp_min(1e-30), target_probs)


class AcceptanceRule:
    """An acceptance rule: when a drafted token is accepted, and what is emitted after a rejection.

    A rule is a :class:`Verifier` (calling it runs the verify loop with it) and, through the same
    two methods, is described exactly enough for :func:`specviz.decoding.lossy.exact_output_distribution`
    to enumerate the loop. Greedy decoding never consults the rule: acceptance is argmax matching,
    which every rule here reduces to on one-hot target rows.
    """

    lossy: ClassVar[bool]  # True: the output no longer follows the target's distribution
    # Whether acceptance compares a uniform with the acceptance probability. A rule that draws
    # none cuts deterministically: its acceptance probability is always 0 or 1.
    draws_uniforms: ClassVar[bool]

    def acceptance_probabilities(
        self, draft_token_probs: list[float], target_token_probs: list[float], target_probs: torch.Tensor
    ) -> list[float]:
        """P(accept) of each of k drafted tokens, from the draft's and the target's probability of
        it and the target's rows at the drafted positions, ``target_probs`` ``[k, vocab]`` (a rule
        may read the whole row). One call per verify: it runs every decoding iteration."""
        raise NotImplementedError

    def describe(self) -> str:
        """The rule's name and parameters, as traces record it (``RunStarted.rule``)."""
        raise NotImplementedError

    def correction(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        """Distribution ``[vocab]`` of the token emitted after a rejection at a position whose
        draft and target rows are ``draft_probs`` and ``target_probs`` (both ``[vocab]``)."""
        raise NotImplementedError

    def acceptance_row(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        """P(accept) ``[vocab]`` of *every* vocabulary entry, had the draft proposed it, at a position
        whose draft and target rows are ``draft_probs`` and ``target_probs`` (both ``[vocab]``).

        The vectorised twin of :meth:`acceptance_probabilities` (which sees only the k drafted
        tokens, and stays the one the verify loop calls); the tests check that the two agree.
        """
        raise NotImplementedError

    def step_distribution(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        """Exact distribution ``[vocab]`` of the first token a verify step with k >= 1 emits.

        ``P(y) = draft_probs[y]·accept(y) + P(reject)·correction(y)``: the draft proposes y and it is
        kept, or the first draft is refused and the correction emits y. Whatever k is, the first
        emitted token is one of those two, so this is the rule's one-step output distribution.
        """
        kept = self.kept(draft_probs, target_probs)  # [vocab]
        return kept + (1.0 - kept.sum()) * self.correction(draft_probs, target_probs)

    def kept(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        """P(the draft proposes y and y is accepted) ``[vocab]``: ``draft_probs · acceptance_row``."""
        return draft_probs * self.acceptance_row(draft_probs, target_probs)

    def step_tv(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> float:
        """Exact total-variation distance between :meth:`step_distribution` and ``target_probs``.

        What the rule costs at one position: ~0 for rejection sampling (float32 rounding: ~3e-6 on
        a 152k vocabulary, the row's own sum being 1 only to ~1e-6), > 0 for a lossy rule. A
        handful of [vocab] tensor ops, once per decoding iteration. Measured on a 151,936-entry row
        (Qwen2.5's vocabulary), CPU time on one torch thread of this project's shared 2-core CPU,
        2026-12-02: rejection sampling 0.7-1.3 ms (mostly the residual: 0.4 ms, its torch.where 0.2), the
        threshold rule 0.35-0.6 ms, typical acceptance 0.5-0.9 ms (its entropy is most of it).
        """
        return 0.5 * float((self.step_distribution(draft_probs, target_probs) - target_probs).abs().sum())

    def __call__(
        self,
        draft_tokens: torch.Tensor,  # [k] int64
        draft_probs: torch.Tensor | None,  # [k, vocab]; None for a deterministic drafter
        target_probs: torch.Tensor,  # [k + 1, vocab]
        generator: torch.Generator,
        greedy: bool,
    ) -> VerifyResult:
        """The verify loop: walk the drafted tokens to the first rejection, then emit one more token."""
        k = int(draft_tokens.shape[0])
        if target_probs.shape[0] != k + 1:
            raise ValueError(f"target_probs must have k+1={k + 1} rows, got {target_probs.shape[0]}")
        if draft_probs is None:
            draft_probs = one_hot_draft(draft_tokens, target_probs.shape[-1])

        idx = torch.arange(k, device=draft_tokens.device)
        # Read out once as Python floats: the loop below runs per drafted token, every iteration.
        draft_token_probs = draft_probs[idx, draft_tokens].tolist()  # q(x_i)
        target_token_probs = target_probs[idx, draft_tokens].tolist()  # p(x_i)

        ratios: list[float] = []
        uniforms: list[float | None] = []
        n_accepted = k
        if greedy:
            argmax = target_probs[:k].argmax(dim=-1).tolist()
            for i, token in enumerate(draft_tokens.tolist()):
                ok = token == argmax[i]
                ratios.append(1.0 if ok else 0.0)
                uniforms.append(None)
                if not ok:
                    n_accepted = i
                    break
            dist = target_probs[n_accepted]  # [vocab]
            token = int(dist.argmax())
        else:
            # One uniform per drafted token, drawn up front so the random stream does not depend on
            # where the first rejection falls.
            drawn: list[float | None] = (
                torch.rand(k, generator=generator, device=generator.device).tolist()
                if self.draws_uniforms
                else [None] * k
            )
            accept = self.acceptance_probabilities(draft_token_probs, target_token_probs, target_probs[:k])
            for i in range(k):
                q, p = draft_token_probs[i], target_token_probs[i]
                ratios.append(p / q if q > 0 else float("inf"))
                u = drawn[i]
                uniforms.append(u)
                if not (accept[i] >= 1.0 if u is None else u < accept[i]):
                    n_accepted = i
                    break
            if n_accepted < k:
                dist = self.correction(draft_probs[n_accepted], target_probs[n_accepted])
            else:
                dist = target_probs[k]
            token = int(sample(dist.unsqueeze(0), generator)[0])
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


@dataclass(frozen=True)
class LosslessRule(AcceptanceRule):
    """Rejection sampling: accept with ``min(1, target_prob / draft_prob)``, correct from the residual.

    The one rule that keeps the target's output distribution, for any draft distribution.
    """

    lossy: ClassVar[bool] = False
    draws_uniforms: ClassVar[bool] = True

    def describe(self) -> str:
        return "rejection sampling"

    def acceptance_probabilities(
        self, draft_token_probs: list[float], target_token_probs: list[float], target_probs: torch.Tensor
    ) -> list[float]:
        # min(1, p / q) without dividing where the answer is 1 (which covers q = 0)
        return [1.0 if p >= q else p / q for q, p in zip(draft_token_probs, target_token_probs, strict=True)]

    def correction(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        return residual(target_probs, draft_probs)

    def acceptance_row(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        # min(1, p / q); where q = 0 the division gives inf or nan, but p >= q picks 1 there.
        return torch.where(target_probs >= draft_probs, 1.0, target_probs / draft_probs)

    def kept(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        # q·min(1, p/q) = min(p, q): one op where acceptance_row's torch.where costs ~1 ms at 152k.
        return torch.minimum(draft_probs, target_probs)


verify: AcceptanceRule = LosslessRule()
"""The lossless verifier, the decoder's default (see :class:`LosslessRule`)."""


def output_distribution(target_probs: torch.Tensor, draft_probs: torch.Tensor) -> torch.Tensor:
    """Exact distribution ``[vocab]`` of the first token one verify step emits (k = 1).

    P(y) = q(y)·min(1, p(y)/q(y)) + P(reject)·residual(y); it equals ``target_probs`` — the identity
    that makes speculative sampling lossless, checked in the tests rather than assumed. The lossless
    rule's :meth:`AcceptanceRule.step_distribution`.
    """
    return verify.step_distribution(draft_probs, target_probs)
