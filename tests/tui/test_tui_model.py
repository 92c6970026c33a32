"""The UI's model, without Textual: wrapping, the recording and its stats, playback, the gate, the fake."""

from __future__ import annotations

import random
import threading

import pytest

from specviz.decoding.events import Iteration, RunFinished, RunStarted, dumps
from specviz.tui.pause_gate import PauseGate
from specviz.tui.playback import PaceClock
from specviz.tui.race import race_verdict
from specviz.tui.recording import Recording, split_runs
from specviz.tui.run_stats import (
    acceptance_by_position,
    accepted_length_histogram,
    running_acceptance,
    summarise,
)
from specviz.tui.source import RunSettings
from specviz.tui.stream_layout import Piece, StreamLayout
from tests.support.fake_source import FakeSource
from tests.support.traces import DATA, greedy_race_events, sampled_events

WORDS = [" the", " cat", "\n", " supercalifragilistic", ".", "x" * 25, " é", " 漢字", "\n\n", "a\nb", ""]


def _full_layout(pieces: list[Piece], width: int) -> list:
    layout = StreamLayout(width)
    layout.append(pieces)
    return layout.lines


@pytest.mark.parametrize("seed", range(40))
def test_incremental_wrapping_equals_wrapping_from_scratch(seed: int) -> None:
    rng = random.Random(seed)
    width = rng.randint(1, 30)
    pieces = [Piece(rng.choice(WORDS), "accepted", i) for i in range(rng.randint(0, 60))]
    layout = StreamLayout(width)
    n = 0
    while n < len(pieces):
        step = rng.randint(1, 5)
        layout.append(pieces[n : n + step])
        n += step
        if rng.random() < 0.3:
            n = rng.randint(0, n)
            layout.truncate(n)
    assert layout.lines == _full_layout(pieces[:n], width)
    for line in layout.lines:
        assert sum(s.cells for s in line) <= max(width, 2)  # a 2-cell glyph may exceed width 1
    shown = "".join(s.text for line in layout.lines for s in line)
    assert shown == "".join(p.text for p in pieces[:n]).replace("\n", "")


def test_wrapping_breaks_between_tokens_and_at_newlines() -> None:
    layout = StreamLayout(10)
    layout.append([Piece("hello", "a", 0), Piece(" world", "a", 1), Piece("!\nnext", "a", 2)])
    assert [[s.text for s in line] for line in layout.lines] == [["hello"], [" world", "!"], ["next"]]
    assert layout.locate(1, 6).iteration == 2
    assert layout.locate(1, 5).iteration == 1
    assert layout.locate(1, 7) is None


def test_appending_rewraps_only_the_last_line() -> None:
    layout = StreamLayout(20)
    layout.append([Piece(" word", "accepted", i) for i in range(5000)])
    lines = len(layout)
    assert layout.append([Piece(" more", "accepted", 5000)]) == lines - 1


def test_recording_prefix_sums_match_a_direct_count(sampled_events) -> None:
    run = Recording.of(sampled_events)
    assert run.started is not None and run.finished is not None
    for n in (0, 1, 7, len(run)):
        shown = run.iterations[:n]
        stats = summarise(run, n)
        assert stats.drafted == sum(len(it.drafted) for it in shown)
        assert stats.accepted == sum(it.n_accepted for it in shown)
        assert stats.tokens == sum(len(it.new_token_ids) for it in shown)
        if n:
            assert stats.mean_accepted_length >= 1
            assert stats.decode_time_s == pytest.approx(
                sum(it.draft_time_s + it.verify_time_s for it in shown)
            )
    assert run.text(len(run)) == run.finished.text
    assert run.token_ids(len(run)) == run.finished.token_ids


def test_per_position_acceptance_ignores_discarded_drafts(sampled_events) -> None:
    its = [e for e in sampled_events if isinstance(e, Iteration)]
    reached = accepted = 0
    for it in its:
        for d in it.drafted:
            if d.position == 1 and d.verdict != "discarded":
                reached += 1
                accepted += d.verdict == "accepted"
    assert acceptance_by_position(its)[1] == pytest.approx(accepted / reached)
    assert sum(accepted_length_histogram(its)) == len(its)
    rates = running_acceptance(its)
    assert rates[-1] == pytest.approx(sum(i.n_accepted for i in its) / sum(len(i.drafted) for i in its))


def test_baseline_gives_cost_ratio_and_measured_speedup(greedy_race_events) -> None:
    plain, spec = split_runs(greedy_race_events)
    stats = summarise(spec, len(spec), plain)
    base_step = plain.decode_time(len(plain)) / plain.committed(len(plain))
    assert stats.baseline_tokens_per_s == pytest.approx(1 / base_step)
    assert stats.cost_ratio == pytest.approx(
        (spec.draft_time(len(spec)) / spec.drafted(len(spec))) / base_step
    )
    assert stats.measured_speedup == pytest.approx(stats.tokens_per_s * base_step)


def test_split_runs_and_race_verdict(greedy_race_events) -> None:
    plain, spec = split_runs(greedy_race_events)
    assert not plain.speculative and spec.speculative
    assert race_verdict(plain, spec).identical is True
    sampled = Recording.of(sampled_events())
    assert race_verdict(plain, sampled).identical is None


def test_pace_clock_reveals_iterations_at_their_recorded_times() -> None:
    clock = PaceClock([0.1, 0.3, 0.6], speed=1.0)
    assert clock.due() == 0
    assert clock.advance(0.1) == 1
    assert clock.advance(0.1) == 1
    clock.speed = 2.0
    assert clock.advance(0.05) == 2
    assert not clock.done
    assert clock.finish() == 3 and clock.done
    assert PaceClock([0.1, 0.3, 0.6], start=2).time == pytest.approx(0.3)


def test_pause_gate_holds_and_grants_single_steps() -> None:
    gate = PauseGate(paused=True, poll_s=0.01)
    passed: list[int] = []
    stop = threading.Event()

    def decoder() -> None:
        while gate.wait(stop.is_set):
            passed.append(1)

    thread = threading.Thread(target=decoder)
    thread.start()
    try:
        stop.wait(0.05)
        assert passed == []
        gate.grant(2)
        for _ in range(100):
            if len(passed) == 2:
                break
            stop.wait(0.01)
        stop.wait(0.05)
        assert len(passed) == 2
    finally:
        stop.set()
        thread.join(2)
    assert not thread.is_alive()


def test_fake_source_is_deterministic_and_lossless_in_greedy_mode() -> None:
    settings = RunSettings(prompt="Tell me", gamma=3, temperature=0.0, seed=11, max_new_tokens=50)
    fake = FakeSource()
    a, b = list(fake(settings)), list(fake(settings))
    assert [dumps(e) for e in a] == [dumps(e) for e in b]
    plain = list(fake(settings.evolve(mode="autoregressive")))
    assert (
        isinstance(a[0], RunStarted) and isinstance(a[-1], RunFinished) and isinstance(plain[-1], RunFinished)
    )
    assert a[-1].token_ids == plain[-1].token_ids
    assert len(a[-1].token_ids) == 50
    for it in a[1:-1]:
        verdicts = [d.verdict for d in it.drafted]
        # accepted* then (rejected discarded*)? and a resample exactly when something was rejected
        k = it.n_accepted
        assert verdicts[:k] == ["accepted"] * k
        assert all(v == "discarded" for v in verdicts[k + 1 :])
        assert (it.correction.kind == "resampled") == ("rejected" in verdicts)
        assert it.new_token_ids == (*(d.token_id for d in it.drafted[:k]), it.correction.token_id)


def test_fixture_traces_are_what_the_fake_source_makes() -> None:
    """If this fails, the fake changed: rerun ``python -m tests.tui.traces`` and update the snapshots."""
    for name, events in (("sampled.jsonl", sampled_events()), ("greedy_race.jsonl", greedy_race_events())):
        expected = "".join(dumps(e) + "\n" for e in events)
        assert (DATA / name).read_text(encoding="utf-8") == expected


def test_run_settings_validate() -> None:
    with pytest.raises(ValueError):
        RunSettings(prompt="x", gamma=0)
    with pytest.raises(ValueError):
        RunSettings(prompt="x", top_p=1.5)
    started = next(FakeSource()(RunSettings(prompt="x", gamma=6, temperature=0.7, seed=4)))
    assert isinstance(started, RunStarted)
    assert RunSettings.from_run_started(started) == RunSettings(prompt="x", gamma=6, temperature=0.7, seed=4)
