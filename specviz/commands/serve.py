"""`specviz serve`: placeholder parser; the engineer who owns this file replaces it."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub.add_parser("serve", help="serve the specviz UI to web browsers (textual-serve)")


def main(args: argparse.Namespace) -> int:
    raise SystemExit("specviz serve: not written yet")
