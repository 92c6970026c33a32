"""The verification math of speculative sampling, model-free (Leviathan et al. 2023, Chen et al. 2023).

Given ``k`` drafted tokens, the distributions they were drawn from (``draft_probs``) and the
target's distributions at the same positions plus one more (``target_probs``):

- drafted token ``i`` is **accepted** when ``u_i < min(1, target_probs[i, x_i] / draft_probs[i, x_i])``
  with ``u_i ~ U(0, 1)``; in greedy mode when ``x_i == argmax target_probs[i]``;
- the first failure is **rejected**; the target then draws a **resampled** token from the
  residual ``norm(max(0, target_probs[i] - draft_probs[i]))`` (greedy: the argmax);
- if all ``k`` are accepted, the target draws a **bonus** token from ``target_probs[k]``.

Each emitted token is then distributed exactly as ``target_probs`` (see tests/test_acceptance.py).
A deterministic drafter (n-gram) passes ``draft_probs=None``: a one-hot distribution on its token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from specviz.decoding.sampling import sample


@dataclass(frozen=True)
class VerifyResult:
    n_accepted: int
    next_token: int  # the resampled or bonus token
    next_kind: str  # "resampled" or "bonus"
    next_dist: torch.Tensor  # [vocab] distribution next_token was drawn from
    ratios: list[float]  # target_prob / draft_prob per drafted token (greedy: 1.0 or 0.0)
    uniforms: list[float | None]  # u per verified drafted token; None when greedy or not reached
    draft_token_probs: list[float]
    target_token_probs: list[float]


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


def verify(
    draft_tokens: torch.Tensor,  # [k] int64
    draft_probs: torch.Tensor | None,  # [k, vocab]; None for a deterministic drafter
    target_probs: torch.Tensor,  # [k + 1, vocab]
    generator: torch.Generator,
    greedy: bool,
) -> VerifyResult:
    k = int(draft_tokens.shape[0])
    if target_probs.shape[0] != k + 1:
        raise ValueError(f"target_probs must have k+1={k + 1} rows, got {target_probs.shape[0]}")
    if draft_probs is None:
        draft_probs = one_hot_draft(draft_tokens, target_probs.shape[-1])

    idx = torch.arange(k, device=draft_tokens.device)
    draft_token_probs = draft_probs[idx, draft_tokens].tolist()  # q(x_i)
    target_token_probs = target_probs[idx, draft_tokens].tolist()  # p(x_i)

    ratios: list[float] = []
    uniforms: list[float | None] = []
    if greedy:
        argmax = target_probs[:k].argmax(dim=-1).tolist()
        n_accepted = k
        for i, token in enumerate(draft_tokens.tolist()):
            ok = token == argmax[i]
            ratios.append(1.0 if ok else 0.0)
            uniforms.append(None)
            if not ok:
                n_accepted = i
                break
        dist = target_probs[n_accepted]
        token = int(dist.argmax())
    else:
        # One uniform per drafted token, drawn up front so the random stream does not depend on
        # where the first rejection falls.
        u_all = torch.rand(k, generator=generator, device=generator.device).tolist()
        n_accepted = k
        for i in range(k):
            q, p = draft_token_probs[i], target_token_probs[i]
            ratio = p / q if q > 0 else float("inf")
            ratios.append(ratio)
            uniforms.append(u_all[i])
            if not u_all[i] < min(1.0, ratio):
                n_accepted = i
                break
        if n_accepted < k:
            dist = residual(target_probs[n_accepted], draft_probs[n_accepted])
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


def output_distribution(target_probs: torch.Tensor, draft_probs: torch.Tensor) -> torch.Tensor:
    """Exact distribution ``[vocab]`` of the first token one verify step emits (k = 1).

    P(y) = q(y)·min(1, p(y)/q(y)) + P(reject)·residual(y); it equals ``target_probs`` — the identity
    that makes speculative sampling lossless, checked in the tests rather than assumed.
    """
    accept = torch.minimum(draft_probs, target_probs)  # q·min(1, p/q) = min(p, q)
    p_reject = 1.0 - accept.sum()
    return accept + p_reject * residual(target_probs, draft_probs)
