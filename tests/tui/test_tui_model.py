"""The UI's model, without Textual: wrapping, the recording and its stats, playback, the playhead, the
gate, the live worker's body, the fake."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from specviz.decoding.events import Event, RunFinished, RunStarted, dumps, read_trace
from specviz.decoding.settings import RunSettings
from specviz.decoding.stats import RunStats
from specviz.tui.live_decode import TraceFile, decode_runs
from specviz.tui.pause_gate import PauseGate
from specviz.tui.playback import PaceClock
from specviz.tui.playhead import Playhead
from specviz.tui.race import race_verdict
from specviz.tui.recording import Recording, split_runs
from specviz.tui.stream_layout import Piece, StreamLayout
from specviz.tui.widgets.charts import ChartData, running_acceptance
from tests.support.fake_source import FakeSource
from tests.support.traces import DATA, greedy_race_events, sampled_events

from .conftest import TIMEOUT_S, WatchedGate

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


def test_recording_stats_at_a_playhead_are_the_stats_of_the_shown_iterations(sampled_events) -> None:
    run = Recording.of(sampled_events)
    assert run.started is not None and run.finished is not None
    for n in (0, 1, 7, len(run)):
        shown = run.iterations[:n]
        # A playhead knows no wall time: its stats are those of the shown iterations, unfinished.
        assert run.stats(n) == RunStats.of([run.started, *shown])
        assert run.committed(n) == sum(len(it.new_token_ids) for it in shown)
        assert run.decode_time(n) == pytest.approx(sum(it.draft_time_s + it.verify_time_s for it in shown))
    assert run.stats() is run.stats(len(run))
    assert run.cumulative_times()[-1] == run.decode_time(len(run))
    assert run.text(len(run)) == run.finished.text
    assert run.token_ids(len(run)) == run.finished.token_ids


def test_chart_series_use_the_stats_at_the_playhead(sampled_events, greedy_race_events) -> None:
    run = Recording.of(sampled_events)
    its = run.iterations
    rates = running_acceptance(run, len(run))
    assert len(rates) == len(run)
    assert rates[-1] == pytest.approx(sum(i.n_accepted for i in its) / sum(len(i.drafted) for i in its))
    data = ChartData.of(run, 10)
    assert data.by_position == run.stats(10).per_position_acceptance
    assert sum(data.lengths) == 10
    assert data.measured_speedup is None and data.cost_ratio == run.stats(10).cost_ratio()
    plain, spec = split_runs(greedy_race_events)
    raced = ChartData.of(spec, len(spec), plain.stats())
    assert raced.measured_speedup == pytest.approx(spec.stats().speedup(plain.stats()))
    assert raced.cost_ratio == pytest.approx(spec.stats().cost_ratio(plain.stats()))
    assert raced.theory_curve


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
    gate = WatchedGate(paused=True, poll_s=0.01)
    passed: list[int] = []
    stop = threading.Event()

    def decoder() -> None:
        while gate.wait(stop.is_set):
            passed.append(1)

    def until(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            assert time.monotonic() < deadline, "the decoding thread never got there"
            stop.wait(0.005)

    thread = threading.Thread(target=decoder)
    thread.start()
    try:
        until(lambda: gate.holding)
        assert passed == [] and gate.waits == 1
        gate.grant(2)
        # Two steps taken, then held again in its third wait: it cannot take a third by itself.
        until(lambda: gate.waits == 3 and gate.holding)
        assert len(passed) == 2
    finally:
        stop.set()
        thread.join(TIMEOUT_S)
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


def test_playhead_steps_jumps_and_shows_drafts_before_verifying_them(sampled_events) -> None:
    playhead = Playhead()
    playhead.load(Recording.of(sampled_events), "end")
    n = len(playhead.run)
    assert (playhead.revealed, playhead.selected) == (n, n - 1) and playhead.take_changed()
    assert not playhead.step() and not playhead.take_changed()  # a finished recording has no more
    assert playhead.back() and playhead.revealed == n - 1
    playhead.toggle_two_phase()
    playhead.first()
    assert playhead.step() and playhead.pending and (playhead.revealed, playhead.selected) == (0, 0)
    assert playhead.step() and not playhead.pending and playhead.revealed == 1
    playhead.jump(playhead.run.iterations[9].index)
    assert (playhead.revealed, playhead.selected) == (10, 9)
    assert not playhead.select(10) and playhead.select(3) and playhead.selected == 3


def test_playhead_plays_at_the_recorded_pace(sampled_events) -> None:
    playhead = Playhead()
    playhead.load(Recording.of(sampled_events), "start")
    times = playhead.run.cumulative_times()
    assert playhead.toggle_play(100.0) and playhead.playing
    assert playhead.tick(100.0 + times[2]) and playhead.revealed == 3
    assert playhead.change_speed(1) == 2.0
    assert not playhead.tick(100.0 + times[2])  # no time passed: nothing moved
    assert playhead.tick(100.0 + times[2] + times[-1]) and not playhead.playing
    assert playhead.revealed == len(playhead.run)


def test_playhead_holds_a_live_decoder_and_asks_it_for_single_steps(sampled_events) -> None:
    playhead, gate = Playhead(), PauseGate()
    playhead.attach(gate)
    playhead.load(Recording(), "start")
    started, first, second = sampled_events[:3]
    playhead.receive(started)
    playhead.receive(first)
    assert playhead.revealed == 1 and playhead.decoding  # following the decoder
    assert playhead.back() and gate.paused and playhead.revealed == 0  # navigating holds it
    assert playhead.step() and playhead.revealed == 1
    assert playhead.step() and playhead.revealed == 1  # past what was decoded: asked for, not here yet
    playhead.receive(second)
    assert playhead.revealed == 2
    assert playhead.toggle_play(0.0) and not gate.paused and playhead.follow  # resumed: follows again
    playhead.detach()
    assert not playhead.decoding and not playhead.paused


def test_decode_runs_records_a_trace_and_reports_a_failing_decoder(tmp_path) -> None:
    settings = RunSettings(prompt="Tell me", max_new_tokens=20)
    expected = [dumps(e) for e in FakeSource()(settings)]
    trace, path = TraceFile(tmp_path / "runs.jsonl"), tmp_path / "runs.jsonl"
    posted: list[Event] = []
    assert (
        decode_runs(FakeSource(), [(settings, posted.append)], lambda: False, trace=trace.next_target())
        is None
    )
    assert [dumps(e) for e in posted] == [dumps(e) for e in read_trace(path)] == expected

    def broken(settings: RunSettings):
        yield next(iter(FakeSource()(settings)))
        raise RuntimeError("out of memory [simulated]")

    error = decode_runs(broken, [(settings, posted.append)], lambda: False, trace=trace.next_target())
    assert error == "RuntimeError: out of memory [simulated]"
    assert len(list(read_trace(path))) == len(posted) == len(expected) + 1  # the second run appended
    assert decode_runs(FakeSource(), [(settings, posted.append)], lambda: True) is None
    assert len(posted) == len(expected) + 1  # cancelled before it started
