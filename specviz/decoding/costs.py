"""What decoding costs on this machine: the target's T(k), the draft's step, and what they predict.

T(k) is the target's time to score k new tokens in one forward over a warm KV cache. Leviathan et
al. (2023) take T(k) = T(1); on a CPU it grows with k, so everything that chooses or predicts a
draft length (automatic γ, the bench's predicted speedups) reads it from one measured table.

- :class:`CostTable`: T(1..n) and the draft step, with the one interpolation between measured k.
- The cost model: :meth:`CostTable.tokens_per_s` and :meth:`CostTable.best_length` for a running
  acceptance rate; :func:`predicted_speedup` and :func:`predicted_run_s` for what a run measured.
  (Both are torch-free arithmetic defined in :mod:`specviz.decoding.theory`, so the UI can draw
  them; this module re-exports them.)
- Measurement (needs only the :class:`~specviz.decoding.backends.CausalLM` protocol):
  :func:`measure_costs` times every k (what the bench reports), :func:`measure_pacing_costs` a few
  k quickly and robustly (what automatic γ keeps on disk, see ``session/cost_cache.py``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch

from specviz.decoding.backends import CausalLM
from specviz.decoding.theory import CostTable, predicted_run_s, predicted_speedup

__all__ = [
    "CostTable",
    "measure_costs",
    "measure_pacing_costs",
    "predicted_run_s",
    "predicted_speedup",
    "probe_tokens",
    "time_draft_step",
    "time_verify",
]


def _time_forward(backend: CausalLM, new: torch.Tensor) -> float:
    backend.synchronize()
    start = time.perf_counter()
    backend.forward(new, keep=new.shape[0])
    backend.synchronize()
    return time.perf_counter() - start


def time_verify(
    backend: CausalLM,
    context: torch.Tensor,  # [context_tokens]
    new: torch.Tensor,  # [max(ks)]
    ks: Sequence[int],
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
    context: torch.Tensor,  # [context_tokens]
    new: torch.Tensor,  # [>= 1]
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
    ks: Sequence[int] | None = None,
) -> CostTable:
    """T(k) for every k up to ``max_k``, median of ``repeats``: the raw figures the bench reports.

    ``ks``: measure only these k (1 and ``max_k`` among them) and interpolate the rest, linearly
    (:meth:`CostTable.from_measured`). Token trees score up to 64 rows; timing every k to 64 would
    cost the bench minutes of a 1.5B target on a CPU, and T(k) is close to linear between k.
    """
    measured = sorted(set(ks)) if ks is not None else list(range(1, max_k + 1))
    if measured[0] != 1 or measured[-1] != max_k:
        raise ValueError(f"measure T(1) and T(max_k={max_k}) at least, got ks={measured}")
    context, new = probe_tokens(target, context_tokens, max_k, seed)
    verify = time_verify(target, context, new, measured, repeats)
    draft_s = time_draft_step(draft, context, new, repeats * 2)
    return CostTable.from_measured(draft_s, verify, max_k, context_tokens)


# T(k) is close to linear between these on the machines measured so far; the rest is interpolated.
_PACING_KS = (1, 2, 3, 4, 6, 8, 12, 17)
_PACING_CONTEXT_TOKENS = 96
_PACING_REPEATS = 3


def measure_pacing_costs(target: CausalLM, draft: CausalLM | None, max_k: int, seed: int = 0) -> CostTable:
    """T(1..max_k) from a few measured k, quick enough to run before a user's first automatic-γ run.

    The fastest repeat, not the median: what slows a repeat down is other load on the machine, and
    this table is kept. Scoring more tokens never costs less, so a k that still measured above a
    larger one was disturbed: it takes the larger k's time.
    """
    context, new = probe_tokens(target, _PACING_CONTEXT_TOKENS, max_k, seed)
    ks = sorted({k for k in _PACING_KS if k < max_k} | {max_k})
    verify = time_verify(target, context, new, ks, _PACING_REPEATS, reduce=min)
    for small, large in zip(ks[-2::-1], ks[:0:-1], strict=True):
        verify[small] = min(verify[small], verify[large])
    draft_s = time_draft_step(draft, context, new, _PACING_REPEATS * 2, reduce=min)
    return CostTable.from_measured(draft_s, verify, max_k, _PACING_CONTEXT_TOKENS)
