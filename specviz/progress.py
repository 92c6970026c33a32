"""The progress callback that model provisioning, loading and the UI's loading view share."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]  # (stage, done, total); total 0 = unknown


def no_progress(stage: str, done: int, total: int) -> None:
    """A Progress that reports nowhere."""
