"""What decoding costs on this machine: the target's T(k), the draft's step, and what they predict.

T(k) is the target's time to score k new tokens in one forward over a warm KV cache. Leviathan et
al. (2023) take T(k) = T(1); on a CPU it grows with k, so everything that chooses or predicts a
draft length (automatic γ, the bench's predicted speedups) reads it from one measured table.

- :class:`CostTable`: T(1..n) and the draft step, with the one interpolation between measured k.
- The cost model: :meth:`CostTable.tokens_per_s` and :meth:`CostTable.best_length` for a running
  acceptance rate; :func:`predicted_speedup` and :func:`predicted_run_s` for what a run measured.
- Measurement (needs only the :class:`~specviz.decoding.backends.CausalLM` protocol):
  :func:`measure_costs` times every k (what the bench reports), :func:`measure_pacing_costs` a few
  k quickly and robustly (what automatic γ keeps on disk, see ``session/cost_cache.py``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

import torch

from specviz.decoding.backends import CausalLM
from specviz.decoding.theory import expected_tokens


def _piecewise_linear(points: Sequence[tuple[float, float]], x: float) -> float:
    """y at ``x`` on the polyline through ``points`` (sorted by x), flat beyond both ends.

    The one interpolation of T(k): between measured k when a table is filled in, and at a
    fractional k (a mean number of drafts per iteration) when a run is predicted.
    """
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in pairwise(points):
        if x <= x1:
            frac = (x - x0) / (x1 - x0)
            return y0 * (1 - frac) + y1 * frac
    return points[-1][1]


@dataclass(frozen=True)
class CostTable:
    """Measured seconds: one draft step, and the target scoring k tokens in one forward."""

    draft_step_s: float  # one draft forward of one token (0 when drafting is a lookup)
    verify_s: tuple[float, ...]  # verify_s[k - 1] = T(k); needs at least T(1)
    context_tokens: int | None = None  # how much context the forwards were timed after, if known

    def __post_init__(self) -> None:
        if not self.verify_s or min(self.verify_s) <= 0 or self.draft_step_s < 0:
            raise ValueError("a cost table needs T(1) > 0 and a non-negative draft step")

    @classmethod
    def from_measured(
        cls,
        draft_step_s: float,
        measured: Mapping[int, float],
        max_k: int,
        context_tokens: int | None = None,
    ) -> CostTable:
        """A full T(1..max_k) table from T measured at some k: linear in between, flat beyond the
        last measured k (so measure max_k too). T(1) must be measured: nothing extrapolates below it."""
        if 1 not in measured:
            raise ValueError("T(1) must be measured")
        points = sorted(measured.items())
        verify_s = tuple(_piecewise_linear(points, k) for k in range(1, max_k + 1))
        return cls(draft_step_s, verify_s, context_tokens)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CostTable:
        context = data.get("context_tokens")
        return cls(
            float(data["draft_step_s"]),
            tuple(float(t) for t in data["verify_s"]),
            None if context is None else int(context),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "verify_s": list(self.verify_s),
            "draft_step_s": self.draft_step_s,
            "context_tokens": self.context_tokens,
        }

    @property
    def target_step_s(self) -> float:
        """T(1): what plain decoding pays per token."""
        return self.verify_s[0]

    @property
    def max_draft(self) -> int:
        """The longest draft the table can price: drafting k tokens verifies k + 1."""
        return len(self.verify_s) - 1

    def up_to(self, max_k: int) -> CostTable:
        """The same table cut to T(1..max_k)."""
        return replace(self, verify_s=self.verify_s[:max_k])

    def without_draft_cost(self) -> CostTable:
        """The table for a lookup drafter: a search in a token list costs nothing next to a forward."""
        return replace(self, draft_step_s=0.0)

    def verify_time(self, k: float) -> float:
        """T(k) for a fractional k (a mean over iterations), clamped to the table."""
        return _piecewise_linear(list(enumerate(self.verify_s, start=1)), k)

    def tokens_per_s(self, alpha: float, k: int) -> float:
        """Expected committed tokens per second when drafting k tokens per iteration at acceptance α.

        Leviathan et al.'s eq. 1 for the tokens an iteration commits, over what the iteration costs
        here: k draft steps plus T(k + 1), measured rather than assumed equal to T(1).
        """
        iteration_s = k * self.draft_step_s + self.verify_s[k]
        return expected_tokens(alpha, k) / iteration_s

    def best_length(self, alpha: float, cap: int | None = None) -> int:
        """The k in 0..cap (and within the table) with the most expected tokens per second;
        0 means plain decoding pays best."""
        top = self.max_draft if cap is None else max(0, min(cap, self.max_draft))
        return max(range(top + 1), key=lambda k: self.tokens_per_s(alpha, k))


def predicted_speedup(
    costs: CostTable, drafted_per_iteration: float, tokens_per_iteration: float, uses_draft: bool
) -> float:
    """Speedup over plain decoding predicted from measured acceptance and measured costs.

    An iteration costs one draft step per drafted token plus the target scoring the drafted tokens
    and the last committed one, T(d + 1); it commits ``tokens_per_iteration`` tokens, where plain
    decoding pays T(1) per token. (Leviathan et al. assume T(d + 1) = T(1); measured here it is not.)
    A lookup drafter (``uses_draft=False``) drafts for free.
    """
    table = costs if uses_draft else costs.without_draft_cost()
    iteration_s = table.draft_step_s * drafted_per_iteration + table.verify_time(drafted_per_iteration + 1)
    return tokens_per_iteration * table.target_step_s / iteration_s


def predicted_run_s(
    costs: CostTable, new_tokens: int, iterations: int, drafted: int, uses_draft: bool, prefill_s: float
) -> float:
    """Seconds a whole run should take by the cost model: its prefill, then per iteration the draft
    steps and the target scoring the drafts plus one token, T(drafted + 1).

    The prefill matters: a 48-token run of a 250-token prompt spends seconds on it, the same for
    every method, which caps the speedup well below the steady-state figure above.
    """
    if iterations <= 0:
        return prefill_s
    table = costs if uses_draft else costs.without_draft_cost()
    return prefill_s + table.draft_step_s * drafted + iterations * table.verify_time(drafted / iterations + 1)


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
) -> CostTable:
    """T(k) for every k up to ``max_k``, median of ``repeats``: the raw figures the bench reports."""
    context, new = probe_tokens(target, context_tokens, max_k, seed)
    verify = time_verify(target, context, new, list(range(1, max_k + 1)), repeats)
    draft_s = time_draft_step(draft, context, new, repeats * 2)
    return CostTable(draft_s, tuple(verify[k] for k in range(1, max_k + 1)), context_tokens)


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
