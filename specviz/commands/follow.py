"""``specviz follow TRACE``: the UI on a trace another specviz is writing, following it as it grows.

Class mode: the teacher runs specviz live with ``--trace class.jsonl``; each student runs
``specviz follow class.jsonl`` (or opens it through ``specviz serve``). The trace is the interface:
a student loads no model and imports no torch, reads each event once its line is complete, and
moves a private playhead (step back, inspect, switch tabs) that touches nobody else's; ``c`` (or
``end``) catches up with the teacher. A file that does not exist yet is waited for; a finished trace
is shown and more is waited for; a file started afresh starts the follower afresh.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "follow",
        help="follow a run as it is recorded (a class following the teacher's trace)",
        description="Open the UI on a trace that a live specviz is writing (`specviz run --trace FILE`) "
        "and follow it as it grows: no model is loaded. Step back, inspect and switch tabs freely; "
        "c (or end) catches up with the teacher. A file that does not exist yet is waited for.",
        epilog="exit codes: 0 done; 2 the path cannot be a trace (the message says what to do)",
    )
    parser.add_argument("trace", type=Path, help="the trace file the teacher records, e.g. class.jsonl")


def main(args: argparse.Namespace) -> int:
    from specviz.tui.follow import trace_file_problem

    problem = trace_file_problem(args.trace)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from specviz.tui.app import run_follow

    run_follow(args.trace)
    return 0
