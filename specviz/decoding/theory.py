"""Expected gains of speculative decoding (Leviathan, Kalman & Matias, ICML 2023), and the same
arithmetic on measured costs.

alpha: expected acceptance probability of a drafted token, ``E[sum_x min(target_probs, draft_probs)]``.
gamma: drafted tokens per iteration. c: cost of one draft step / cost of one target step.

A formula sometimes quoted for it, ``gamma / (1 + (1 - alpha) * gamma)``, is not the paper's; the tests
pin the paper's own worked numbers.

The paper assumes that verifying gamma + 1 tokens costs one target step. On a CPU it does not: the
target's time to score k tokens in one forward, T(k), grows with k. :class:`CostTable` holds T(k) and
the draft step as measured, and its arithmetic (the cost model) replaces T(1) by T(gamma + 1) in the
iteration's cost. It lives here, with no torch, so that the UI can draw it; measuring a table needs
the models and lives in :mod:`specviz.decoding.costs`, which re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any


def expected_tokens(alpha: float, gamma: int) -> float:
    """Expected tokens per iteration: ``(1 - alpha^(gamma+1)) / (1 - alpha)`` (paper eq. 1).

    >>> round(expected_tokens(0.8, 4), 4)
    3.3616
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if alpha == 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def speedup(alpha: float, gamma: int, c: float) -> float:
    """Walltime speedup over plain decoding: ``(1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1))``.

    Assumes verifying gamma+1 tokens costs one target step (the paper's assumption).

    >>> round(speedup(0.75, 7, 0.02), 2)
    3.16
    """
    return expected_tokens(alpha, gamma) / (gamma * c + 1.0)


def best_gamma(alpha: float, c: float, max_gamma: int = 16) -> int:
    """The gamma in 1..max_gamma with the highest :func:`speedup`."""
    return max(range(1, max_gamma + 1), key=lambda g: speedup(alpha, g, c))


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

    @property
    def cost_ratio(self) -> float:
        """Leviathan et al.'s c = draft step / target step, on this table's numbers."""
        return self.draft_step_s / self.target_step_s

    def up_to(self, max_k: int) -> CostTable:
        """The same table cut to T(1..max_k)."""
        return replace(self, verify_s=self.verify_s[:max_k])

    def without_draft_cost(self) -> CostTable:
        """The table for a lookup drafter: a search in a token list costs nothing next to a forward."""
        return replace(self, draft_step_s=0.0)

    def verify_time(self, k: float) -> float:
        """T(k) for a fractional k (a mean over iterations), clamped to the table."""
        return _piecewise_linear(list(enumerate(self.verify_s, start=1)), k)

    def verify_ratio(self, k: int) -> float:
        """T(k) / T(1): what scoring k tokens in one forward costs in plain steps (Leviathan: 1)."""
        return self.verify_s[k - 1] / self.target_step_s

    def tokens_per_s(self, alpha: float, k: int) -> float:
        """Expected committed tokens per second when drafting k tokens per iteration at acceptance α.

        Leviathan et al.'s eq. 1 for the tokens an iteration commits, over what the iteration costs
        here: k draft steps plus T(k + 1), measured rather than assumed equal to T(1).
        """
        iteration_s = k * self.draft_step_s + self.verify_s[k]
        return expected_tokens(alpha, k) / iteration_s

    def speedup(self, alpha: float, k: int) -> float:
        """Expected speedup over plain decoding drafting k tokens at acceptance α, by this table:
        ``expected_tokens(α, k) × T(1) / (k × draft step + T(k + 1))``. It equals Leviathan et al.'s
        :func:`speedup` at ``c = draft step / T(1)`` when T(k + 1) = T(1)."""
        return self.tokens_per_s(alpha, k) * self.target_step_s

    def speedup_curve(self, alpha: float, max_gamma: int) -> list[float]:
        """:meth:`speedup` for γ = 1 .. ``max_gamma``, as far as the table prices (no extrapolation)."""
        return [self.speedup(alpha, g) for g in range(1, min(max_gamma, self.max_draft) + 1)]

    def best_length(self, alpha: float, cap: int | None = None) -> int:
        """The k in 0..cap (and within the table) with the most expected tokens per second;
        0 means plain decoding pays best."""
        top = self.max_draft if cap is None else max(0, min(cap, self.max_draft))
        return max(range(top + 1), key=lambda k: self.tokens_per_s(alpha, k))


def predicted_speedup(
    costs: CostTable,
    drafted_per_iteration: float,
    tokens_per_iteration: float,
    uses_draft: bool,
    draft_forwards_per_iteration: float | None = None,
) -> float:
    """Speedup over plain decoding predicted from measured acceptance and measured costs.

    An iteration costs one draft step per draft forward plus the target scoring the drafted tokens
    and the last committed one, T(d + 1); it commits ``tokens_per_iteration`` tokens, where plain
    decoding pays T(1) per token. (Leviathan et al. assume T(d + 1) = T(1); measured here it is not.)
    A lookup drafter (``uses_draft=False``) drafts for free.

    A chain spends one draft forward per drafted token (the default). A token tree of d nodes is
    built in fewer: one forward per depth over all of that depth's expanded nodes, so pass its
    ``draft_forwards_per_iteration``; the target still scores all d nodes, T(d + 1).
    """
    table = costs if uses_draft else costs.without_draft_cost()
    forwards = drafted_per_iteration if draft_forwards_per_iteration is None else draft_forwards_per_iteration
    iteration_s = table.draft_step_s * forwards + table.verify_time(drafted_per_iteration + 1)
    return tokens_per_iteration * table.target_step_s / iteration_s


def predicted_run_s(
    costs: CostTable,
    new_tokens: int,
    iterations: int,
    drafted: int,
    uses_draft: bool,
    prefill_s: float,
    draft_forwards: int | None = None,
    verify_rows: Mapping[int, int] | None = None,
) -> float:
    """Seconds a whole run should take by the cost model: its prefill, then per iteration the draft
    forwards and the target scoring the drafts plus one token, T(drafted + 1).

    The prefill matters: a 48-token run of a 250-token prompt spends seconds on it, the same for
    every method, which caps the speedup well below the steady-state figure above. For a token
    tree, ``drafted`` counts the nodes the target scored and ``draft_forwards`` the draft forwards
    that built them (default: one per drafted token, a chain), as in :func:`predicted_speedup`.

    ``verify_rows`` ({rows scored: iterations}), when the run recorded it, prices each iteration
    at its own T(k) instead of every iteration at T(mean + 1). T(k) is concave on a CPU (measured
    here T(1) 0.54 s, T(2) 0.73 s, T(9) 1.01 s): a run that mixes plain steps with 16-node
    lookup trees costs less than its mean suggests, and the mean underestimated such runs' speedup.
    """
    if iterations <= 0:
        return prefill_s
    table = costs if uses_draft else costs.without_draft_cost()
    forwards = drafted if draft_forwards is None else draft_forwards
    if verify_rows is not None:
        verify_s = sum(count * table.verify_time(rows) for rows, count in verify_rows.items())
    else:
        verify_s = iterations * table.verify_time(drafted / iterations + 1)
    return prefill_s + table.draft_step_s * forwards + verify_s
