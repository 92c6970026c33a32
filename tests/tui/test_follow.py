"""Class mode: followers read the teacher's trace as it is written, each with a private playhead.

The teacher is a live app on the fake source recording to a trace in tmp_path; followers are apps
in follow mode on that file, all running in one event loop (several ``run_test`` contexts at once).
The file-level cases (a file that appears later, a line written in two halves, a file started
afresh) are checked on :class:`~specviz.tui.follow.TraceTail` poll by poll, and on a follower app.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from textual.widgets import TabbedContent

from specviz.decoding.events import Event, Iteration, RunFinished, RunStarted, dumps
from specviz.decoding.settings import RunSettings
from specviz.tui.app import SpecvizApp
from specviz.tui.follow import Restarted, Skipped, TailState, TraceTail, trace_file_problem
from specviz.tui.playhead import Playhead
from specviz.tui.widgets.follow_status import FollowStatus
from tests.support.fake_source import FakeSource

from .conftest import TIMEOUT_S, run_done, wait_until

SIZE = (100, 32)
SETTINGS = RunSettings(
    prompt="Explain speculative decoding.", gamma=4, temperature=0.8, seed=1, max_new_tokens=60
)


def follower(trace: Path) -> SpecvizApp:
    return SpecvizApp(follow=trace, blink=False)


def status(app: SpecvizApp) -> FollowStatus:
    return app.query_one("#follow-status", FollowStatus)


def kind(app: SpecvizApp) -> str | None:
    state = status(app).state
    return state.kind if state is not None else None


def lines(events: list[Event]) -> str:
    return "".join(dumps(e) + "\n" for e in events)


def iterations(events: list[Event]) -> list[str]:
    return [dumps(e) for e in events if isinstance(e, Iteration)]


def shown_iterations(app: SpecvizApp) -> list[str]:
    return [dumps(it) for it in app.run_recording.iterations]


class Released:
    """The fake source, each iteration held until the test releases it: the teacher's run is still
    going while the followers move, whatever the machine's speed."""

    def __init__(self) -> None:
        self._permits = threading.Semaphore(0)

    def release(self, n: int) -> None:
        self._permits.release(n)

    def __call__(self, settings: RunSettings) -> Iterator[Event]:
        for event in FakeSource()(settings):
            if isinstance(event, Iteration):
                assert self._permits.acquire(timeout=TIMEOUT_S), "the test never released this iteration"
            yield event


# -- a teacher and two followers -------------------------------------------------------------------


async def test_a_teacher_and_two_followers_each_with_a_private_playhead(tmp_path: Path) -> None:
    trace = tmp_path / "class.jsonl"
    source = Released()
    teacher = SpecvizApp(factory=source, settings=SETTINGS, record_to=trace, export_dir=tmp_path, blink=False)
    a, b = follower(trace), follower(trace)
    expected = list(FakeSource()(SETTINGS))
    total = len(iterations(expected))
    assert total > 12
    async with teacher.run_test(size=SIZE) as tp, a.run_test(size=SIZE) as ap, b.run_test(size=SIZE) as bp:
        try:
            # The followers open before the teacher has written anything: they say they wait.
            await wait_until(ap, lambda: kind(a) == "missing" and kind(b) == "missing")
            assert status(a).plain.startswith(f"⟳ waiting for {trace} to appear")
            await tp.press("r")
            source.release(6)
            await wait_until(tp, lambda: all(len(app.run_recording) == 6 for app in (teacher, a, b)))
            for app in (a, b):
                assert app.playhead.follow and app.playhead.revealed == 6 and app.decoding
                assert status(app).plain == f"● following {trace} — live"
            assert "c Catch up" in _footer(a) and "c Catch up" not in _footer(teacher)
            await bp.press("right")  # → at the newest iteration: nothing to show yet, B stays live
            assert b.playhead.follow and b.playhead.revealed == 6

            await ap.press("left", "left")  # follower A steps back...
            assert a.playhead.revealed == 4 and a.playhead.holding
            assert teacher.playhead.revealed == 6 and b.playhead.revealed == 6  # ...and only A moved
            await bp.press("3")  # follower B switches tabs: A's screen does not
            assert b.query_one("#tabs", TabbedContent).active == "tab-theory"
            assert a.query_one("#tabs", TabbedContent).active == "tab-stream"

            source.release(5)  # the teacher goes on; A holds where it is, B and the teacher follow
            await wait_until(tp, lambda: all(len(app.run_recording) == 11 for app in (teacher, a, b)))
            assert a.playhead.revealed == 4 and a.playhead.selected == 3
            assert b.playhead.revealed == 11 and teacher.playhead.revealed == 11
            assert status(a).plain == "⏸ 7 iterations behind · c catches up"
            assert status(b).plain.endswith("— live")
            await ap.press("right")
            assert a.playhead.revealed == 5 and status(a).plain.startswith("⏸ 6 iterations behind")

            await ap.press("c")  # catch up: A is live again
            assert a.playhead.revealed == 11 and a.playhead.follow
            assert status(a).plain == f"● following {trace} — live"
            await ap.press("space")  # space holds a follower where it is, and catches up again
            assert a.playhead.holding and status(a).plain.startswith("⏸ holding at the newest iteration")
            await ap.press("space")
            assert a.playhead.follow and status(a).plain.endswith("— live")
            source.release(total)
            await wait_until(
                tp,
                lambda: run_done(teacher) and all(app.run_recording.finished is not None for app in (a, b)),
            )
            # Both followers end with exactly the teacher's iterations, all of them shown.
            assert shown_iterations(teacher) == iterations(expected)
            for app in (a, b):
                assert shown_iterations(app) == shown_iterations(teacher)
                assert app.playhead.revealed == total and not app.decoding
                assert dumps(app.run_recording.finished) == dumps(teacher.run_recording.finished)
            assert status(a).plain.startswith(f"● following {trace} · the teacher's run is over")
        finally:
            source.release(total)  # a failed check must not leave the teacher's worker waiting


def _footer(app: SpecvizApp) -> str:
    """The keys the footer shows (the screen's active bindings, as Textual's Footer reads them)."""
    active = app.screen.active_bindings
    return " · ".join(f"{key} {a.binding.description}" for key, a in active.items() if a.binding.show)


async def test_the_end_key_catches_up_and_run_keys_say_a_follower_cannot_run(tmp_path: Path) -> None:
    trace = tmp_path / "class.jsonl"
    trace.write_text(lines(list(FakeSource()(SETTINGS))), encoding="utf-8")
    app = follower(trace)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.run_recording.finished is not None)
        total = len(app.run_recording)
        await pilot.press("home")
        assert app.playhead.revealed == 0 and not app.playhead.follow
        await pilot.press("end")
        assert app.playhead.revealed == total and app.playhead.follow
        before = app.next_settings
        await pilot.press("r", "G", "M", "x")
        assert app.next_settings == before and not app.decoding
        messages = [n.message for n in app._notifications]
        assert len(messages) == 4
        assert all(
            m.startswith("You are following the teacher's run: a follower cannot run") for m in messages
        )


async def test_a_held_follower_stays_on_its_run_when_the_teacher_starts_another(tmp_path: Path) -> None:
    trace = tmp_path / "class.jsonl"
    spec1 = list(FakeSource()(SETTINGS))
    plain = list(FakeSource()(SETTINGS.evolve(mode="autoregressive", temperature=0.0, max_new_tokens=20)))
    spec2 = list(FakeSource()(SETTINGS.evolve(temperature=0.0, max_new_tokens=20)))
    trace.write_text(lines(spec1), encoding="utf-8")
    app = follower(trace)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.run_recording.finished is not None)
        first = app.run_recording
        await pilot.press("left")
        with trace.open("a", encoding="utf-8") as handle:
            handle.write(lines(plain))
        await wait_until(pilot, lambda: len(app.feed_runs) == 2 and app.feed_runs[1].finished is not None)
        # Still on the first run, one iteration back: the teacher's new run did not take it away.
        assert app.run_recording is first and app.playhead.revealed == len(first) - 1
        behind = 1 + len(iterations(plain))
        assert (
            status(app).plain
            == f"⏸ the teacher started a new run · {behind} iterations behind · c catches up"
        )
        await pilot.press("c")
        assert app.run_recording is app.feed_runs[1] and app.playhead.follow
        assert shown_iterations(app) == iterations(plain)
        with trace.open("a", encoding="utf-8") as handle:
            handle.write(lines(spec2))
        # Live again: the next run is followed as it comes, compared with the plain run before it.
        await wait_until(pilot, lambda: len(app.feed_runs) == 3 and app.run_recording.finished is not None)
        assert app.run_recording is app.feed_runs[2] and shown_iterations(app) == iterations(spec2)
        assert app.baseline is app.feed_runs[1]
        await pilot.press("x")  # the teacher's plain and speculative runs race on the follower's screen
        assert app.race_runs == {"plain": app.feed_runs[1], "speculative": app.feed_runs[2]}


def test_a_playhead_on_a_feed_holds_alone_and_catches_up() -> None:
    events = list(FakeSource()(SETTINGS))
    playhead = Playhead()
    playhead.attach(None)  # a feed: no decoder to hold
    for event in events[:6]:
        playhead.receive(event)
    assert playhead.decoding and playhead.follow and playhead.revealed == 5
    assert not playhead.step() and playhead.follow  # nothing newer yet: still live
    assert playhead.back() and playhead.holding and playhead.revealed == 4
    for event in events[6:9]:
        playhead.receive(event)
    assert playhead.revealed == 4  # the feed goes on without this playhead
    playhead.catch_up()
    assert playhead.follow and playhead.revealed == 8
    assert playhead.toggle_play(0.0) and playhead.holding  # space: hold here...
    playhead.receive(events[9])
    assert playhead.revealed == 8
    assert playhead.toggle_play(0.0) and playhead.follow and playhead.revealed == 9  # ...and catch up


# -- the file: appearing later, written in halves, started afresh ------------------------------------


async def test_a_file_that_appears_later_and_a_line_written_in_two_halves(tmp_path: Path) -> None:
    trace = tmp_path / "class.jsonl"
    events = list(FakeSource()(SETTINGS))
    app = follower(trace)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: kind(app) == "missing")
        trace.touch()
        await wait_until(pilot, lambda: kind(app) == "empty")
        assert status(app).plain.startswith("⟳ waiting for the teacher's run")
        first_iteration = dumps(events[1]) + "\n"
        half = len(first_iteration) // 2
        with trace.open("a", encoding="utf-8") as handle:  # one write: read by the same poll
            handle.write(dumps(events[0]) + "\n" + first_iteration[:half])
        await wait_until(pilot, lambda: app.run_recording.started is not None)
        assert len(app.run_recording) == 0 and kind(app) == "reading"
        with trace.open("a", encoding="utf-8") as handle:
            handle.write(first_iteration[half:])
        await wait_until(pilot, lambda: len(app.run_recording) == 1)
        assert shown_iterations(app) == iterations(events)[:1]
        assert not app._notifications  # the half line was never taken for a broken one


async def test_a_file_started_afresh_starts_the_follower_afresh(tmp_path: Path) -> None:
    trace = tmp_path / "class.jsonl"
    first = list(FakeSource()(SETTINGS))
    shorter = list(FakeSource()(SETTINGS.evolve(prompt="Short.", max_new_tokens=8)))
    longer = list(FakeSource()(SETTINGS.evolve(prompt="A longer one.", max_new_tokens=120)))
    trace.write_text(lines(first), encoding="utf-8")
    app = follower(trace)

    def showing(events: list[Event]) -> bool:
        started = events[0]
        assert isinstance(started, RunStarted)
        run = app.run_recording
        return run.started is not None and run.started.prompt == started.prompt and run.finished is not None

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: showing(first))
        await pilot.press("home")  # held at the start of the run that is about to vanish
        trace.write_text(lines(shorter), encoding="utf-8")  # truncated: the file shrinks
        await wait_until(pilot, lambda: showing(shorter))
        assert len(app.feed_runs) == 1 and shown_iterations(app) == iterations(shorter)
        assert app.playhead.follow and app.playhead.revealed == len(app.run_recording)
        assert any("started afresh" in n.message for n in app._notifications)
        trace.write_text(lines(longer), encoding="utf-8")  # rewritten in place, longer than before
        await wait_until(pilot, lambda: showing(longer))
        assert len(app.feed_runs) == 1 and shown_iterations(app) == iterations(longer)
        replacement = tmp_path / "new.jsonl"
        replacement.write_text(lines(first), encoding="utf-8")
        os.replace(replacement, trace)  # another file under the same name
        await wait_until(pilot, lambda: showing(first))
        assert len(app.feed_runs) == 1 and shown_iterations(app) == iterations(first)
        assert app.baseline is None


# -- TraceTail, poll by poll ------------------------------------------------------------------------


def test_tail_waits_for_the_file_then_reads_only_complete_lines(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    events = list(FakeSource()(SETTINGS))
    tail = TraceTail(trace)
    assert tail.poll() == [TailState("missing")]
    assert tail.poll() == []  # unchanged: nothing to say
    trace.write_bytes(b"")
    assert tail.poll() == [TailState("empty")]
    text = lines(events[:3]).encode()
    cut = len(lines(events[:2]).encode()) + 7  # inside the third line
    with trace.open("ab") as handle:
        handle.write(text[:cut])
    got = tail.poll()
    assert got[0] == TailState("reading")
    assert [dumps(e) for e in got[1:]] == [dumps(e) for e in events[:2]]
    with trace.open("ab") as handle:
        handle.write(text[cut:])
    assert [dumps(e) for e in tail.poll()] == [dumps(events[2])]


def test_tail_costs_one_stat_when_nothing_changes(tmp_path: Path, monkeypatch) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(lines(list(FakeSource()(SETTINGS))), encoding="utf-8")
    reads = 0
    read = TraceTail._read

    def counting(self: TraceTail, updates: list) -> None:
        nonlocal reads
        reads += 1
        read(self, updates)

    monkeypatch.setattr(TraceTail, "_read", counting)
    tail = TraceTail(trace)
    assert tail.poll()
    for _ in range(5):
        assert tail.poll() == []
    assert reads == 1


def test_tail_notices_a_file_truncated_replaced_or_rewritten_in_place(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    one = list(FakeSource()(SETTINGS))
    two = list(FakeSource()(SETTINGS.evolve(prompt="Two.", max_new_tokens=8)))
    three = list(FakeSource()(SETTINGS.evolve(prompt="Three, longer.", max_new_tokens=120)))
    trace.write_text(lines(one), encoding="utf-8")
    tail = TraceTail(trace)
    assert len([u for u in tail.poll() if isinstance(u, Iteration)]) == len(iterations(one))

    def after_restart(events: list[Event]) -> None:
        got = tail.poll()
        assert isinstance(got[0], Restarted), got[:2]
        assert [dumps(e) for e in got if not isinstance(e, TailState | Restarted)] == [
            dumps(e) for e in events
        ]

    trace.write_text(lines(two), encoding="utf-8")  # shrinks
    after_restart(two)
    trace.write_text(lines(three), encoding="utf-8")  # same inode, grows past the old end
    after_restart(three)
    other = tmp_path / "other.jsonl"
    other.write_text(lines(three), encoding="utf-8")  # identical bytes, another inode
    os.replace(other, trace)
    after_restart(three)


def test_tail_refuses_a_file_that_is_not_a_trace_and_skips_a_bad_line_inside_one(tmp_path: Path) -> None:
    events = list(FakeSource()(SETTINGS))
    csv = tmp_path / "grades.csv"
    csv.write_text("name,grade\nada,A\n", encoding="utf-8")
    tail = TraceTail(csv)
    (state,) = tail.poll()
    assert state.kind == "error" and "grades.csv:1: not a specviz trace event" in state.detail
    assert trace_file_problem(csv) == state.detail
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text(lines(events[:2]) + "{oops\n" + lines(events[2:4]), encoding="utf-8")
    got = TraceTail(damaged).poll()
    skipped = [u for u in got if isinstance(u, Skipped)]
    assert len(skipped) == 1 and "damaged.jsonl:3: not a specviz trace event" in skipped[0].problem
    assert [dumps(e) for e in got if isinstance(e, RunStarted | Iteration | RunFinished)] == [
        dumps(e) for e in events[:4]
    ]
    assert TraceTail(tmp_path).poll()[0].kind == "error"  # a directory
