"""Screens compared with approved SVG snapshots (``pytest --snapshot-update`` to re-approve).

Driven by the recorded fixture traces, with time-derived numbers hidden and cursors not blinking,
so a snapshot changes only when the UI does.
"""

from __future__ import annotations

from specviz.decoding.events import Event, read_trace
from specviz.tui.app import SpecvizApp
from tests.support.traces import DATA


def replay(events: list[Event]) -> SpecvizApp:
    return SpecvizApp(events=events, show_timings=False, blink=False)


def test_stream_80x24(snap_compare, sampled_events) -> None:
    assert snap_compare(replay(sampled_events), terminal_size=(80, 24))


def test_rejection_in_the_inspector_80x24(snap_compare, sampled_events) -> None:
    app = replay(sampled_events)

    async def select_first_rejection(pilot) -> None:
        first = next(it for it in app.run_recording.iterations if it.correction.kind == "resampled")
        app.jump_to(first.index)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=select_first_rejection)


def test_draft_pending_verification_80x24(snap_compare, sampled_events) -> None:
    assert snap_compare(
        replay(sampled_events), press=["w", "home", "right", "right", "right"], terminal_size=(80, 24)
    )


def test_greedy_wide_140x40(snap_compare, greedy_race_events) -> None:
    assert snap_compare(replay(greedy_race_events), terminal_size=(140, 40))


def test_charts_120x36(snap_compare, greedy_race_events) -> None:
    assert snap_compare(replay(greedy_race_events), press=["2"], terminal_size=(120, 36))


def test_theory_100x30(snap_compare, sampled_events) -> None:
    assert snap_compare(replay(sampled_events), press=["3"], terminal_size=(100, 30))


def test_race_finished_120x30(snap_compare, greedy_race_events) -> None:
    assert snap_compare(replay(greedy_race_events), press=["x", "end"], terminal_size=(120, 30))


def test_help_80x30(snap_compare, sampled_events) -> None:
    assert snap_compare(replay(sampled_events), press=["question_mark"], terminal_size=(80, 30))


def test_tree_inspector_100x30(snap_compare) -> None:
    """A token-tree iteration: two refused children of the root, then a path of two and a bonus;
    30 rows leave the inspector 8, so its untested subtrees are collapsed."""
    app = replay(list(read_trace(DATA / "tree.jsonl")))

    async def select_the_tree(pilot) -> None:
        app.jump_to(5)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=select_the_tree)
