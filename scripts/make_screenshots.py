"""Render screenshots/*.svg of the main specviz views from the real app, replaying a recorded trace.

    python scripts/make_screenshots.py [TRACE.jsonl] [--out screenshots]

No model is loaded: the app replays the trace headless at fixed terminal sizes. A trace holding a
plain run and a speculative run (``specviz`` records both in a race) also yields the race view.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from textual.pilot import Pilot

from specviz.decoding.events import Event, read_trace
from specviz.tui.app import SpecvizApp

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACE = ROOT / "screenshots" / "default-pair.jsonl"  # recorded from the real default pair
# The default pair with the hybrid tree drafter (--drafter hybrid --gamma 12) on a code edit.
TREE_TRACE = ROOT / "screenshots" / "tree-pair.jsonl"

Prepare = Callable[[SpecvizApp, Pilot], Awaitable[None]]


async def _first_rejection(app: SpecvizApp, pilot: Pilot) -> None:
    """Select the first iteration whose draft was rejected: the interesting one to inspect."""
    rejected = next((it for it in app.run_recording.iterations if it.correction.kind == "resampled"), None)
    if rejected is not None:
        app.jump_to(rejected.index)
    await pilot.pause()


async def _richest_tree(app: SpecvizApp, pilot: Pilot) -> None:
    """Select the tree iteration with a refused node and the longest path: a tree worth inspecting."""
    trees = [it for it in app.run_recording.iterations if it.tree]
    refused = [it for it in trees if any(node.verdict == "rejected" for node in it.tree or ())]
    if refused or trees:
        best = max(refused or trees, key=lambda it: (it.n_accepted, len(it.tree or ())))
        app.jump_to(best.index)
    await pilot.pause()


@dataclass(frozen=True)
class View:
    name: str
    size: tuple[int, int]
    keys: tuple[str, ...] = ()
    prepare: Prepare | None = None
    needs_race: bool = False
    title: str = field(default="specviz")
    trace: Path | None = None  # None: the trace given on the command line


VIEWS = (
    View("stream-80x24", (80, 24)),
    View("inspector-rejection-80x24", (80, 24), prepare=_first_rejection),
    View("stream-wide", (140, 40), prepare=_first_rejection),
    View("charts", (120, 36), keys=("2",)),
    View("theory", (120, 36), keys=("3",)),
    View("race", (120, 30), keys=("x", "end"), needs_race=True),
    View("help", (100, 40), keys=("question_mark",)),
    View("tree-inspector", (120, 40), prepare=_richest_tree, trace=TREE_TRACE),
)


async def render(view: View, events: list[Event]) -> str | None:
    app = SpecvizApp(events=events, blink=False)
    async with app.run_test(size=view.size) as pilot:
        await pilot.pause()
        if view.needs_race and app.race_runs is None:
            return None
        if view.prepare is not None:
            await view.prepare(app, pilot)
        if view.keys:
            await pilot.press(*view.keys)
        await pilot.pause()
        return app.export_screenshot(title=view.title)


async def make(trace: Path, out: Path) -> list[Path]:
    events = list(read_trace(trace))
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for view in VIEWS:
        svg = await render(view, list(read_trace(view.trace)) if view.trace else events)
        if svg is None:
            print(f"skipped {view.name}: the trace has no plain run to race against")
            continue
        path = out / f"{view.name}.svg"
        path.write_text(svg, encoding="utf-8")
        written.append(path)
        print(f"wrote {path}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "trace", nargs="?", type=Path, default=DEFAULT_TRACE, help="JSON-lines trace to replay"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="folder for the SVG files")
    args = parser.parse_args(argv)
    asyncio.run(make(args.trace, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
