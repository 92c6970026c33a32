"""What one more student costs: memory and CPU of ``specviz serve -- follow class.jsonl`` per tab.

    .venv/bin/python scripts/classroom_cost.py [--students 1,2,4] [--rates 2,10] [--window 20]

For each number of students, starts ``specviz serve -- follow class.jsonl`` on a fresh trace,
connects that many students (each a websocket session, exactly what a browser tab opens, reading
everything the server sends; ``--browser`` uses real Chromium tabs instead), and reads every
process's resident memory (/proc/PID/status VmRSS) and CPU time (/proc/PID/stat utime+stime):

- idle: the teacher is between iterations (the trace does not grow) for ``--window`` seconds;
- following: a simulated teacher appends trace lines (recorded runs, one event a line) at each
  ``--rates`` lines per second for ``--window`` seconds.

It prints one JSON object per measurement and a summary; docs/classroom.md has the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the serve and browser drivers live with the tests, which use them too

import aiohttp  # noqa: E402

from tests.support.browser import Served, find_chromium, launch, serving, until  # noqa: E402

DATA = ROOT / "tests" / "support" / "data"
TICKS = os.sysconf("SC_CLK_TCK")
SIZE = (140, 40)  # terminal cells: a laptop browser window at the page's 16 px font


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15 of stat)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mib(pid: int) -> float:
    """Proportional set size: shared pages (the Python binary, libraries) split between the processes
    that share them, so the sum over students is what they take together."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def teacher_lines() -> Iterator[str]:
    """Recorded runs, one after another, as a teacher's specviz would write them."""
    runs = [
        (DATA / name).read_text(encoding="utf-8").splitlines(keepends=True)
        for name in ("sampled.jsonl", "greedy_race.jsonl")
    ]
    for run in itertools.cycle(runs):
        yield from run


@dataclass
class Usage:
    cpu_percent: list[float]  # per student process, over the window
    rss_mib: list[float]  # per student process, at the end of the window
    pss_mib: list[float]
    serve_cpu_percent: float
    serve_rss_mib: float


async def measure(served: Served, pids: list[int], window_s: float) -> Usage:
    start = {pid: cpu_seconds(pid) for pid in [*pids, served.process.pid]}
    began = time.monotonic()
    await asyncio.sleep(window_s)  # the measurement window itself, not a wait for a state
    elapsed = time.monotonic() - began
    percent = {pid: 100 * (cpu_seconds(pid) - start[pid]) / elapsed for pid in start}
    return Usage(
        cpu_percent=[percent[p] for p in pids],
        rss_mib=[rss_mib(p) for p in pids],
        pss_mib=[pss_mib(p) for p in pids],
        serve_cpu_percent=percent[served.process.pid],
        serve_rss_mib=rss_mib(served.process.pid),
    )


async def teacher(trace: Path, lines: Iterator[str], rate: float, stop: asyncio.Event) -> int:
    written = 0
    with trace.open("a", encoding="utf-8") as out:
        while not stop.is_set():
            out.write(next(lines))
            out.flush()  # as the UI's recorder does: one flushed line per event
            written += 1
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / rate)
    return written


@contextlib.asynccontextmanager
async def websocket_students(served: Served, n: int) -> AsyncIterator[list[float]]:
    """``n`` sessions as a browser opens them, each drained by a reader; yields seconds to first draw."""
    url = served.url.replace("http://", "ws://") + f"/ws?width={SIZE[0]}&height={SIZE[1]}"
    first_draw: list[float] = []
    async with aiohttp.ClientSession() as http:
        sockets = []
        readers = []
        for _ in range(n):
            began = time.monotonic()
            ws = await http.ws_connect(url, max_msg_size=0)
            sockets.append(ws)
            drawn = b""
            while b"Stream" not in drawn:
                message = await ws.receive(timeout=120)
                if message.type != aiohttp.WSMsgType.BINARY:
                    raise RuntimeError(f"session ended before drawing: {message}\n{served.log()}")
                drawn += message.data
            first_draw.append(time.monotonic() - began)

            async def drain(ws: aiohttp.ClientWebSocketResponse = ws) -> None:
                async for _ in ws:
                    pass

            readers.append(asyncio.create_task(drain()))
        try:
            yield first_draw
        finally:
            for ws in sockets:
                await ws.close()
            for reader in readers:
                reader.cancel()


@contextlib.asynccontextmanager
async def browser_students(served: Served, n: int) -> AsyncIterator[list[float]]:
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("error: --browser needs Chromium (apt-get install chromium)")
    first_draw: list[float] = []
    async with launch(chromium, deadline_s=120) as browser:
        for _ in range(n):
            began = time.monotonic()
            page = await browser.new_page()
            await page.open(served.url, (1280, 800))
            await page.wait_for_text("1 Stream", deadline_s=120)
            first_draw.append(time.monotonic() - began)
        yield first_draw


async def one_class(n: int, rates: list[float], window_s: float, browser: bool) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    lines = teacher_lines()
    with tempfile.TemporaryDirectory(prefix="specviz-class-") as work_dir:
        work = Path(work_dir)
        trace = work / "class.jsonl"
        trace.write_text("".join(next(lines) for _ in range(10)), encoding="utf-8")  # a run under way
        with serving(["follow", trace.name], log_dir=work, cwd=work, deadline_s=120) as served:
            students = browser_students if browser else websocket_students
            async with students(served, n) as first_draw:
                pids = await until(
                    lambda: (p := served.app_pids()) and len(p) == n and p, 120, f"{n} students"
                )
                await asyncio.sleep(2)  # let the last student's first frames settle before measuring idle
                # CPU seconds each student's process took to start and draw its first screen.
                startup = [round(cpu_seconds(pid), 2) for pid in pids]
                usage = await measure(served, pids, window_s)
                results.append(
                    {
                        "students": n,
                        "phase": "idle",
                        "first_draw_s": first_draw,
                        "startup_cpu_s": startup,
                        **usage.__dict__,
                    }
                )
                for rate in rates:
                    stop = asyncio.Event()
                    writer = asyncio.create_task(teacher(trace, lines, rate, stop))
                    usage = await measure(served, pids, window_s)
                    stop.set()
                    written = await writer
                    results.append(
                        {
                            "students": n,
                            "phase": f"following {rate:g} lines/s",
                            "lines": written,
                            **usage.__dict__,
                        }
                    )
    return results


def summary(results: list[dict[str, object]]) -> None:
    print(
        "\nstudents  phase                    CPU %/student  RSS MiB/student  PSS MiB/student  "
        "serve CPU %  serve RSS MiB"
    )
    for r in results:
        cpu, rss, pss = (statistics.mean(r[k]) for k in ("cpu_percent", "rss_mib", "pss_mib"))  # type: ignore[call-overload]
        print(
            f"{r['students']:>8}  {r['phase']:<23}  {cpu:>13.1f}  {rss:>15.1f}  {pss:>15.1f}  "
            f"{r['serve_cpu_percent']:>11.1f}  {r['serve_rss_mib']:>13.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", default="1,2,4")
    parser.add_argument("--rates", default="2,10,50", help="trace lines (events) per second while following")
    parser.add_argument("--window", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument(
        "--browser", action="store_true", help="real Chromium tabs instead of websocket sessions"
    )
    args = parser.parse_args(argv)
    results: list[dict[str, object]] = []
    for n in (int(v) for v in args.students.split(",")):
        for result in asyncio.run(
            one_class(n, [float(v) for v in args.rates.split(",")], args.window, args.browser)
        ):
            print(json.dumps(result), flush=True)
            results.append(result)
    summary(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
