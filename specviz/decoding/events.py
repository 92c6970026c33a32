"""The events a decoding run emits, and their JSON-lines form.

Vocabulary (used everywhere in specviz):

- **drafted** token: proposed by the drafter. Each carries ``draft_prob`` (the probability the
  drafter gave it, i.e. the distribution it was really sampled from) and ``target_prob`` (the
  target's probability for it at the same position, after the same temperature/top-k/top-p).
- **accepted**: kept, because ``u < min(1, target_prob / draft_prob)`` (sampling) or because it
  equals the target's argmax (greedy).
- **rejected**: the first drafted token that fails. Drafted tokens after it are discarded
  (verdict ``discarded``) and are never shown as accepted.
- **resampled**: the target's replacement for a rejected token, drawn from
  ``norm(max(0, target_probs - draft_probs))``. (In runs marked ``lossy`` — the comparison rules in
  lossy.py — it is drawn from ``target_probs`` itself, which is part of why those rules are lossy.)
- **bonus**: the extra token the target gives for free when every drafted token was accepted
  (at least one). An iteration that drafted nothing is a **plain** target step, not a bonus.
- **softmax probability** (greedy runs): with temperature 0 ``draft_prob`` and ``target_prob`` are
  one-hot (the argmax), so the events also record each model's probability at temperature 1,
  ``draft_softmax`` / ``target_softmax``: how sure each model was, not what decided.
- **token tree** (tree iterations): the drafter proposes several continuations at once as a tree of
  ``TreeNode``; one target forward scores every node; verification walks down from the root,
  testing a node's children in order, and the accepted **path** is what ``drafted`` then lists.
- **acceptance rate** = accepted / drafted. It is *not* Leviathan's alpha
  (``alpha = E[sum_x min(target_probs[x], draft_probs[x])]``), which is estimated separately from
  ``DraftedToken.overlap``.

A run is ``RunStarted``, then ``Iteration`` events (plain decoding emits one per token with no
drafted tokens), then ``RunFinished``. A live run and a recorded trace are interchangeable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

SCHEMA_VERSION = 2
# Version 1 traces (no softmax fields, no trees) read as version 2 with those fields absent.
READABLE_VERSIONS = (1, 2)

Verdict = Literal["accepted", "rejected", "discarded"]
NodeVerdict = Literal["accepted", "rejected", "untested"]
NodeSource = Literal["draft", "lookup"]
CorrectionKind = Literal["resampled", "bonus", "plain"]
FinishReason = Literal["eos", "stop", "max_new_tokens", "context_full", "cancelled"]


@dataclass(frozen=True)
class TokenProb:
    """One entry of a distribution shown to a human (e.g. the residual's top entries)."""

    token_id: int
    text: str
    prob: float


@dataclass(frozen=True)
class DraftedToken:
    """A token proposed by the drafter and its verification."""

    position: int  # 0-based index inside this iteration's draft
    token_id: int
    text: str
    draft_prob: float  # 1.0 for a deterministic drafter (n-gram): a one-hot distribution
    target_prob: float
    ratio: float  # target_prob / draft_prob; in greedy mode 1.0 if argmax else 0.0
    u: float | None  # uniform draw compared with min(1, ratio); None in greedy mode or when not reached
    verdict: Verdict
    target_argmax: int  # what greedy decoding of the target would emit here
    overlap: float  # sum_x min(target_probs[x], draft_probs[x]) at this position: alpha's estimator
    # Cross-tokenizer drafting only: the draft-vocabulary pieces this target token was made from.
    draft_pieces: tuple[str, ...] | None = None
    # Greedy runs only: each model's probability of this token at temperature 1 (None: not recorded,
    # e.g. sampling runs, where draft_prob/target_prob already are the real distributions).
    draft_softmax: float | None = None
    target_softmax: float | None = None


@dataclass(frozen=True)
class Correction:
    """The token the target itself adds at the end of an iteration."""

    kind: CorrectionKind  # resampled after a rejection, bonus after full acceptance, plain (no draft)
    token_id: int
    text: str
    prob: float  # probability of this token in the distribution it was drawn from
    top: tuple[TokenProb, ...]  # top entries of that distribution (residual for "resampled")
    committed: bool = True  # False when an EOS/stop/budget cut came first: not part of the output
    # Greedy runs only: the top entries of the target's distribution at temperature 1 (``top`` is
    # one-hot there); empty when not recorded.
    softmax_top: tuple[TokenProb, ...] = ()


@dataclass(frozen=True)
class TreeNode:
    """One node of a token tree (tree iterations only); nodes are listed parents first."""

    parent: int  # index of the parent in Iteration.tree; -1: the last committed token (the root)
    token_id: int
    text: str
    source: NodeSource  # the draft model (sampled or top candidate) or an earlier occurrence in the context
    draft_prob: float  # the drafter's probability of this token after its parent; 1.0 for a lookup
    target_prob: float  # the target's probability of this token after its parent (same sampling)
    u: float | None  # the uniform it was tested with; None in greedy mode or when never tested
    verdict: NodeVerdict  # accepted: on the committed path; rejected: tested and refused
    draft_softmax: float | None = None  # greedy runs: probabilities at temperature 1, as in DraftedToken
    target_softmax: float | None = None


@dataclass(frozen=True)
class RunStarted:
    mode: Literal["speculative", "autoregressive"]
    target: str
    draft: str | None
    drafter: str | None  # "model", "ngram" or None for plain decoding
    gamma: int
    temperature: float
    top_k: int | None
    top_p: float | None
    seed: int
    max_new_tokens: int
    device: str
    dtype: str
    prompt: str
    prompt_token_ids: tuple[int, ...]
    prefill_time_s: float
    lossy: bool = False  # True only for the deliberately lossy comparison rules
    # The acceptance rule as it describes itself ("rejection sampling", "threshold τ=0.1", ...);
    # None in traces written before it was recorded.
    rule: str | None = None
    type: str = field(default="run_started", init=False)


@dataclass(frozen=True)
class Iteration:
    index: int
    gamma: (
        int  # drafted tokens requested this iteration (γ, capped by the budget; the drafter may return fewer)
    )
    drafted: tuple[DraftedToken, ...]
    correction: Correction
    new_token_ids: tuple[int, ...]  # tokens committed by this iteration, in order
    new_text: str
    draft_time_s: float  # device-synchronised
    verify_time_s: float  # device-synchronised; for plain decoding: the target step
    total_tokens: int  # generated tokens so far, after this iteration
    # Tree iterations: every drafted node. ``drafted`` then lists the accepted path, followed by
    # the first refused child below it (if any), so chain consumers read the path as a chain;
    # ``gamma`` is the number of nodes.
    tree: tuple[TreeNode, ...] | None = None
    # Sampling runs that drafted: the exact total-variation distance between the distribution of
    # this iteration's first emitted token under the run's acceptance rule and the target's own
    # (0 up to rounding for rejection sampling; what a lossy rule costs at this position).
    step_tv: float | None = None
    type: str = field(default="iteration", init=False)

    @property
    def n_accepted(self) -> int:
        return sum(1 for d in self.drafted if d.verdict == "accepted")


@dataclass(frozen=True)
class RunFinished:
    reason: FinishReason
    text: str
    token_ids: tuple[int, ...]  # generated tokens only (no prompt)
    iterations: int
    wall_time_s: float  # time spent in the decode loop (prefill and consumers' time at each yield excluded)
    type: str = field(default="run_finished", init=False)


Event = RunStarted | Iteration | RunFinished


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the file and line."""


def event_to_dict(event: Event) -> dict[str, Any]:
    data = asdict(event)
    data["v"] = SCHEMA_VERSION
    return data


def _tuple(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(items)


def event_from_dict(data: dict[str, Any]) -> Event:
    version = data.get("v")
    if version not in READABLE_VERSIONS:
        raise TraceError(
            f"unsupported trace schema version {version!r} (this specviz reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}): a newer specviz wrote it, upgrade to replay it"
        )
    fields = {k: v for k, v in data.items() if k not in ("v", "type")}
    kind = data.get("type")
    if kind == "run_started":
        fields["prompt_token_ids"] = _tuple(fields["prompt_token_ids"])
        return RunStarted(**fields)
    if kind == "iteration":
        corr = dict(fields["correction"])
        corr["top"] = _tuple(TokenProb(**t) for t in corr["top"])
        corr["softmax_top"] = _tuple(TokenProb(**t) for t in corr.get("softmax_top", ()))
        fields["correction"] = Correction(**corr)
        fields["drafted"] = _tuple(
            DraftedToken(
                **{**d, "draft_pieces": _tuple(d["draft_pieces"]) if d.get("draft_pieces") else None}
            )
            for d in fields["drafted"]
        )
        fields["new_token_ids"] = _tuple(fields["new_token_ids"])
        if fields.get("tree") is not None:
            fields["tree"] = _tuple(TreeNode(**n) for n in fields["tree"])
        return Iteration(**fields)
    if kind == "run_finished":
        fields["token_ids"] = _tuple(fields["token_ids"])
        return RunFinished(**fields)
    raise TraceError(f"unknown event type {kind!r}")


def dumps(event: Event) -> str:
    return json.dumps(event_to_dict(event), ensure_ascii=False, separators=(",", ":"))


def loads(line: str) -> Event:
    return event_from_dict(json.loads(line))


class TraceWriter:
    """Writes events as JSON lines, flushing each one so a Ctrl-C loses nothing already decoded."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, event: Event) -> None:
        self._stream.write(dumps(event) + "\n")
        self._stream.flush()


def write_trace(path: str | Path, events: Iterable[Event]) -> Path:
    """Write ``events`` (one run or several, in order) as a JSON-lines trace; return the path."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as handle:
        writer = TraceWriter(handle)
        for event in events:
            writer.write(event)
    return path


def read_trace(path: str | Path) -> Iterator[Event]:
    """Yield the events of a JSON-lines trace; any unreadable line raises TraceError naming it.

    For replaying what a damaged trace still holds, use :func:`load_trace`.
    """
    contents = load_trace(path)
    if contents.damage is not None:
        raise TraceError(contents.damage)
    yield from contents.events


@dataclass(frozen=True)
class TraceContents:
    """What a trace file holds: its readable events, and what is wrong with the rest.

    A trace is written one flushed line per event, so a run that was killed or a disk that filled
    up leaves a valid prefix, perhaps followed by one line cut short. The prefix is kept.
    """

    events: list[Event]
    damage: str | None  # the first unreadable line (reading stopped there), if any
    gaps: list[str]  # runs without their run_started / run_finished

    @property
    def problems(self) -> list[str]:
        return ([self.damage] if self.damage else []) + self.gaps


def load_trace(path: str | Path) -> TraceContents:
    """Read a trace up to its first unreadable line.

    Raises TraceError when nothing in the file is a trace event (missing, empty, binary, another
    format, a newer schema); otherwise returns the valid prefix and says what is missing.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TraceError(f"cannot open trace {path}: {exc.strerror}") from exc
    events: list[Event] = []
    damage = None
    lines = raw.split(b"\n")
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(loads(line.decode("utf-8")))
        except UnicodeDecodeError:
            damage = f"{path}:{lineno}: not text (binary data)"
        except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
            last = not any(rest.strip() for rest in lines[lineno:])
            cut = last and events  # a whole trace before it: its last write was interrupted
            what = "cut short (the write was interrupted)" if cut else f"not a specviz trace event ({exc})"
            damage = f"{path}:{lineno}: {what}"
        except TraceError as exc:
            if not events:  # e.g. a newer schema: nothing here can be read
                raise TraceError(f"{path}:{lineno}: {exc}") from exc
            damage = f"{path}:{lineno}: {exc}"
        if damage:
            break
    if not events:
        raise TraceError(damage or f"{path} is empty: no trace events in it")
    gaps = []
    runs = 0
    open_run = False
    for index, event in enumerate(events):
        if isinstance(event, RunStarted):
            if open_run:
                gaps.append(f"run {runs} has no run_finished: it was cut short")
            runs += 1
            open_run = True
        elif not open_run and index == 0:
            gaps.append("the trace does not start with run_started: its beginning is missing")
            runs, open_run = 1, True
        elif isinstance(event, RunFinished):
            open_run = False
    if open_run:
        gaps.append(f"run {runs} has no run_finished: it was cut short")
    return TraceContents(events, damage, gaps)
