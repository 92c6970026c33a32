"""Output files of a run (``--trace``, ``--json``): checked before any work, never lost to a failure.

A run takes minutes, so a path that cannot be written is reported before the models load; and a
run that fails before its first event (a bad prompt, a load error) leaves an existing file as it
was, instead of the empty file that opening it for writing up front used to leave.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from specviz.decoding.events import Event, TraceWriter


def check_writable(path: Path, flag: str) -> None:
    """Raise ValueError, naming ``flag``, when ``path`` cannot be created or replaced."""
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder: give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"{flag} {path}: the folder {folder} does not exist; create it first")
    try:  # os.access says yes to root on read-only file systems; creating a file tells the truth
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".check"):
            pass
    except OSError as exc:
        raise ValueError(f"{flag} {path}: cannot write in {folder} ({exc.strerror})") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{flag} {path}: the file exists and is not writable")


class TraceRecorder:
    """A sink that writes events to a trace file, opening (and so emptying) it at the first event.

    Each event is one flushed line, so whatever ends the run, the file is valid JSON lines up to
    its last event (see ``events.load_trace``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events = 0
        self._stream: IO[str] | None = None
        self._writer: TraceWriter | None = None

    def __call__(self, event: Event) -> None:
        if self._writer is None:
            self._stream = self.path.open("w", encoding="utf-8")
            self._writer = TraceWriter(self._stream)
        self._writer.write(event)
        self.events += 1

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


def write_json_atomically(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so that ``path`` is either the whole document or left untouched.

    Non-finite numbers become null: ``NaN`` and ``Infinity`` are not JSON, and other tools refuse them.
    """
    text = json.dumps(_finite(data), indent=2, ensure_ascii=False, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def survive_closed_stdout(console: Console) -> None:
    """When standard output is closed (``specviz run ... | head -1``), let the run go on silently
    so its trace and ``--json`` summary are still written in full (rich would exit with status 1)."""

    def mute() -> None:
        console.quiet = True
        mute_stdout()

    console.on_broken_pipe = mute  # type: ignore[method-assign]


def mute_stdout() -> None:
    """Point standard output at the null device (what is left in its buffer goes nowhere)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
