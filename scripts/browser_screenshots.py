"""Photograph `specviz serve` in a real headless Chromium: screenshots/browser-*.png.

    .venv/bin/python scripts/browser_screenshots.py [--out screenshots] [--size 1280x800]

What a student sees in their browser, from the real server, a real browser and recorded traces
(no model, no timings that change between runs): a class following the teacher's trace, a replay's
charts and a race. Needs Chromium (Debian: `apt-get install chromium fonts-symbola`; Symbola draws
symbols such as ⏸ that the default monospace fonts lack; or SPECVIZ_CHROMIUM names a Chrome).
Each picture is taken once the page shows the text it is about and has stopped changing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the browser driver lives with the tests, which use it too

from tests.support.browser import find_chromium, launch, serving  # noqa: E402

DATA = ROOT / "tests" / "support" / "data"


@dataclass(frozen=True)
class Shot:
    name: str
    trace: Path
    command: str  # replay or follow
    shows: tuple[str, ...]  # text on the page once the app has drawn
    keys: tuple[str, ...] = ()
    then: tuple[str, ...] = ()  # text on the page once the keys have acted
    # follow: the teacher has recorded this many lines when the student opens the page, and
    # ``grown_to`` when the keys are pressed (the run goes on while the student looks back).
    recorded: int | None = None
    grown_to: int | None = None


SHOTS = (
    Shot(
        "browser-follow",
        DATA / "sampled.jsonl",
        "follow",
        shows=("● live", "it 14/14"),
        recorded=15,
        grown_to=20,
        keys=("left", "left"),  # a student steps back two iterations while the teacher goes on
        then=("2 iterations behind", "it 17/19"),
    ),
    Shot(
        "browser-charts",
        DATA / "sampled.jsonl",
        "replay",
        shows=("it 28/28",),
        keys=("2",),
        then=("acceptance rate",),
    ),
    Shot(
        "browser-race",
        DATA / "greedy_race.jsonl",
        "replay",
        shows=("1 Stream",),
        keys=("x", "end"),
        then=("plain",),
    ),
)


async def take(shot: Shot, chromium: str, out: Path, size: tuple[int, int], work: Path) -> Path:
    trace = work / "class.jsonl"  # a relative name: the page shows no temporary path
    lines = shot.trace.read_text(encoding="utf-8").splitlines(keepends=True)
    trace.write_text("".join(lines[: shot.recorded]), encoding="utf-8")
    with serving([shot.command, trace.name], log_dir=work, cwd=work) as served:
        async with launch(chromium) as browser:
            page = await browser.new_page()
            await page.open(served.url, size)
            await page.wait_for_text(*shot.shows)
            if shot.grown_to is not None:
                with trace.open("a", encoding="utf-8") as teacher:
                    teacher.writelines(lines[shot.recorded : shot.grown_to])
                await page.wait_for_text(f"it {shot.grown_to - 1}/{shot.grown_to - 1}")
            if shot.keys:
                await page.press(*shot.keys)
            await page.wait_for_text(*shot.then)
            await page.wait_until_quiet()
            return await page.screenshot(out / f"{shot.name}.png")


async def make(out: Path, size: tuple[int, int], chromium: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for shot in SHOTS:
        with tempfile.TemporaryDirectory(prefix="specviz-shot-") as work:
            path = await take(shot, chromium, out, size, Path(work))
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="folder for the PNG files")
    parser.add_argument("--size", default="1280x800", help="browser viewport, WIDTHxHEIGHT CSS pixels")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("error: no Chromium found: apt-get install chromium, or set SPECVIZ_CHROMIUM", file=sys.stderr)
        return 2
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size {args.size!r} is not WIDTHxHEIGHT, e.g. 1280x800", file=sys.stderr)
        return 2
    asyncio.run(make(args.out, (width, height), chromium))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
