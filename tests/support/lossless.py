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
caches), and a Python generator cannot be copied mid-run; re-running the real objects from the
prompt needs no knowledge of that state. What keeps replays few is :class:`Checkpointed`: at each
iteration's start the run reports a snapshot of everything that decides its future, and a state
reached before is not explored again (see :class:`Enumerator`).

What this cannot see is how the loop uses its generator (re-seeding it, say): the draws are
replaced. tests/decoding/test_lossless.py samples the real generator for that.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from specviz.decoding.backends import CausalLM
from specviz.decoding.decoder import DecodeConfig, TextCodec, autoregressive_decode, speculative_decode
from specviz.decoding.drafters import Draft, Drafter
from specviz.decoding.events import Iteration, RunFinished
from specviz.decoding.tree_decoder import TreeDrafter, tree_decode

Outcome = tuple[int, ...]  # the token ids a run generates


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


class _Cut(Exception):
    """Raised at a checkpoint whose future is already enumerated: the replay stops there."""

    def __init__(self, done: Outcome, key: Hashable) -> None:
        super().__init__()
        self.done = done
        self.key = key


@dataclass
class _Open:
    """A checkpoint on the current path whose subtree is still being enumerated."""

    key: Hashable
    depth: int  # branch points before it: its subtree is every replay that shares them
    prob: float  # probability of reaching it
    done: int  # tokens generated when it was reached
    suffixes: defaultdict[Outcome, float] = field(default_factory=lambda: defaultdict(float))


def snapshot(obj: object) -> Hashable:
    """Everything ``obj`` holds, as a hashable value: two objects with equal snapshots behave alike.

    Recurses through attributes, containers and tensors (by value), so nothing a drafter or a
    backend carries between iterations is left out by accident; an unknown type raises rather
    than being skipped. Call counters (``forward_calls``) are the one thing left out: they never
    change what a model computes.
    """
    if obj is None or isinstance(obj, bool | int | float | str | bytes):
        return obj
    if isinstance(obj, torch.Tensor):
        return ("tensor", tuple(obj.shape), tuple(obj.detach().cpu().flatten().tolist()))
    if isinstance(obj, torch.device | torch.dtype):
        return str(obj)
    if isinstance(obj, list | tuple | deque):
        return tuple(snapshot(x) for x in obj)
    if isinstance(obj, set | frozenset):
        return tuple(sorted(snapshot(x) for x in obj))  # type: ignore[type-var]
    if isinstance(obj, dict):
        return tuple((key, snapshot(value)) for key, value in obj.items())
    if hasattr(obj, "__dict__"):
        fields = tuple((k, snapshot(v)) for k, v in vars(obj).items() if k != "forward_calls")
        return (type(obj).__qualname__, fields)
    raise TypeError(f"cannot snapshot a {type(obj).__name__}: add it to tests/support/lossless.snapshot")


class Enumerator:
    """Depth-first enumeration of a run's random branches, replaying the run from its start.

    Without checkpoints the cost is one replay per branch, which grows like vocab ** tokens. With
    :class:`Checkpointed` around the drafter, the run reports the start of every iteration with a
    snapshot of everything that decides the rest of the run (committed context, target cache,
    drafter state); the first time a state is reached its subtree is enumerated and stored as a
    distribution over the tokens still to come, and every later replay that reaches the same state
    stops there and reuses it.
    """

    def __init__(self) -> None:
        self.replays = 0
        self._script: _Script | None = None
        self._memo: dict[Hashable, dict[Outcome, float]] = {}
        self._open: list[_Open] = []
        self._dist: defaultdict[Outcome, float] = defaultdict(float)

    def checkpoint(self, done: Outcome, key: Hashable) -> None:
        """The run stands at the start of an iteration, ``done`` generated, in state ``key``."""
        if self._script is None:
            return  # a run outside the enumeration
        depth = len(self._script.path)
        if key in self._memo:
            raise _Cut(done, key)
        if not any(cp.depth == depth and cp.key == key for cp in self._open):  # else: replaying to it
            self._open.append(_Open(key, depth, self._script.prob, len(done)))

    def _record(self, generated: Outcome, prob: float) -> None:
        self._dist[generated] += prob
        for cp in self._open:
            cp.suffixes[generated[cp.done :]] += prob

    def _close_below(self, depth: int) -> None:
        """Store every open checkpoint whose subtree the next replay leaves (deeper than ``depth``)."""
        while self._open and self._open[-1].depth > depth:
            cp = self._open.pop()
            self._memo[cp.key] = {suffix: prob / cp.prob for suffix, prob in cp.suffixes.items()}

    def distribution(self, run: Callable[[], Outcome], max_replays: int = 100_000) -> dict[Outcome, float]:
        """Exact distribution of ``run()`` (the generated token ids) over every branch.

        ``run`` must be deterministic apart from ``torch.rand``: build the drafter's models outside
        it, and let the decoder's ``prefill`` reset the drafter.
        """
        prefix: list[int] | None = []
        while prefix is not None:
            self.replays += 1
            if self.replays > max_replays:
                raise AssertionError(f"more than {max_replays} replays: make the case smaller")
            script = self._script = _Script(prefix)
            try:
                with _branching_uniforms(script):
                    generated = run()
                self._record(tuple(generated), script.prob)
            except _Cut as cut:
                for suffix, prob in self._memo[cut.key].items():
                    self._record(cut.done + suffix, script.prob * prob)
            finally:
                self._script = None
            prefix = script.next_prefix()
            self._close_below(-1 if prefix is None else len(prefix) - 1)
        total = math.fsum(self._dist.values())
        assert abs(total - 1.0) < 1e-12, f"the enumerated branches hold {total}, not 1"
        return dict(self._dist)


def exact_distribution(run: Callable[[], Outcome]) -> dict[Outcome, float]:
    """Exact distribution of ``run()`` without checkpoints (see :class:`Enumerator`)."""
    return Enumerator().distribution(run)


class WrappedDrafter:
    """A drafter that passes every call through to ``inner``; subclasses change what they need."""

    def __init__(self, inner: Drafter) -> None:
        self.inner = inner
        self.name = inner.name

    def prefill(self, context: list[int]) -> None:
        self.inner.prefill(context)

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> Draft:
        return self.inner.propose(context, k, generator)

    def feedback(self, n_accepted: int, n_drafted: int) -> None:
        self.inner.feedback(n_accepted, n_drafted)

    def synchronize(self) -> None:
        self.inner.synchronize()


class Checkpointed(WrappedDrafter):
    """A drafter passed through unchanged, reporting each iteration's start to an :class:`Enumerator`.

    ``state`` lists the other objects whose contents decide the rest of the run (the target
    backend); the drafter itself and the committed context are always part of the key.
    """

    def __init__(self, inner: Drafter, enumerator: Enumerator, state: tuple[object, ...] = ()) -> None:
        super().__init__(inner)
        self.enumerator = enumerator
        self.state = state
        self._prompt_len = 0

    def prefill(self, context: list[int]) -> None:
        self._prompt_len = len(context)
        self.inner.prefill(context)

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> Draft:
        key = (tuple(context), k, snapshot(self.inner), snapshot(self.state))
        self.enumerator.checkpoint(tuple(context[self._prompt_len :]), key)
        return self.inner.propose(context, k, generator)


# -- the decoding loops, enumerated ------------------------------------------------------------------


@dataclass
class Coverage:
    """What the enumerated runs went through, so a test can show that it exercised its path."""

    # (tokens asked for, tokens drafted, correction kind, whether the budget allowed drafting)
    iterations: Counter[tuple[int, int, str, bool]] = field(default_factory=Counter)
    drafted_tokens: set[int] = field(default_factory=set)

    def shortened(self) -> set[tuple[int, int]]:
        """(asked, drafted) of every draft that stopped before the length it asked for."""
        return {(asked, drafted) for asked, drafted, _, _ in self.iterations if 0 < drafted < asked}


def outcome(events: list, config: DecodeConfig, seen: Coverage | None = None) -> Outcome:
    """The token ids a finished run generated, noting its iterations in ``seen``."""
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    if seen is not None:
        for e in events:
            if isinstance(e, Iteration):
                before = e.total_tokens - len(e.new_token_ids)
                room = min(config.gamma, config.max_new_tokens - before - 1) > 0
                seen.iterations[(e.gamma, len(e.drafted), e.correction.kind, room)] += 1
                seen.drafted_tokens.update(d.token_id for d in e.drafted)
    return finished.token_ids


def plain_distribution(
    target: CausalLM, prompt: list[int], config: DecodeConfig, codec: TextCodec
) -> dict[Outcome, float]:
    """Exact distribution of plain decoding: the reference every speculative path must equal."""
    return exact_distribution(
        lambda: list(autoregressive_decode(target, prompt, config, codec))[-1].token_ids
    )


def speculative_distribution(
    target: CausalLM,
    drafter: Drafter,
    prompt: list[int],
    config: DecodeConfig,
    codec: TextCodec,
    seen: Coverage | None = None,
) -> dict[Outcome, float]:
    """Exact distribution of the speculative loop, checkpointed at every iteration (:class:`Checkpointed`)."""
    enumerator = Enumerator()
    wrapped = Checkpointed(drafter, enumerator, state=(target,))
    return enumerator.distribution(
        lambda: outcome(list(speculative_decode(target, wrapped, prompt, config, codec)), config, seen)
    )


def unmemoised_distribution(
    target: CausalLM, drafter: Drafter, prompt: list[int], config: DecodeConfig, codec: TextCodec
) -> dict[Outcome, float]:
    """The same as :func:`speculative_distribution` with one replay per branch, no checkpoints."""
    return exact_distribution(
        lambda: list(speculative_decode(target, drafter, prompt, config, codec))[-1].token_ids
    )


class CheckpointedTree(Checkpointed):
    """:class:`Checkpointed` for a tree drafter (``propose_tree``)."""

    def __init__(self, inner: TreeDrafter, enumerator: Enumerator, state: tuple[object, ...] = ()) -> None:
        super().__init__(inner, enumerator, state)  # type: ignore[arg-type]

    def propose_tree(self, context: list[int], nodes: int, depth: int, generator: torch.Generator) -> Any:
        key = (tuple(context), nodes, depth, snapshot(self.inner), snapshot(self.state))
        self.enumerator.checkpoint(tuple(context[self._prompt_len :]), key)
        return self.inner.propose_tree(context, nodes, depth, generator)  # type: ignore[attr-defined]

    def tree_feedback(self, tree: Any, path: list[int]) -> None:
        self.inner.tree_feedback(tree, path)  # type: ignore[attr-defined]


@dataclass
class TreeCoverage:
    """What the enumerated tree runs went through: per iteration (nodes, path length, nodes tested,
    correction kind), and the sources of accepted nodes."""

    iterations: Counter[tuple[int, int, int, str]] = field(default_factory=Counter)
    accepted_sources: set[str] = field(default_factory=set)


def tree_distribution(
    target: CausalLM,
    drafter: TreeDrafter,
    prompt: list[int],
    config: DecodeConfig,
    codec: TextCodec,
    seen: TreeCoverage | None = None,
    **kwargs: Any,
) -> dict[Outcome, float]:
    """Exact distribution of the tree loop (:func:`~specviz.decoding.tree_decoder.tree_decode`),
    checkpointed at every iteration; ``kwargs`` go to ``tree_decode`` (a broken verifier)."""
    enumerator = Enumerator()
    wrapped = CheckpointedTree(drafter, enumerator, state=(target,))

    def run() -> Outcome:
        events = list(tree_decode(target, wrapped, prompt, config, codec, **kwargs))  # type: ignore[arg-type]
        if seen is not None:
            for e in events:
                if isinstance(e, Iteration) and e.tree is not None:
                    tested = sum(1 for node in e.tree if node.verdict != "untested")
                    path = sum(1 for node in e.tree if node.verdict == "accepted")
                    seen.iterations[(len(e.tree), path, tested, e.correction.kind)] += 1
                    seen.accepted_sources.update(node.source for node in e.tree if node.verdict == "accepted")
        return events[-1].token_ids

    return enumerator.distribution(run)
