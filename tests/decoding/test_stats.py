"""The one statistics type and the one run summary: every number against a direct count of the events."""

from __future__ import annotations

import pytest

from specviz.decoding.events import (
    Correction,
    DraftedToken,
    Event,
    Iteration,
    RunFinished,
    RunStarted,
    read_trace,
)
from specviz.decoding.stats import RunStats, correction_kind, costs_from_timings, summarise, summary_of
from tests.support.traces import DATA

SUMMARY_KEYS = {
    "text",
    "token_ids",
    "finish_reason",
    "iterations",
    "drafted",
    "accepted",
    "acceptance_rate",
    "alpha_estimate",
    "mean_accepted_length",
    "per_position_acceptance",
    "tokens_per_s",
    "decode_time_s",
    "draft_time_s",
    "verify_time_s",
    "draft_step_s",
    "verify_step_s",
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
    "prompt_tokens",
    "lossy",
}
BASELINE_KEYS = {
    "baseline_tokens_per_s",
    "baseline_text",
    "target_step_s",
    "cost_ratio_c",
    "speedup",
    "identical",
}


@pytest.fixture
def sampled() -> list[Event]:
    return list(read_trace(DATA / "sampled.jsonl"))


@pytest.fixture
def race() -> tuple[list[Event], list[Event]]:
    """The plain run and the speculative run of the recorded greedy race."""
    events = list(read_trace(DATA / "greedy_race.jsonl"))
    second = [i for i, e in enumerate(events) if isinstance(e, RunStarted)][1]
    return events[:second], events[second:]


def _iterations(events: list[Event]) -> list[Iteration]:
    return [e for e in events if isinstance(e, Iteration)]


def _finished(events: list[Event]) -> RunFinished:
    return next(e for e in events if isinstance(e, RunFinished))


def test_counts_rates_and_times_equal_a_direct_count(sampled) -> None:
    its = _iterations(sampled)
    verified = [d for it in its for d in it.drafted if d.verdict != "discarded"]
    assert any(d.verdict == "discarded" for it in its for d in it.drafted)  # the trace exercises them
    stats = RunStats.of(sampled)
    drafted = sum(len(it.drafted) for it in its)
    accepted = sum(it.n_accepted for it in its)
    committed = sum(len(it.new_token_ids) for it in its)
    assert (stats.iterations, stats.drafted, stats.accepted) == (len(its), drafted, accepted)
    assert stats.verified == len(verified)
    assert stats.committed == committed == len(_finished(sampled).token_ids) == its[-1].total_tokens
    assert stats.acceptance_rate == pytest.approx(accepted / drafted)
    assert stats.alpha_estimate == pytest.approx(sum(d.overlap for d in verified) / len(verified))
    assert stats.mean_accepted_length == pytest.approx(committed / len(its))
    draft_time = sum(it.draft_time_s for it in its)
    verify_time = sum(it.verify_time_s for it in its)
    assert stats.draft_step_s == pytest.approx(draft_time / drafted)
    assert stats.verify_step_s == pytest.approx(verify_time / len(its))
    # A finished run is timed by its decode loop; without the finish, by its draft and verify times.
    assert stats.decode_time_s == _finished(sampled).wall_time_s
    assert stats.tokens_per_s == pytest.approx(committed / _finished(sampled).wall_time_s)
    unfinished = RunStats.of(e for e in sampled if not isinstance(e, RunFinished))
    assert unfinished.decode_time_s == pytest.approx(draft_time + verify_time)


def test_per_position_acceptance_ignores_discarded_drafts(sampled) -> None:
    its = _iterations(sampled)
    stats = RunStats.of(sampled)
    longest = max(len(it.drafted) for it in its)
    assert len(stats.per_position_acceptance) <= longest
    for position, rate in enumerate(stats.per_position_acceptance):
        reached = [d for it in its for d in it.drafted if d.position == position and d.verdict != "discarded"]
        assert rate == pytest.approx(sum(d.verdict == "accepted" for d in reached) / len(reached))


def test_accepted_length_histogram_counts_iterations_by_tokens_committed(sampled) -> None:
    its = _iterations(sampled)
    counts = RunStats.of(sampled).length_counts
    assert counts == [sum(len(it.new_token_ids) == k for it in its) for k in range(len(counts))]
    assert sum(counts) == len(its)
    assert len(counts) == 1 + max(len(it.new_token_ids) for it in its)


def test_nothing_to_measure_is_none_not_zero() -> None:
    empty = RunStats()
    assert empty.acceptance_rate is None
    assert empty.alpha_estimate is None
    assert empty.mean_accepted_length is None
    assert empty.tokens_per_s is None
    assert empty.draft_step_s is None and empty.verify_step_s is None
    assert empty.cost_ratio() is None and empty.speedup(RunStats()) is None
    assert empty.per_position_acceptance == []


def test_plain_run_has_no_acceptance_rate(race) -> None:
    plain, _ = race
    stats = RunStats.of(plain)
    assert stats.iterations > 0 and stats.drafted == 0
    assert stats.acceptance_rate is None and stats.alpha_estimate is None
    assert stats.mean_accepted_length == pytest.approx(1.0)


def test_baseline_gives_cost_ratio_and_speedup(race) -> None:
    plain_events, spec_events = race
    plain, spec = RunStats.of(plain_events), RunStats.of(spec_events)
    base_step = _finished(plain_events).wall_time_s / len(_finished(plain_events).token_ids)
    assert plain.seconds_per_token == pytest.approx(base_step)
    assert spec.target_step_s(plain) == pytest.approx(base_step)
    assert spec.cost_ratio(plain) == pytest.approx((spec.draft_time_s / spec.drafted) / base_step)
    assert spec.speedup(plain) == pytest.approx(spec.tokens_per_s * base_step)
    # Without a baseline, c is estimated from one verify pass per iteration.
    verify_step = spec.verify_time_s / spec.iterations
    assert spec.cost_ratio() == pytest.approx((spec.draft_time_s / spec.drafted) / verify_step)
    assert spec.speedup(None) is None


def test_pooled_runs_sum_their_counts(race) -> None:
    plain_events, spec_events = race
    spec = RunStats.of(spec_events)
    pooled = RunStats.pooled([spec, spec])
    assert (pooled.iterations, pooled.drafted, pooled.accepted) == (
        2 * spec.iterations,
        2 * spec.drafted,
        2 * spec.accepted,
    )
    assert pooled.acceptance_rate == pytest.approx(spec.acceptance_rate)
    assert pooled.alpha_estimate == pytest.approx(spec.alpha_estimate)
    assert pooled.per_position_acceptance == pytest.approx(spec.per_position_acceptance)
    assert pooled.length_counts == [2 * c for c in spec.length_counts]
    mixed = RunStats.pooled([spec, RunStats.of(plain_events)])
    assert mixed.acceptance_rate == pytest.approx(spec.acceptance_rate)  # plain drafts nothing


def test_stats_after_each_iteration_equal_the_stats_of_that_prefix(sampled) -> None:
    """The UI keeps a copy after every iteration; a copy must not change with the run."""
    started, its = sampled[0], _iterations(sampled)
    running = RunStats()
    running.observe(started)
    kept = [running.copy()]
    for it in its:
        running.observe(it)
        kept.append(running.copy())
    for n in (0, 1, 7, len(its)):
        assert kept[n] == RunStats.of([started, *its[:n]])


def test_summarise_a_run(sampled) -> None:
    summary = summarise(sampled)
    stats = RunStats.of(sampled)
    finished = _finished(sampled)
    assert set(summary) == SUMMARY_KEYS
    assert summary["token_ids"] == list(finished.token_ids) and summary["text"] == finished.text
    assert summary["finish_reason"] == finished.reason
    assert summary["acceptance_rate"] == stats.acceptance_rate
    assert summary["alpha_estimate"] == stats.alpha_estimate
    assert summary["per_position_acceptance"] == stats.per_position_acceptance
    assert summary["gamma"] == sampled[0].gamma
    assert summary["prompt_tokens"] == len(sampled[0].prompt_token_ids)
    assert summary == summary_of(stats)


def test_summarise_against_a_baseline(race) -> None:
    plain_events, spec_events = race
    summary = summarise(spec_events, plain_events)
    plain, spec = RunStats.of(plain_events), RunStats.of(spec_events)
    assert set(summary) == SUMMARY_KEYS | BASELINE_KEYS
    assert summary["baseline_tokens_per_s"] == pytest.approx(plain.tokens_per_s)
    assert summary["cost_ratio_c"] == pytest.approx(spec.cost_ratio(plain))
    assert summary["speedup"] == pytest.approx(spec.speedup(plain))
    assert summary["identical"] is (_finished(spec_events).token_ids == _finished(plain_events).token_ids)
    assert summary["baseline_text"] == _finished(plain_events).text


def test_a_run_cut_short_is_summarised_as_cancelled(sampled) -> None:
    summary = summarise(e for e in sampled if not isinstance(e, RunFinished))
    assert summary["finish_reason"] == "cancelled"
    assert summary["token_ids"] == [] and summary["text"] is None
    assert summary["iterations"] == len(_iterations(sampled))


def test_summarise_refuses_two_runs(race) -> None:
    plain_events, spec_events = race
    with pytest.raises(ValueError, match="more than one run"):
        summarise(plain_events + spec_events)


def _timed(drafted: int, draft_s: float, verify_s: float, kind: str = "bonus") -> Iteration:
    tokens = tuple(range(drafted))
    return Iteration(
        index=0,
        gamma=drafted,
        drafted=tuple(
            DraftedToken(i, i, f"<{i}>", 1.0, 1.0, 1.0, None, "accepted", i, 1.0) for i in range(drafted)
        ),
        correction=Correction(kind, 9, "<9>", 1.0, ()),  # type: ignore[arg-type]
        new_token_ids=(*tokens, 9),
        new_text="",
        draft_time_s=draft_s,
        verify_time_s=verify_s,
        total_tokens=drafted + 1,
    )


def test_costs_from_timings_are_the_median_verify_time_per_rows_scored() -> None:
    plain = [_timed(0, 0.0, t, "plain") for t in (0.09, 0.10, 0.30)]  # a slow outlier: the median ignores it
    speculative = [_timed(4, 0.04, t) for t in (0.15, 0.16, 0.14)]
    table = costs_from_timings([*plain, *speculative])
    assert table is not None
    assert table.target_step_s == pytest.approx(0.10) and table.verify_s[4] == pytest.approx(0.15)
    assert table.verify_s[2] == pytest.approx(0.125)  # T(3): on the line between timed k
    assert table.max_draft == 4  # nothing beyond the longest verify timed
    assert table.draft_step_s == pytest.approx(0.01)
    # Without a plain step timed, T(1) is unknown: no table, rather than a guessed one.
    assert costs_from_timings(speculative) is None


def test_a_zero_draft_iteration_is_a_plain_step_even_in_a_version_1_trace() -> None:
    assert correction_kind(_timed(0, 0.0, 0.1, "bonus")) == "plain"  # how version 1 traces said it
    assert correction_kind(_timed(0, 0.0, 0.1, "plain")) == "plain"
    assert correction_kind(_timed(2, 0.0, 0.1, "bonus")) == "bonus"
    assert correction_kind(_timed(2, 0.0, 0.1, "resampled")) == "resampled"
