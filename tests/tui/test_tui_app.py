"""The app driven by keys (Textual's pilot), fed by the fake source or a recorded trace."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import TextArea

from specviz.decoding.events import Event, Iteration, RunFinished, dumps, read_trace
from specviz.decoding.settings import RunSettings, gamma_fields, parse_gamma
from specviz.tui.app import SpecvizApp
from specviz.tui.widgets.charts import ChartsPanel
from specviz.tui.widgets.help_screen import HelpScreen
from specviz.tui.widgets.inspector import IterationInspector, token_repr
from specviz.tui.widgets.race_view import RacePanel
from specviz.tui.widgets.settings_bar import SettingsBar
from specviz.tui.widgets.stats_bar import StatsBar
from specviz.tui.widgets.theory_view import TheoryPanel
from specviz.tui.widgets.token_stream import TokenStream
from tests.support.fake_source import FakeSource

from .conftest import TIMEOUT_S, WatchedGate, run_done, wait_until

SIZE = (100, 32)
SETTINGS = RunSettings(
    prompt="Explain speculative decoding.", gamma=4, temperature=0.8, seed=1, max_new_tokens=60
)


def live_app(tmp_path: Path, **kwargs) -> SpecvizApp:
    options = {"factory": FakeSource(), "settings": SETTINGS, "export_dir": tmp_path, "blink": False}
    options.update(kwargs)
    return SpecvizApp(**options)


def stream(app: SpecvizApp) -> TokenStream:
    return app.query_one("#stream", TokenStream)


def first_rejection(app: SpecvizApp) -> int:
    return next(i for i, it in enumerate(app.run_recording.iterations) if it.correction.kind == "resampled")


# -- replay ------------------------------------------------------------------------------------------


async def test_replay_opens_at_the_end_with_the_last_iteration_selected(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        run = app.run_recording
        finished = sampled_events[-1]
        assert isinstance(finished, RunFinished)
        assert len(run) == finished.iterations
        assert app.playhead.revealed == len(run) and app.playhead.selected == len(run) - 1
        assert stream(app).shown == len(run)
        assert app.query_one("#inspector", IterationInspector).index == len(run) - 1
        view = app.query_one("#stats", StatsBar).view
        assert view is not None and view.stats is not None
        assert view.stats.committed == len(finished.token_ids)
        assert "γ 4" in app.query_one("#settings", SettingsBar).plain
        assert app.query_one("#prompt", TextArea).text == run.started.prompt
        assert app.query_one("#prompt", TextArea).read_only


async def test_step_back_step_first_last_move_the_playhead(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        total = len(app.run_recording)
        await pilot.press("left", "left", "b")
        assert app.playhead.revealed == total - 3 and app.playhead.selected == total - 4
        assert stream(app).shown == total - 3
        assert app.query_one("#stats", StatsBar).view.shown == total - 3
        expected_tokens = sum(len(it.new_token_ids) for it in app.run_recording.iterations[: total - 3])
        assert app.query_one("#stats", StatsBar).view.stats.committed == expected_tokens
        await pilot.press("right")
        assert app.playhead.revealed == total - 2
        await pilot.press("home")
        assert app.playhead.revealed == 0 and app.playhead.selected is None
        assert app.query_one("#inspector", IterationInspector).index is None
        assert stream(app).layout_lines[0][0][1] == "prompt"
        await pilot.press("n")
        assert app.playhead.revealed == 1 and app.playhead.selected == 0
        await pilot.press("end")
        assert app.playhead.revealed == total
        await pilot.press("right")  # at the end of a finished replay: nothing to reveal
        assert app.playhead.revealed == total


async def test_tokens_are_styled_by_their_status(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        i = first_rejection(app)
        it = app.run_recording.iterations[i]
        expected = [d.verdict for d in it.drafted] + ["resampled"]
        assert [status for _, status in stream(app).statuses_of(i)] == expected
        bonus = next(k for k, x in enumerate(app.run_recording.iterations) if x.correction.kind == "bonus")
        assert stream(app).statuses_of(bonus)[-1][1] == "bonus"
        # Styles come from component classes, with a text style besides colour (NO_COLOR still reads).
        rejected = stream(app).get_component_rich_style("status--rejected", partial=True)
        discarded = stream(app).get_component_rich_style("status--discarded", partial=True)
        resampled = stream(app).get_component_rich_style("status--resampled", partial=True)
        assert rejected.strike and rejected.bold
        assert discarded.strike and discarded.dim
        assert resampled.underline
        # ...and the rendered line really carries them.
        app.jump_to(it.index)
        await pilot.pause()
        strips = [stream(app).render_line(y) for y in range(stream(app).size.height)]
        struck = [seg.text for strip in strips for seg in strip if seg.style is not None and seg.style.strike]
        rejected_text = next(d.text for d in it.drafted if d.verdict == "rejected")
        assert rejected_text.replace("\n", "↵") in "".join(struck)


async def test_hiding_drafts_and_iteration_marks(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        statuses = {s for line in stream(app).layout_lines for _, s, _ in line}
        assert {"rejected", "discarded", "boundary"} <= statuses
        await pilot.press("o", "i")
        statuses = {s for line in stream(app).layout_lines for _, s, _ in line}
        assert not statuses & {"rejected", "discarded", "boundary"}
        text = "".join(t for line in stream(app).layout_lines for t, s, _ in line if s != "prompt")
        assert text == app.run_recording.finished.text.replace("\n", "")


async def test_jump_to_an_iteration(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j", "1", "0", "enter")
        await pilot.pause()
        assert app.playhead.revealed == 11
        assert app.run_recording.iterations[app.playhead.selected].index == 10
        await pilot.press("j", "escape")
        assert app.playhead.revealed == 11


async def test_two_phase_step_shows_the_draft_pending_then_verified(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("w", "home", "right")
        assert app.playhead.pending and app.playhead.revealed == 0 and app.playhead.selected == 0
        drafted = app.run_recording.iterations[0].drafted
        assert [s for _, s in stream(app).statuses_of(0)] == ["pending"] * len(drafted)
        await pilot.press("right")
        assert not app.playhead.pending and app.playhead.revealed == 1
        assert "pending" not in {s for _, s in stream(app).statuses_of(0)}
        await pilot.press("right", "left")
        assert not app.playhead.pending and app.playhead.revealed == 1


async def test_clicking_a_token_selects_its_iteration(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("home")
        for _ in range(6):
            await pilot.press("right")
        lines = stream(app).layout_lines
        y, x = next(
            (y, sum(len(t) for t, _, _ in line[:k]))
            for y, line in enumerate(lines)
            for k, (_, status, iteration) in enumerate(line)
            if iteration == 2 and status != "boundary"
        )
        await pilot.click("#stream", offset=(x, y))
        assert app.playhead.selected == 2 and app.playhead.revealed == 6
        assert app.query_one("#inspector", IterationInspector).index == 2


async def test_playback_reveals_at_the_measured_pace_and_stops_at_the_end(
    sampled_events: list[Event],
) -> None:
    app = SpecvizApp(events=sampled_events, blink=False, start_at="start")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.playhead.revealed == 0
        await pilot.press("space")
        assert app.playing and app.playhead.revealed < len(app.run_recording)
        for _ in range(6):
            await pilot.press("plus")
        assert app.playhead.speed == 16.0
        await wait_until(pilot, lambda: not app.playing)
        assert app.playhead.revealed == len(app.run_recording)
        await pilot.press("minus", "minus", "minus", "minus", "minus", "minus")
        await pilot.press("space", "space")  # replay from the start, then pause
        assert not app.playing and app.playhead.revealed < len(app.run_recording)


async def test_replay_cannot_run_or_change_settings(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        before = app.next_settings
        await pilot.press("r", "G", "t")
        assert app.next_settings == before
        assert not app.decoding
        notices = [n.message for n in app._notifications]
        assert notices[0].startswith("Replay: there is no model to run.")
        assert notices[1:] == ["Replay shows a recorded run; settings apply to live runs."] * 2


# -- charts and theory ---------------------------------------------------------------------------------


async def test_charts_follow_the_playhead(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        charts = app.query_one("#charts", ChartsPanel)
        assert app.query_one("#tabs").active == "tab-charts"
        data = charts.data
        assert data is not None
        stats = app.query_one("#stats", StatsBar).view.stats
        assert data.running[-1] == pytest.approx(stats.acceptance_rate)
        assert len(data.running) == len(app.run_recording)
        assert sum(data.lengths) == len(app.run_recording)
        assert len(data.theory_curve) == 16 and data.gamma == 4
        await pilot.press("home")
        for _ in range(5):
            await pilot.press("right")
        await pilot.pause()
        assert len(charts.data.running) == 5


async def test_theory_cost_ratio_keys(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        theory = app.query_one("#theory", TheoryPanel)
        view = app.query_one("#stats", StatsBar).view
        measured = view.stats.cost_ratio(view.baseline)
        assert theory.cost_ratio == pytest.approx(measured, abs=1e-4)
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert theory.cost_ratio == pytest.approx(round(measured + 0.1, 2), abs=0.011)
        assert app.query_one("#tabs").active == "tab-theory"


# -- live runs -------------------------------------------------------------------------------------------


async def test_live_run_streams_every_iteration(tmp_path: Path) -> None:
    app = live_app(tmp_path, autorun=True)
    expected = list(FakeSource()(SETTINGS))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: not app.decoding)
        run = app.run_recording
        assert run.finished is not None and run.finished.text == expected[-1].text
        assert [dumps(it) for it in run.iterations] == [
            dumps(e) for e in expected if isinstance(e, Iteration)
        ]
        assert app.playhead.revealed == len(run) and app.playhead.selected == len(run) - 1
        assert app.query_one("#stats", StatsBar).view.state.startswith("■")


class CountingSource:
    """The fake, counting the events it was asked for (i.e. computed).

    Its iterations wait for ``go``: the UI can take seconds to process its first messages (seen
    here even on an idle machine), long enough for an ungated fake to finish the whole run before
    the test's first key press lands.
    """

    def __init__(self) -> None:
        self.produced = 0
        self.go = threading.Event()

    def __call__(self, settings: RunSettings) -> Iterator[Event]:
        for event in FakeSource()(settings):
            if isinstance(event, Iteration):
                assert self.go.wait(timeout=TIMEOUT_S), "the test never let the source go"
            self.produced += 1
            yield event


async def test_pause_holds_the_decoder_and_step_pulls_one_iteration(tmp_path: Path, monkeypatch) -> None:
    gates: list[WatchedGate] = []

    def watched_gate() -> WatchedGate:
        gates.append(WatchedGate())
        return gates[-1]

    monkeypatch.setattr("specviz.tui.app.PauseGate", watched_gate)
    source = CountingSource()
    app = live_app(tmp_path, factory=source, settings=SETTINGS.evolve(max_new_tokens=400))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: app.run_recording.started is not None)
        await pilot.press("space")
        assert app.playhead.paused
        gate = gates[-1]
        source.go.set()
        # An iteration already asked for when pausing arrives; then the decoder is held in the gate
        # (paused, no step granted), so it cannot compute another one until a key lets it.
        await wait_until(pilot, lambda: gate.holding and len(app.run_recording) == source.produced - 1)
        held = source.produced
        # RunStarted, plus the first iteration if the worker had passed the gate before the pause.
        assert held in (1, 2)
        assert app.run_recording.finished is None
        revealed = app.playhead.revealed
        await pilot.press("end")
        assert app.playhead.revealed == len(app.run_recording) >= revealed
        waits = gate.waits
        await pilot.press("right")  # one step past what was decoded: exactly one more iteration
        await wait_until(
            pilot,
            lambda: gate.waits == waits + 1 and gate.holding and len(app.run_recording) == held,
        )
        assert source.produced == held + 1, "a step computes exactly one iteration"
        assert app.playhead.revealed == len(app.run_recording)
        await pilot.press("space")  # resume: follows the decoder to the end
        assert not app.playhead.paused
        await wait_until(pilot, lambda: not app.decoding)
        assert app.run_recording.finished is not None
        assert app.playhead.revealed == len(app.run_recording)


async def test_step_back_during_a_live_run_replays_recorded_iterations(tmp_path: Path) -> None:
    app = live_app(tmp_path, autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: not app.decoding)
        total = len(app.run_recording)
        await pilot.press("left", "left")
        assert app.playhead.revealed == total - 2 and len(app.run_recording) == total
        await pilot.press("right")
        assert app.playhead.revealed == total - 1


async def test_changing_gamma_applies_to_the_next_run(tmp_path: Path) -> None:
    app = live_app(tmp_path, autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: not app.decoding)
        await pilot.press("G", "G", "T", "d", "S")
        nxt = app.next_settings
        assert (nxt.gamma, nxt.temperature, nxt.drafter, nxt.seed) == (6, 1.0, "ngram", 2)
        assert "γ 4→6" in app.query_one("#settings", SettingsBar).plain
        assert app.run_recording.started.gamma == 4
        await pilot.press("r")
        await wait_until(pilot, lambda: not app.decoding and app.run_recording.finished is not None)
        started = app.run_recording.started
        assert (started.gamma, started.temperature, started.drafter, started.seed) == (6, 1.0, "ngram", 2)
        assert max(len(it.drafted) for it in app.run_recording.iterations) == 6
        assert "→" not in app.query_one("#settings", SettingsBar).plain


async def test_automatic_gamma_shows_its_cap_and_the_gamma_keys_change_the_cap(tmp_path: Path) -> None:
    gamma, auto_gamma = gamma_fields(parse_gamma("auto"))  # as `specviz run --gamma auto` sets them
    app = live_app(tmp_path, settings=SETTINGS.evolve(gamma=gamma, auto_gamma=auto_gamma))
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one("#settings", SettingsBar)
        assert "γ auto (≤ 16)" in bar.plain and "next run" in bar.plain
        await pilot.press("g")
        assert "γ auto (≤ 15)" in bar.plain
        await pilot.press("g", "G")
        assert "γ auto (≤ 15)" in bar.plain
        assert (app.next_settings.gamma, app.next_settings.auto_gamma) == (15, True)
        await pilot.press("r")
        await wait_until(pilot, lambda: not app.decoding and app.run_recording.finished is not None)
        assert app.run_recording.started.gamma == 15
        assert "γ auto (≤ 15)" in bar.plain and "→" not in bar.plain
        await pilot.press("G")
        assert "γ auto (≤ 15)→auto (≤ 16)" in bar.plain


async def test_edited_prompt_is_decoded(tmp_path: Path) -> None:
    app = live_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        assert isinstance(app.focused, TextArea)
        await pilot.press("end", "space", "H", "i")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: run_done(app))
        assert app.run_recording.started.prompt == SETTINGS.prompt + " Hi"
        assert isinstance(app.focused, TokenStream)


async def test_a_failing_decoder_is_reported_not_raised(tmp_path: Path) -> None:
    def broken(settings: RunSettings):
        events = FakeSource()(settings)
        yield next(events)
        yield next(events)
        raise RuntimeError("out of memory [simulated]")

    app = live_app(tmp_path, factory=broken, autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: not app.decoding)
        assert len(app.run_recording) == 1
        assert any("out of memory" in n.message for n in app._notifications)


async def test_record_to_writes_a_replayable_trace(tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    app = live_app(tmp_path, autorun=True, record_to=trace)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: not app.decoding)
    recorded = list(read_trace(trace))
    assert [dumps(e) for e in recorded] == [dumps(e) for e in FakeSource()(SETTINGS)]


# -- race ----------------------------------------------------------------------------------------------------


async def test_replayed_race(greedy_race_events: list[Event]) -> None:
    app = SpecvizApp(events=greedy_race_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.baseline is not None and not app.baseline.speculative
        await pilot.press("x")
        assert app.playing
        await pilot.press("end")
        assert not app.playing
        race = app.query_one("#race", RacePanel)
        assert race.shown == (len(app.race_runs["plain"]), len(app.race_runs["speculative"]))
        assert "identical" in race.status_text


async def test_race_without_a_plain_run_in_the_trace(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        assert not app.playing and app.race_runs is None


# -- export, help, palette ---------------------------------------------------------------------------------


async def test_export_writes_svg_metrics_and_trace(tmp_path: Path, sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, export_dir=tmp_path, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("left", "left", "e")
        await pilot.pause()
        revealed = app.playhead.revealed
    svg, metrics_json, metrics_csv, trace = (
        next(tmp_path.glob(f"*.{ext}")) for ext in ("svg", "json", "csv", "jsonl")
    )
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<svg")
    metrics = json.loads(metrics_json.read_text(encoding="utf-8"))
    shown = [e for e in sampled_events if isinstance(e, Iteration)][:revealed]
    assert metrics["iterations_shown"] == revealed
    assert metrics["accepted"] == sum(it.n_accepted for it in shown)
    assert metrics["drafted"] == sum(len(it.drafted) for it in shown)
    assert metrics["acceptance_rate"] == pytest.approx(metrics["accepted"] / metrics["drafted"])
    committed = sum(len(it.new_token_ids) for it in shown)
    assert metrics["mean_accepted_length"] == pytest.approx(committed / revealed)
    rows = list(csv.DictReader(metrics_csv.open(encoding="utf-8")))
    assert len(rows) == revealed and int(rows[0]["index"]) == shown[0].index
    assert [dumps(e) for e in read_trace(trace)] == [dumps(e) for e in sampled_events]


async def test_help_lists_the_bindings(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Race", "Export", "Step", "Back", "Jump to iteration", "γ +1"} <= titles


async def test_statuses_differ_without_colour(sampled_events: list[Event]) -> None:
    """NO_COLOR / 16 colours: every status keeps a distinct text style (strike, dim, underline...)."""
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        attributes = {}
        for status in ("prompt", "accepted", "rejected", "discarded", "resampled", "bonus", "pending"):
            style = stream(app).get_component_rich_style(f"status--{status}", partial=True)
            attributes[status] = tuple(
                bool(a) for a in (style.bold, style.dim, style.italic, style.underline, style.strike)
            )
        assert len(set(attributes.values())) == len(attributes)


def test_run_replay_reports_a_corrupt_trace(tmp_path: Path) -> None:
    from specviz.decoding.events import TraceError
    from specviz.tui.app import run_replay

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"v": 1, "type": "iteration"}\n', encoding="utf-8")
    with pytest.raises(TraceError, match=r"bad\.jsonl:1"):
        run_replay(bad)


def _inspector_text(app: SpecvizApp, index: int) -> str:
    from rich.console import Console

    inspector = app.query_one("#inspector", IterationInspector)
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(inspector.render_iteration(app.run_recording, app.run_recording.iterations[index]))
    return console.export_text()


async def test_inspector_rows_for_a_rejection(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        i = first_rejection(app)
        it = app.run_recording.iterations[i]
        text = _inspector_text(app, i)
        rejected = next(d for d in it.drafted if d.verdict == "rejected")
        assert f"{rejected.u:.3f}" in text and f"{rejected.ratio:.2f}" in text
        assert "✗ rejected" in text and "↻ resampled" in text and "residual top:" in text
        assert "norm(max(0, p − q))" in text
        assert text.count("⊘ discarded") == sum(d.verdict == "discarded" for d in it.drafted)


async def test_inspector_greedy_argmax_and_cross_tokenizer_pieces(greedy_race_events: list[Event]) -> None:
    events = list(greedy_race_events)
    # A speculative iteration whose first draft was accepted and a later one rejected: both cells.
    k = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, Iteration)
        and e.drafted
        and e.drafted[0].verdict == "accepted"
        and e.n_accepted < len(e.drafted)
    )
    it = events[k]
    pieces = (replace(it.drafted[0], draft_pieces=("spec", "ul")), *it.drafted[1:])
    events[k] = replace(it, drafted=pieces)
    app = SpecvizApp(events=events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        index = next(n for n, x in enumerate(app.run_recording.iterations) if x.drafted == pieces)
        text = _inspector_text(app, index)
        assert "target argmax" in text and " u " not in text
        assert "draft pieces" in text and '"spec" "ul"' in text
        # An accepted draft is the target's argmax; a discarded one may happen to be too.
        assert it.n_accepted >= 1
        assert text.count("= same") == sum(d.token_id == d.target_argmax for d in it.drafted)
        rejected = it.drafted[it.n_accepted]
        argmax_text = app.run_recording.token_text(rejected.target_argmax)
        assert f"≠ {token_repr(argmax_text)}" in text


async def test_a_theme_restyles_the_statuses(sampled_events: list[Event]) -> None:
    app = SpecvizApp(events=sampled_events, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        dark = stream(app).get_component_rich_style("status--accepted", partial=True).color
        app.theme = "textual-light"
        await pilot.pause()
        light = stream(app).get_component_rich_style("status--accepted", partial=True).color
        assert dark != light
        strip = stream(app).render_line(0)  # re-rendered with the new theme, not served from the cache
        assert stream(app).rich_style.bgcolor in {seg.style.bgcolor for seg in strip if seg.style is not None}
