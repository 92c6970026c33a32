"""Statistics of a run, computed from its events only, so a live run, a replayed trace, the UI at any
playhead, the headless ``--json`` summary and the bench all report the same numbers.

One type, ``RunStats``, accumulates them (``observe`` each event, as vLLM's speculative-decoding stats
``observe_draft`` each step); ``summarise`` turns a run's events into the ``--json`` summary.

Conventions:
- acceptance rate = accepted / drafted, over every drafted token (discarded ones included: they cost
  draft time). It is not Leviathan's alpha.
- alpha estimate = mean over verified (accepted or rejected) drafted tokens of
  sum_x min(target_probs[x], draft_probs[x]) (``DraftedToken.overlap``).
- mean accepted length = tokens committed per iteration, the resampled/bonus correction included,
  so it is >= 1.
- per-position acceptance[i] = P(accepted at draft position i | position i was reached and verified);
  a discarded token was never verified, so it says nothing about its position.
- decode time = the decode loop's wall time once the run has finished (``RunFinished.wall_time_s``),
  else the summed draft and verify times (all a run cut short or a playhead knows).
- c (cost ratio) = draft time per drafted token / time of one target step. The target step is a plain
  run's time per token when a baseline is given, else one verify pass (an upper bound on a step).
- A number with nothing to measure (no drafted tokens, no iterations, no time) is ``None``, never 0.0:
  0.0 would read as a measured acceptance of nothing. The console shows it as "–".
- Nothing counts bonus tokens: an iteration that drafted nothing commits a plain target step, which
  version 1 traces call a "bonus" (:func:`correction_kind` is how every view names it).
- T(k) from a run's own timings (:func:`costs_from_timings`): the median verify time of the
  iterations whose target forward scored k tokens, so the cost model can be drawn for a replayed
  trace, with no model and no torch.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from specviz.decoding.events import CorrectionKind, Event, Iteration, RunFinished, RunStarted
from specviz.decoding.theory import CostTable


@dataclass
class RunStats:
    """Counts and times of one run so far; ``observe`` every event of the run in order.

    Counts are plain sums, so the stats of several runs pool by adding them (``pooled``), and a
    copy after each iteration (``copy``) gives the stats at any playhead in O(1).
    """

    started: RunStarted | None = None
    finished: RunFinished | None = None
    iterations: int = 0
    drafted: int = 0  # every drafted token, discarded ones included
    verified: int = 0  # drafted tokens the target checked: accepted, or the one rejected
    accepted: int = 0
    overlap_sum: float = 0.0  # sum over verified drafted tokens of sum_x min(target_probs, draft_probs)
    committed: int = 0  # tokens committed to the output, corrections included
    draft_time_s: float = 0.0
    verify_time_s: float = 0.0
    reached: list[int] = field(default_factory=list)  # [draft position] -> times verified
    accepted_at: list[int] = field(default_factory=list)  # [draft position] -> times accepted
    length_counts: list[int] = field(default_factory=list)  # [k] -> iterations that committed k tokens

    @classmethod
    def of(cls, events: Iterable[Event]) -> RunStats:
        """The stats of one run's events (a list, a trace, or a live stream already drained)."""
        stats = cls()
        for event in events:
            stats.observe(event)
        return stats

    @classmethod
    def pooled(cls, runs: Iterable[RunStats]) -> RunStats:
        """Several runs taken together (counts and times summed), e.g. a bench configuration's
        repeats over its prompts; the pooled rates weight each run by what it drafted."""
        total = cls()
        for run in runs:
            total.iterations += run.iterations
            total.drafted += run.drafted
            total.verified += run.verified
            total.accepted += run.accepted
            total.overlap_sum += run.overlap_sum
            total.committed += run.committed
            total.draft_time_s += run.draft_time_s
            total.verify_time_s += run.verify_time_s
            _add_into(total.reached, run.reached)
            _add_into(total.accepted_at, run.accepted_at)
            _add_into(total.length_counts, run.length_counts)
        return total

    def copy(self) -> RunStats:
        """An independent copy (the lists too), e.g. to keep the stats after an iteration."""
        return replace(
            self,
            reached=list(self.reached),
            accepted_at=list(self.accepted_at),
            length_counts=list(self.length_counts),
        )

    def observe(self, event: Event) -> None:
        if isinstance(event, Iteration):
            self.observe_iteration(event)
        elif isinstance(event, RunStarted):
            if self.started is not None or self.iterations:
                raise ValueError("events of more than one run: summarise each run separately")
            self.started = event
        elif isinstance(event, RunFinished):
            self.finished = event

    def observe_iteration(self, it: Iteration) -> None:
        self.iterations += 1
        self.drafted += len(it.drafted)
        self.committed += len(it.new_token_ids)
        self.draft_time_s += it.draft_time_s
        self.verify_time_s += it.verify_time_s
        _bump(self.length_counts, len(it.new_token_ids))
        for d in it.drafted:
            if d.verdict == "discarded":
                break  # never verified, and neither is anything after it
            self.verified += 1
            self.overlap_sum += d.overlap
            _bump(self.reached, d.position)
            self.accepted_at.extend([0] * (len(self.reached) - len(self.accepted_at)))  # same length
            if d.verdict == "accepted":
                self.accepted += 1
                self.accepted_at[d.position] += 1

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    @property
    def alpha_estimate(self) -> float | None:
        return self.overlap_sum / self.verified if self.verified else None

    @property
    def mean_accepted_length(self) -> float | None:
        return self.committed / self.iterations if self.iterations else None

    @property
    def per_position_acceptance(self) -> list[float]:
        # A position enters ``reached`` only when it is verified, so no count is 0.
        return [a / r for a, r in zip(self.accepted_at, self.reached, strict=True)]

    @property
    def decode_time_s(self) -> float:
        if self.finished is not None:
            return self.finished.wall_time_s
        return self.draft_time_s + self.verify_time_s

    @property
    def tokens_per_s(self) -> float | None:
        seconds = self.decode_time_s
        return self.committed / seconds if seconds > 0 else None

    @property
    def seconds_per_token(self) -> float | None:
        """Decode time per committed token: for a plain run, the cost of one target step."""
        return self.decode_time_s / self.committed if self.committed else None

    @property
    def draft_step_s(self) -> float | None:
        """Draft time per drafted token."""
        return self.draft_time_s / self.drafted if self.drafted else None

    @property
    def verify_step_s(self) -> float | None:
        """Verify time per iteration (one target forward over the draft)."""
        return self.verify_time_s / self.iterations if self.iterations else None

    def target_step_s(self, baseline: RunStats | None = None) -> float | None:
        """One target step: the plain ``baseline``'s time per token, else this run's verify step."""
        measured = baseline.seconds_per_token if baseline is not None else None
        return measured if measured is not None else self.verify_step_s

    def cost_ratio(self, baseline: RunStats | None = None) -> float | None:
        """c = draft step / target step (see ``target_step_s`` for where the target step comes from)."""
        target_step = self.target_step_s(baseline)
        if self.draft_step_s is None or not target_step:
            return None
        return self.draft_step_s / target_step

    def speedup(self, baseline: RunStats | None) -> float | None:
        """Measured tokens/s over the plain ``baseline``'s tokens/s."""
        if baseline is None or self.tokens_per_s is None or not baseline.tokens_per_s:
            return None
        return self.tokens_per_s / baseline.tokens_per_s


def correction_kind(it: Iteration) -> CorrectionKind:
    """What the token an iteration ends with is, as every view shows it.

    An iteration that drafted nothing (the last one of a budget, a drafter with nothing to
    propose) is a plain target step: one forward, one token, nothing free. Schema 2 traces say
    "plain"; version 1 traces called it a "bonus" with zero drafts, which is read as "plain" here.
    """
    kind = it.correction.kind
    return "plain" if kind == "bonus" and not it.drafted else kind


def verified_rows(it: Iteration) -> int:
    """How many tokens the iteration's target forward scored: every drafted token (every tree node)
    plus the last committed token, whose row gives the correction."""
    return (len(it.tree) if it.tree is not None else len(it.drafted)) + 1


def costs_from_timings(iterations: Iterable[Iteration]) -> CostTable | None:
    """T(k) and the draft step as recorded iterations timed them; None without a timed T(1).

    T(k) is the median ``verify_time_s`` of the iterations that scored k tokens (a plain run's
    steps and a speculative run's 0-draft iterations are T(1)), linear between the k that occur and
    not beyond the largest: nothing is extrapolated. The draft step is the draft time per drafted
    token (per tree node). Pass a plain baseline's iterations with the speculative run's, so that
    T(1) is known.
    """
    verify: dict[int, list[float]] = defaultdict(list)
    draft_time_s, drafted = 0.0, 0
    for it in iterations:
        rows = verified_rows(it)
        verify[rows].append(it.verify_time_s)
        draft_time_s += it.draft_time_s  # as RunStats.draft_step_s: drafting that found nothing counts
        drafted += rows - 1
    medians = {k: statistics.median(times) for k, times in verify.items()}
    measured = {k: t for k, t in medians.items() if t > 0}
    if 1 not in measured:
        return None
    return CostTable.from_measured(draft_time_s / drafted if drafted else 0.0, measured, max(measured))


def _bump(counts: list[int], index: int) -> None:
    """counts[index] += 1, growing counts to fit."""
    counts.extend([0] * (index + 1 - len(counts)))
    counts[index] += 1


def _add_into(totals: list[int], counts: list[int]) -> None:
    """totals += counts elementwise, growing totals to fit."""
    totals.extend([0] * (len(counts) - len(totals)))
    for i, count in enumerate(counts):
        totals[i] += count


def summarise(events: Iterable[Event], baseline: Iterable[Event] | None = None) -> dict[str, Any]:
    """The ``--json`` summary of one run's events, compared with a plain ``baseline`` run if given."""
    return summary_of(RunStats.of(events), RunStats.of(baseline) if baseline is not None else None)


def summary_of(stats: RunStats, baseline: RunStats | None = None) -> dict[str, Any]:
    """The ``--json`` summary of a run's stats; its keys are a public interface for other tools.

    Without a ``RunFinished`` (a run cut short) the text is None, the token ids are empty and the
    finish reason is "cancelled"; without a ``RunStarted`` the run's settings are None.
    """
    finished = stats.finished
    summary: dict[str, Any] = {
        "text": finished.text if finished else None,
        "token_ids": list(finished.token_ids) if finished else [],
        "finish_reason": finished.reason if finished else "cancelled",
        "iterations": stats.iterations,
        "drafted": stats.drafted,
        "accepted": stats.accepted,
        "acceptance_rate": stats.acceptance_rate,
        "alpha_estimate": stats.alpha_estimate,
        "mean_accepted_length": stats.mean_accepted_length,
        "per_position_acceptance": stats.per_position_acceptance,
        "tokens_per_s": stats.tokens_per_s,
        "decode_time_s": stats.decode_time_s,
        "draft_time_s": stats.draft_time_s,
        "verify_time_s": stats.verify_time_s,
        "draft_step_s": stats.draft_step_s,
        "verify_step_s": stats.verify_step_s,
        **_settings(stats.started),
    }
    if baseline is not None:
        base_finished = baseline.finished
        summary.update(
            baseline_tokens_per_s=baseline.tokens_per_s,
            baseline_text=base_finished.text if base_finished else None,
            target_step_s=baseline.seconds_per_token,
            cost_ratio_c=stats.cost_ratio(baseline),
            speedup=stats.speedup(baseline),
            identical=summary["token_ids"] == (list(base_finished.token_ids) if base_finished else []),
        )
    return summary


_SETTINGS = (
    "prefill_time_s",
    "target",
    "draft",
    "drafter",
    "gamma",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "max_new_tokens",
    "device",
    "dtype",
)


def _settings(started: RunStarted | None) -> dict[str, Any]:
    """The run's settings as summary keys (all None when the ``RunStarted`` event is missing)."""
    return {
        **{key: getattr(started, key) if started else None for key in _SETTINGS},
        "prompt_tokens": len(started.prompt_token_ids) if started else None,
        "lossy": started.lossy if started else None,
    }
