"""Measured costs: the target's T(k) (score k tokens in one forward) and the draft's step time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from specviz.decoding.backends import CausalLM


@dataclass(frozen=True)
class Costs:
    verify_s: list[float]  # verify_s[k - 1] = T(k), target forward over k new tokens
    draft_step_s: float  # one draft forward of one token (0 when there is no draft model)
    context_tokens: int

    @property
    def target_step_s(self) -> float:
        return self.verify_s[0]

    def verify(self, k: float) -> float:
        """T(k) for fractional k (linear interpolation), used with mean drafts per iteration."""
        k = min(max(k, 1.0), float(len(self.verify_s)))
        lo = int(k)
        if lo >= len(self.verify_s):
            return self.verify_s[-1]
        frac = k - lo
        return self.verify_s[lo - 1] * (1 - frac) + self.verify_s[lo] * frac

    def to_json(self) -> dict[str, object]:
        return {
            "verify_s": self.verify_s,
            "draft_step_s": self.draft_step_s,
            "context_tokens": self.context_tokens,
        }


def _time_forward(backend: CausalLM, new: torch.Tensor) -> float:
    backend.synchronize()
    start = time.perf_counter()
    backend.forward(new, keep=new.shape[0])
    backend.synchronize()
    return time.perf_counter() - start


def time_verify(
    backend: CausalLM,
    context: torch.Tensor,
    new: torch.Tensor,
    ks: list[int],
    repeats: int,
    reduce: Callable[[list[float]], float] = statistics.median,
) -> dict[int, float]:
    """Seconds (median of repeats unless ``reduce`` says otherwise) for ``backend`` to score k new tokens after ``context``, for each k in ks.

    The context is prefilled once and the cache cropped back after every timed forward, which is
    exactly what the decoder does after a verify, so no prefill lands in the timings. The k values
    are interleaved across repeats so that drift (heat, other load) spreads over all of them.
    """
    backend.reset()
    backend.forward(context, keep=1)
    base = backend.length
    backend.forward(new[:1], keep=1)  # warm-up
    backend.truncate(base)
    times: dict[int, list[float]] = {k: [] for k in ks}
    for _ in range(repeats):
        for k in ks:
            times[k].append(_time_forward(backend, new[:k]))
            backend.truncate(base)
    backend.reset()
    return {k: reduce(v) for k, v in times.items()}


def probe_tokens(
    target: CausalLM, context_tokens: int, max_k: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ordinary token ids: a context ``[context_tokens]`` and tokens to score ``[max_k]``."""
    gen = torch.Generator().manual_seed(seed)
    vocab = min(target.vocab_size, 30000)  # the ids only need to be valid
    low = 100 if vocab > 200 else 0  # skip the special tokens at the start of real vocabularies
    context = torch.randint(low, vocab, (context_tokens,), generator=gen).to(target.device)
    new = torch.randint(low, vocab, (max_k,), generator=gen).to(target.device)
    return context, new


def time_draft_step(
    draft: CausalLM | None,
    context: torch.Tensor,
    new: torch.Tensor,
    repeats: int,
    reduce: Callable[[list[float]], float] = statistics.median,
) -> float:
    """Seconds of one draft forward of one token after ``context`` (0 without a draft model)."""
    if draft is None:
        return 0.0
    return time_verify(draft, context.to(draft.device), new.to(draft.device), [1], repeats, reduce)[1]


def measure_costs(
    target: CausalLM,
    draft: CausalLM | None,
    max_k: int = 16,
    context_tokens: int = 128,
    repeats: int = 3,
    seed: int = 0,
) -> Costs:
    context, new = probe_tokens(target, context_tokens, max_k, seed)
    verify = time_verify(target, context, new, list(range(1, max_k + 1)), repeats)
    draft_s = time_draft_step(draft, context, new, repeats * 2)
    return Costs(
        verify_s=[verify[k] for k in range(1, max_k + 1)], draft_step_s=draft_s, context_tokens=context_tokens
    )


def predicted_speedup(
    costs: Costs, drafted_per_iteration: float, tokens_per_iteration: float, uses_draft: bool
) -> float:
    """Speedup over plain decoding predicted from measured acceptance and measured costs.

    An iteration costs one draft step per drafted token plus the target scoring the drafted tokens
    and the last committed one, T(d + 1); it commits ``tokens_per_iteration`` tokens, where plain
    decoding pays T(1) per token. (Leviathan et al. assume T(d + 1) = T(1); measured here it is not.)
    """
    draft_s = costs.draft_step_s * drafted_per_iteration if uses_draft else 0.0
    iteration_s = draft_s + costs.verify(drafted_per_iteration + 1)
    return tokens_per_iteration * costs.target_step_s / iteration_s


def predicted_run_s(
    costs: Costs, new_tokens: int, iterations: int, drafted: int, uses_draft: bool, prefill_s: float
) -> float:
    """Seconds a whole run should take by the cost model: its prefill, then per iteration the draft
    steps and the target scoring the drafts plus one token, T(drafted + 1).

    The prefill matters: a 48-token run of a 250-token prompt spends seconds on it, the same for
    every method, which caps the speedup well below the steady-state figure above.
    """
    if iterations <= 0:
        return prefill_s
    draft_s = costs.draft_step_s * drafted if uses_draft else 0.0
    return prefill_s + draft_s + iterations * costs.verify(drafted / iterations + 1)
