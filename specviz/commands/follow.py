"""`specviz follow`: placeholder parser; the engineer who owns this file replaces it."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub.add_parser("follow", help="follow a run as it is recorded (a class following the teacher's trace)")


def main(args: argparse.Namespace) -> int:
    raise SystemExit("specviz follow: not written yet")
