"""Tokens per second through the terminal UI against the headless decoder, on the same run.

Loads the default pair once, then alternates a headless run and a UI run (the real app in
Textual's headless driver, rendering every iteration as it arrives) of the same greedy prompt,
and reports the median tokens/s of each over the whole run: from starting the decoder to its
last event (headless) or to the UI having received it (UI). Both produce the same tokens; the
script checks that. As in the app, all torch work (loading and both kinds of run) happens on one
compute thread (see specviz/session/compute_thread.py); ``--decode-thread worker`` instead decodes the UI
runs on the UI's worker thread, as the app did before. A benchmark, not a test.

    .venv/bin/python scripts/ui_speed.py [--repeats 3] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from specviz.commands.ui import make_factory
from specviz.decoding.events import RunFinished
from specviz.session import ModelOptions, RunSettings, Session
from specviz.session.compute_thread import ComputeThread
from specviz.tui.app import SpecvizApp

PROMPT = "Write a Python function that checks whether a string is a palindrome."


def headless(session: Session, settings: RunSettings) -> tuple[float, RunFinished]:
    start = time.perf_counter()
    finished = [e for e in session.speculative(settings) if isinstance(e, RunFinished)][-1]
    return time.perf_counter() - start, finished


async def through_ui(
    session: Session, settings: RunSettings, compute: ComputeThread | None
) -> tuple[float, RunFinished]:
    app = SpecvizApp(factory=make_factory(session, compute), settings=settings)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        start = time.perf_counter()
        app.action_run()
        while app.decoding or app.run_recording.finished is None:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        finished = app.run_recording.finished
        await pilot.press("q")
    assert finished is not None
    return elapsed, finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--decode-thread", choices=("compute", "worker"), default="compute")
    args = parser.parse_args()
    compute = ComputeThread()
    session = compute.call(lambda: Session(ModelOptions("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b")))
    compute.call(session.warm_up)
    settings = RunSettings(prompt=PROMPT, chat=True, max_new_tokens=args.max_new_tokens)
    ui_compute = compute if args.decode_thread == "compute" else None
    rates: dict[str, list[float]] = {"headless": [], "ui": []}
    tokens: dict[str, tuple[int, ...]] = {}
    compute.call(lambda: headless(session, settings))  # warm-up
    for _ in range(args.repeats):
        for name in ("headless", "ui"):
            if name == "ui":
                seconds, finished = asyncio.run(through_ui(session, settings, ui_compute))
            else:
                seconds, finished = compute.call(lambda: headless(session, settings))
            rates[name].append(len(finished.token_ids) / seconds)
            tokens.setdefault(name, finished.token_ids)
            print(f"{name:8s} {len(finished.token_ids)} tokens in {seconds:.2f} s", flush=True)
    ui, plain = statistics.median(rates["ui"]), statistics.median(rates["headless"])
    same = tokens["ui"] == tokens["headless"]
    print(
        f"median tok/s: UI {ui:.2f}, headless {plain:.2f}, UI/headless {ui / plain:.2f}x; same tokens: {same}"
    )


if __name__ == "__main__":
    main()
