"""Exact output distributions of the *real* decoding loops, found by enumerating their random draws.

Every random decision the decoder makes is a uniform compared with numbers the loop has already
computed: :func:`specviz.decoding.sampling.sample` inverts a CDF (``u * total`` searched in the
cumulative sums) and the verifier compares ``u < acceptance probability``. So the loop's output is
a deterministic function of which interval each uniform falls in, and the probability of a run is
the product of those intervals' widths.

:func:`exact_distribution` runs the unmodified code (decoder, drafters, verifier, backends) with
``torch.rand`` replaced by a *branching uniform source*: each uniform it hands out learns the
thresholds it is compared with at the moment of the comparison, the enumerator picks one of the
intervals, and the run carries on. Runs are replayed from the start, depth first, with a scripted
sequence of choices until every branch has been taken once. The result is the exact distribution
of whatever the run returns, as the code computes it: no sampling error, only the rounding of the
probabilities the code itself computes in float32.

Why replay rather than fork: drafters keep state across iterations (adaptive length, automatic γ,
caches), so the state after an iteration is not the committed text alone; re-running the real
objects from the prompt is the one way that needs no knowledge of that state.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import torch

Distribution = dict[Hashable, float]


class _Script:
    """The choices of one replay: forced for the first ``len(prefix)`` branch points, then the first."""

    def __init__(self, prefix: list[int]) -> None:
        self.prefix = prefix
        self.path: list[tuple[int, int]] = []  # (choice, number of options) per branch point
        self.prob = 1.0

    def choose(self, widths: list[float]) -> int:
        """Index of the interval taken among ``widths`` (conditional probabilities summing to 1)."""
        options = [i for i, w in enumerate(widths) if w > 0]
        if len(options) == 1:  # no branch: nothing to replay
            self.prob *= widths[options[0]] / sum(widths)
            return options[0]
        depth = len(self.path)
        pick = self.prefix[depth] if depth < len(self.prefix) else 0
        self.path.append((pick, len(options)))
        self.prob *= widths[options[pick]] / sum(widths)
        return options[pick]

    def next_prefix(self) -> list[int] | None:
        """The choices of the next replay in depth-first order, or None when all were taken."""
        for depth in range(len(self.path) - 1, -1, -1):
            pick, n = self.path[depth]
            if pick + 1 < n:
                return [p for p, _ in self.path[:depth]] + [pick + 1]
        return None


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the enumerated loop drew randomness outside torch.rand: it would go unseen")


class _Uniform(float):
    """One uniform of the verifier, compared with an acceptance probability.

    Its float value (0.5) is a placeholder for the events that record it; only comparisons mean
    anything, and each one splits the interval the uniform is known to lie in.
    """

    def __new__(cls, script: _Script) -> _Uniform:
        obj = super().__new__(cls, 0.5)
        obj._script = script  # type: ignore[attr-defined]
        obj._lo, obj._hi = 0.0, 1.0  # type: ignore[attr-defined]
        return obj

    def _below(self, threshold: float) -> bool:
        lo, hi = self._lo, self._hi  # type: ignore[attr-defined]
        t = min(max(float(threshold), lo), hi)
        if t <= lo:
            return False
        if t >= hi:
            return True
        # A continuous uniform is never equal to a threshold, so u < t and u <= t are one event.
        below = self._script.choose([(t - lo) / (hi - lo), (hi - t) / (hi - lo)]) == 0  # type: ignore[attr-defined]
        if below:
            self._hi = t  # type: ignore[attr-defined]
        else:
            self._lo = t  # type: ignore[attr-defined]
        return below

    def __lt__(self, other: object) -> bool:
        return self._below(float(other))  # type: ignore[arg-type]

    __le__ = __lt__

    def __gt__(self, other: object) -> bool:
        return not self._below(float(other))  # type: ignore[arg-type]

    __ge__ = __gt__

    def _arithmetic(self, *args: Any) -> Any:
        raise AssertionError("arithmetic on a verifier uniform: the enumerator cannot follow it")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arithmetic
    __truediv__ = __rtruediv__ = __floordiv__ = __pow__ = _arithmetic


class _Draw:
    """``u * total`` inside :func:`sample`; the CDF search it is given decides the token."""

    def __init__(self, script: _Script, total: torch.Tensor) -> None:
        self.script = script
        self.total = total  # [n, 1]

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is not torch.searchsorted or not kwargs.get("right"):
            raise AssertionError(f"a sampling uniform went through {func}: the enumerator cannot follow it")
        cdf, draw = args
        assert isinstance(draw, _Draw)
        cdf = cdf.double()  # [n, vocab]
        assert torch.equal(draw.total.double(), cdf[:, -1:]), "sample() scales u by the CDF's total"
        picks = []
        for row in cdf:
            widths = torch.diff(row, prepend=row.new_zeros(1)).clamp_min(0.0).tolist()  # [vocab]
            # right=True: u * total lands in [cdf[j - 1], cdf[j]) -> token j
            picks.append(draw.script.choose(widths))
        return torch.tensor(picks, dtype=torch.long).unsqueeze(-1)  # [n, 1]


class _Uniforms:
    """What the patched ``torch.rand`` returns: read as a list (verifier) or scaled (sampler)."""

    def __init__(self, script: _Script, shape: tuple[int, ...]) -> None:
        self.script = script
        self.shape = shape

    def tolist(self) -> list[_Uniform]:
        if len(self.shape) != 1:
            raise AssertionError(f"unexpected uniforms of shape {self.shape}")
        return [_Uniform(self.script) for _ in range(self.shape[0])]

    def __mul__(self, total: torch.Tensor) -> _Draw:
        if len(self.shape) != 2 or self.shape[1] != 1 or tuple(total.shape) != self.shape:
            raise AssertionError(f"unexpected use of uniforms of shape {self.shape}")
        return _Draw(self.script, total)


@contextlib.contextmanager
def _branching_uniforms(script: _Script) -> Iterator[None]:
    def rand(*size: Any, generator: torch.Generator | None = None, **kwargs: Any) -> _Uniforms:
        if generator is None:
            raise AssertionError("torch.rand without the run's generator")
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        return _Uniforms(script, tuple(int(s) for s in shape))

    saved = {name: getattr(torch, name) for name in ("rand", "multinomial", "randint", "randn", "bernoulli")}
    torch.rand = rand  # type: ignore[assignment]
    for name in ("multinomial", "randint", "randn", "bernoulli"):
        setattr(torch, name, _refuse)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch, name, fn)


def exact_distribution(run: Callable[[], Hashable], max_runs: int = 200_000) -> Distribution:
    """Exact distribution of ``run()``'s result over every branch of its random draws.

    ``run`` must be deterministic apart from ``torch.rand`` (build fresh drafters or call
    ``prefill`` inside it, as the decoder does) and draw every uniform with a generator.
    """
    dist: defaultdict[Hashable, float] = defaultdict(float)
    prefix: list[int] | None = []
    runs = 0
    while prefix is not None:
        runs += 1
        if runs > max_runs:
            raise AssertionError(f"more than {max_runs} branches: make the case smaller")
        script = _Script(prefix)
        with _branching_uniforms(script):
            outcome = run()
        dist[outcome] += script.prob
        prefix = script.next_prefix()
    total = math.fsum(dist.values())
    assert abs(total - 1.0) < 1e-12, f"the enumerated branches hold {total}, not 1"
    return dict(dist)
