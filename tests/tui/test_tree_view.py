"""Token-tree iterations in the UI: the inspector's tree, the stream's marks, the drafter key.

Driven by tests/support/data/tree.jsonl, a greedy hybrid run of the real tree decoder on toy models
(``tests.support.traces.tree_events``): the prompt is a function and the toy target writes it again
with ``total`` renamed to ``result``, so prompt lookup is refused at the old name and the draft
model's branches are accepted elsewhere.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from specviz.cli import main
from specviz.decoding.events import Event, Iteration, dumps, read_trace
from specviz.decoding.settings import RunSettings
from specviz.tui.app import SpecvizApp
from specviz.tui.settings_steps import DrafterCycle
from specviz.tui.widgets.inspector import IterationInspector
from specviz.tui.widgets.legend import StatusLegend
from specviz.tui.widgets.settings_bar import SettingsBar, settings_markup
from specviz.tui.widgets.status_styles import token_repr
from specviz.tui.widgets.token_stream import TokenStream
from specviz.tui.widgets.tree_view import path_end, tree_rows, tree_table
from tests.support.fake_source import FakeSource
from tests.support.traces import DATA, TREE_PROMPT

from .conftest import run_done, wait_until

SMALL, MEDIUM, LARGE = (80, 24), (100, 30), (120, 40)
# The fixture's iteration 5: two refused children of the root, then a path of two, then a bonus.
TWO_REFUSALS = 5
# Its iteration 1: prompt lookup proposes the old name (refused) with a 12-node chain under it.
LOOKUP_REFUSED = 1
TREE_DRAFTERS_TOO = ("model", "ngram", "tree", "hybrid", "lookup-tree")


@pytest.fixture
def tree_events() -> list[Event]:
    return list(read_trace(DATA / "tree.jsonl"))


def replay(events: list[Event]) -> SpecvizApp:
    return SpecvizApp(events=events, blink=False, show_timings=False)


def text_of(renderable: object, width: int = 100) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return [line.rstrip() for line in console.export_text().splitlines()]


def inspector_lines(app: SpecvizApp, index: int, *, collapse: bool | None) -> list[str]:
    inspector = app.query_one("#inspector", IterationInspector)
    run = app.run_recording
    return text_of(inspector.render_iteration(run, run.iterations[index], collapse=collapse))


def shown_lines(app: SpecvizApp) -> list[str]:
    """What the inspector shows now, wide enough that nothing wraps."""
    return text_of(app.query_one("#inspector-body", Static).content, width=160)


def notes(app: SpecvizApp) -> str:
    return "\n".join(n.message for n in app._notifications)


@pytest.mark.usefixtures("one_torch_thread")
def test_the_tree_fixture_is_what_the_tree_decoder_makes() -> None:
    """tree.jsonl is the real tree_decode's output, deterministic: regenerate it if this fails
    after a change to the decoder (``python -m tests.support.traces``)."""
    from tests.support.traces import tree_events as make

    def decisions(events: list[Event]) -> list[tuple[object, ...]]:
        # What the decoder decided, not every field: a field added to the events later with a
        # default does not make the fixture stale.
        return [
            (e.tree, e.new_token_ids, e.correction.kind, e.correction.token_id)
            for e in events
            if isinstance(e, Iteration)
        ]

    made = make()
    assert [dumps(e) for e in made] == [dumps(e) for e in make()]  # deterministic
    events = list(read_trace(DATA / "tree.jsonl"))
    assert decisions(events) == decisions(made)
    its = [e for e in events if isinstance(e, Iteration)]
    # What the tests below rely on: trees from both sources, refusals, untested nodes, both corrections.
    assert all(it.tree for it in its[:-1]) and {n.source for it in its for n in it.tree or ()} == {
        "draft",
        "lookup",
    }
    assert {it.correction.kind for it in its} >= {"resampled", "bonus"}


# -- the inspector's tree ------------------------------------------------------------------------------


async def test_the_inspector_draws_a_known_tree_line_by_line(tree_events: list[Event]) -> None:
    app = replay(tree_events)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        lines = inspector_lines(app, TWO_REFUSALS, collapse=False)
    assert lines == [
        "tree: 12 nodes (4 deep) · path 2 accepted · 3 tokens from 1 target forward",
        "tree                   from    draft  target  verdict",
        '◉ after "…urn result"',
        '├─✗ "def"              model   0.372   0.006  ✗ rejected',
        '│ ├─· "\\n       "      model   0.478   0.088  · untested',
        '│ │ ├─· " total"       model   0.239   0.012  · untested',
        '│ │ │ └─· " +="        model   0.708   0.806  · untested',
        '│ │ └─· " +="          model   0.216   0.037  · untested',
        '│ ├─· "(xs"            model   0.115   0.021  · untested',
        '│ └─· " xs"            model   0.062   0.021  · untested',
        '├─✗ "):"               model   0.126   0.008  ✗ rejected',
        '│ ├─· " f"             model   0.194   0.061  · untested',
        '│ └─· " in"            model   0.167   0.008  · untested',
        '└─● "\\n"               model   0.080   0.711  ✓ accepted',
        '  └─● "def"            model   0.838   0.616  ✓ accepted',
        '    └─★ " f"           target      –   0.847  ★ bonus',
        '★ bonus " f"  target 0.847 (softmax at T=1)  the path reached a leaf: a free token from the target',
        '  target top at T=1: " f" 0.847 · ":" 0.039 · " x" 0.036 · "\\n" 0.009 · " 0" 0.008',
        "draft, target: softmax at T=1 · greedy follows the target's argmax",
    ]


async def test_the_accepted_path_is_marked_by_glyph_and_style(tree_events: list[Event]) -> None:
    app = replay(tree_events)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        inspector = app.query_one("#inspector", IterationInspector)
        names = ("accepted", "rejected", "untested", "bonus", "resampled")
        styles = {s: inspector.get_component_rich_style(f"status--{s}", partial=True) for s in names}
    assert styles["accepted"] != styles["untested"] and styles["rejected"].strike
    assert styles["untested"].dim
    for it in (e for e in tree_events if isinstance(e, Iteration) and e.tree):
        nodes = it.tree
        rows = tree_rows(it)
        table = tree_table(it, rows, lambda s: styles.get(s, Style()), greedy=True, root_text=None)
        cells = list(table.columns[0].cells)[1:]  # after the root's row
        assert len(cells) == len(rows)
        path = [row.node for row in rows if row.node is not None and row.status == "accepted"]
        # The path is the accepted nodes, a chain down from the root, in order.
        assert path == [n for n in nodes if n.verdict == "accepted"]
        assert [n.parent for n in path] == [-1, *(nodes.index(n) for n in path)][: len(path)]
        marks = {"accepted": "●", "rejected": "✗", "untested": "·", "bonus": "★", "resampled": "↻"}
        for row, cell in zip(rows, cells, strict=True):
            assert isinstance(cell, Text)
            assert cell.plain[len(row.prefix)] == marks[row.status]
            # The glyph and the token both carry the verdict's style (the branch lines do not).
            glyph, token = [span for span in cell.spans if span.start >= len(row.prefix)][:2]
            assert glyph.style == token.style == styles[row.status]
            assert cell.plain[token.start : token.end] == token_repr(row.text)
        # The correction hangs right under the path's end: one level deeper, its last child.
        correction = next(i for i, row in enumerate(rows) if row.node is None)
        end = path_end(nodes)
        if end >= 0:
            end_row = next(i for i, row in enumerate(rows) if row.node is nodes[end])
            assert len(rows[correction].prefix) == len(rows[end_row].prefix) + 2
        else:
            assert len(rows[correction].prefix) == 2


async def test_a_long_tree_collapses_its_untested_subtrees_where_rows_are_few(
    tree_events: list[Event],
) -> None:
    app = replay(tree_events)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert inspector_lines(app, LOOKUP_REFUSED, collapse=True)[:6] == [
            "tree: 12 nodes (11 deep) · path 0 accepted · 1 token from 1 target forward",
            "tree                       from    draft  target  verdict",
            '◉ after "…f(xs):\\n   "',
            '├─✗ " total" +10 untested  lookup      –   0.003  ✗ rejected',
            '├─✗ " 0"                   model   0.159   0.006  ✗ rejected',
            '└─↻ " result"              target      –   0.924  ↻ resampled',
        ]
        # 80x24: the inspector has 8 rows, so the tree on screen is the collapsed one, and the
        # path, both refusals and the bonus fit in them.
        app.jump_to(TWO_REFUSALS)
        await pilot.pause()
        small = shown_lines(app)
        assert small[3:8] == [
            '├─✗ "def" +6 untested  model   0.372   0.006  ✗ rejected',
            '├─✗ "):" +2 untested   model   0.126   0.008  ✗ rejected',
            '└─● "\\n"               model   0.080   0.711  ✓ accepted',
            '  └─● "def"            model   0.838   0.616  ✓ accepted',
            '    └─★ " f"           target      –   0.847  ★ bonus',
        ]
    app = replay(tree_events)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        app.jump_to(TWO_REFUSALS)
        await pilot.pause()
        large = shown_lines(app)
        assert not any(re.search(r"\+\d+ untested", line) for line in large)
        untested = sum(n.verdict == "untested" for n in app.run_recording.iterations[TWO_REFUSALS].tree)
        assert sum("· untested" in line for line in large) == untested == 8  # each has its row


# -- the stream and the two-phase step -----------------------------------------------------------------


async def test_a_tree_trace_replays_with_trees_marked_and_stepped_in_two_phases(
    tree_events: list[Event],
) -> None:
    app = replay(tree_events)
    async with app.run_test(size=MEDIUM) as pilot:
        await pilot.pause()
        stream = app.query_one("#stream", TokenStream)
        run = app.run_recording
        # Every tree iteration begins with ⋔ (the first one too); the stream is the winning path.
        marks = [
            (text, it) for line in stream.layout_lines for text, status, it in line if status == "boundary"
        ]
        trees = [i for i, it in enumerate(run.iterations) if it.tree]
        assert [it for text, it in marks if text == "⋔"] == trees and trees
        kept = ("accepted", "resampled", "bonus", "plain")
        shown = [text for i in range(len(run)) for text, status in stream.statuses_of(i) if status in kept]
        assert "".join(shown) == run.finished.text
        legend = app.query_one("#legend", StatusLegend)
        assert legend.tree_nodes == 12 and "⋔ tree: 12 nodes" in legend.plain
        assert "nodes 12" in app.query_one("#settings", SettingsBar).plain
        # w: the draft first (how many nodes, no verdicts), then the verification.
        await pilot.press("w", "home", "right", "right", "right")  # iteration 0 drafted, verified; 1 drafted
        it = run.iterations[LOOKUP_REFUSED]
        assert stream.statuses_of(LOOKUP_REFUSED) == [(f"({len(it.tree)} nodes drafted)", "pending")]
        pending = shown_lines(app)
        assert pending[0].startswith(f"⋔ {len(it.tree)} nodes drafted (11 deep)")
        assert not any(word in line for line in pending for word in ("accepted", "rejected", "untested"))
        assert sum("… pending" in line for line in pending) == len(it.tree)
        await pilot.press("right")
        verified = shown_lines(app)
        assert verified[0].startswith(f"tree: {len(it.tree)} nodes (11 deep) · path 0 accepted")
        assert stream.statuses_of(LOOKUP_REFUSED) == [(" total", "rejected"), (" result", "resampled")]


def test_a_tree_trace_replays_headless(capsys) -> None:
    from specviz.decoding.stats import summarise

    assert main(["replay", "--headless", str(DATA / "tree.jsonl")]) == 0
    captured = capsys.readouterr()
    summary = summarise(list(read_trace(DATA / "tree.jsonl")))
    assert captured.err == "" and "[finished: max_new_tokens]" in captured.out
    assert "hybrid drafter" in captured.out
    # The stream and the counts read the tree as its path: drafted = path + the first refusal.
    assert f"{summary['drafted']} / {summary['accepted']}" in captured.out


# -- the settings bar and the drafter key --------------------------------------------------------------


def test_the_settings_bar_counts_a_trees_nodes() -> None:
    from textual.content import Content

    def plain(started, next_run) -> str:
        return Content.from_markup(settings_markup(started, next_run)).plain

    tree = RunSettings(prompt="x", drafter="tree", gamma=12)
    assert "nodes 12" in plain(None, tree) and "γ" not in plain(None, tree)
    chain_run = next(FakeSource()(RunSettings(prompt="x", gamma=8)))
    assert "γ 8→12 nodes" in plain(chain_run, tree)
    tree_run = next(iter(read_trace(DATA / "tree.jsonl")))
    assert "nodes 12→γ auto (≤ 16)" in plain(tree_run, RunSettings(prompt="x", gamma=16, auto_gamma=True))


async def test_the_drafter_key_reaches_the_tree_drafters_with_auto_gamma_on() -> None:
    settings = RunSettings(prompt=TREE_PROMPT, gamma=16, auto_gamma=True, max_new_tokens=20)
    app = SpecvizApp(
        factory=FakeSource(), settings=settings, drafters=TREE_DRAFTERS_TOO, blink=False, show_timings=False
    )
    async with app.run_test(size=MEDIUM) as pilot:
        bar = app.query_one("#settings", SettingsBar)
        await pilot.press("d")
        assert app.next_settings.drafter == "ngram" and app.next_settings.auto_gamma
        await pilot.press("d")  # onto a tree drafter: RunSettings refuses auto γ with it
        assert (app.next_settings.drafter, app.next_settings.auto_gamma, app.next_settings.gamma) == (
            "tree",
            False,
            16,
        )
        assert "automatic γ is off" in notes(app) and "node budget" in notes(app)
        assert "nodes 16" in bar.plain and "auto" not in bar.plain
        await pilot.press("d", "d")
        assert app.next_settings.drafter == "lookup-tree" and not app.next_settings.auto_gamma
        await pilot.press("G")  # the budget steps like γ
        assert app.next_settings.gamma == 16  # the top rung of the γ ladder
        await pilot.press("g")
        assert app.next_settings.gamma == 15 and "nodes 15" in bar.plain
        await pilot.press("d")  # back onto a chain: automatic γ again
        assert app.next_settings.drafter == "model" and app.next_settings.auto_gamma
        assert "automatic γ is back on" in notes(app) and "γ auto (≤ 15)" in bar.plain
        # A run on a tree drafter starts (the fake decodes chains; the real decoder is tested live).
        await pilot.press("d", "d")
        await pilot.press("r")
        await wait_until(pilot, lambda: run_done(app))
        assert app.run_recording.started.drafter == "tree"


async def test_the_drafter_key_skips_tree_drafters_under_a_lossy_rule() -> None:
    settings = RunSettings(prompt=TREE_PROMPT, gamma=4, rule="threshold", max_new_tokens=20)
    app = SpecvizApp(
        factory=FakeSource(), settings=settings, drafters=TREE_DRAFTERS_TOO, blink=False, show_timings=False
    )
    async with app.run_test(size=MEDIUM) as pilot:
        await pilot.press("d")
        assert app.next_settings.drafter == "ngram" and notes(app) == ""
        await pilot.press("d")
        assert app.next_settings.drafter == "model" and app.next_settings.rule == "threshold"
        assert "d skips tree, hybrid, lookup-tree" in notes(app)


def test_the_drafter_cycle_keeps_every_step_valid() -> None:
    """Whatever the start, stepping through the offered drafters never makes settings RunSettings refuses."""
    for rule in ("lossless", "threshold"):
        for auto in (False, True):
            cycle = DrafterCycle()
            settings = RunSettings(prompt="x", gamma=12, auto_gamma=auto, rule=rule)  # type: ignore[arg-type]
            seen = []
            for _ in range(2 * len(TREE_DRAFTERS_TOO)):
                changes, _notice = cycle.step(settings, TREE_DRAFTERS_TOO)
                settings = settings.evolve(**changes)  # raises if the cycle made them invalid
                seen.append(settings.drafter)
                assert settings.gamma == 12
                if settings.drafter in ("model", "ngram"):
                    assert settings.auto_gamma == auto
            expected = TREE_DRAFTERS_TOO if rule == "lossless" else ("model", "ngram")
            assert set(seen) == set(expected)


@pytest.mark.usefixtures("one_torch_thread")
def test_the_inspector_shows_a_sampled_tree_with_its_uniforms() -> None:
    """Sampling: q and p are the real distributions, u is shown where a node was tested."""
    from tests.support.traces import tree_events as make

    events = make(temperature=1.0, max_new_tokens=12)
    it = next(e for e in events if isinstance(e, Iteration) and e.tree and e.correction.kind == "resampled")
    rows = tree_rows(it)
    lines = text_of(tree_table(it, rows, lambda s: Style(), greedy=False, root_text=None), width=120)
    assert lines[0].split() == ["tree", "from", "q", "draft", "p", "target", "u", "verdict"]
    for row, line in zip(rows, lines[2:], strict=True):  # after the header and the root
        node = row.node
        if node is None:  # the correction
            continue
        numbers = [c for c in line.split() if c.replace(".", "").isdigit() or c == "–"]
        u = "–" if node.u is None else f"{node.u:.3f}"
        assert numbers[-3:] == [f"{node.draft_prob:.3f}", f"{node.target_prob:.3f}", u]
        assert (node.u is None) == (node.verdict == "untested")


def _deep_lookup_run() -> list[Event]:
    """A sampled run whose one iteration is a 16-node lookup chain: 15 accepted, the last refused."""
    from specviz.decoding.events import Correction, DraftedToken, RunFinished, RunStarted, TreeNode

    words = [f" w{i}" for i in range(16)]
    nodes = tuple(
        TreeNode(i - 1, 100 + i, w, "lookup", 1.0, 0.9, 0.5, "accepted" if i < 15 else "rejected")
        for i, w in enumerate(words)
    )
    drafted = tuple(
        DraftedToken(i, 100 + i, w, 1.0, 0.9, 0.9, 0.5, "accepted" if i < 15 else "rejected", 100 + i, 0.9)
        for i, w in enumerate(words)
    )
    correction = Correction("resampled", 7, " end", 0.8, ())
    committed = (*range(100, 115), 7)
    it = Iteration(0, 16, drafted, correction, committed, "".join(words[:15]) + " end", 0.01, 0.2, 16, nodes)
    started = RunStarted(
        "speculative", "t", None, "lookup-tree", 16, 1.0, None, None, 0, 16, "cpu", "float32", "go", (1,), 0.1
    )
    return [started, it, RunFinished("max_new_tokens", it.new_text, committed, 1, 0.21)]


async def test_a_deep_chain_is_indented_one_cell_a_level_on_80_columns() -> None:
    app = replay(_deep_lookup_run())
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        app.jump_to(0)
        await pilot.pause()
        inspector = app.query_one("#inspector", IterationInspector)
        lines = text_of(app.query_one("#inspector-body", Static).content, width=inspector.content_size.width)
    rows = [line for line in lines if "lookup" in line]
    assert len(rows) == 16
    # One cell per level (two would push the numbers off 80 columns): the refused 16th node sits
    # 15 cells in, above the correction; and every number is whole.
    assert rows[0].startswith('└● " w0"') and rows[1].startswith(' └● " w1"')
    assert rows[15].startswith(" " * 15 + '├✗ " w15"')
    assert all(line.split()[-5:-2] == ["1.000", "0.900", "0.500"] for line in rows)
