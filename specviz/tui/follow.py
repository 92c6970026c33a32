"""Reading a trace while it is written: the teacher's recorded run as a live feed for followers.

A live specviz writes its trace one flushed JSON line per event (specviz/tui/live_decode.py), the
first run opening the file with "w", later runs appending. :class:`TraceTail` turns that file into
a stream of events for ``specviz follow``: each :meth:`TraceTail.poll` stats the file and reads only
what was appended since the last one, so polling an unchanged file costs one ``stat``. A line is
parsed once its newline has arrived (a writer can be caught half-way through a long line); a file
that shrank, was replaced (another inode), or whose beginning changed was started afresh, and
reading starts over from its first byte. Textual-free: the follow widget runs it on a worker.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from specviz.decoding.events import Event, TraceError, loads

# How much of the file's beginning is kept to notice a file rewritten in place between two polls
# (truncated, then written past the old length): a trace starts with a run_started line that names
# the prompt and the measured prefill time, so two runs' first bytes differ.
HEAD_BYTES = 256

TailKind = Literal["missing", "empty", "reading", "error"]


@dataclass(frozen=True)
class TailState:
    """What the followed file is: not there yet, there with no event yet, a trace, or unreadable."""

    kind: TailKind
    detail: str = ""  # for "error": what is wrong, in words the user can act on


@dataclass(frozen=True)
class Restarted:
    """The file was started afresh (truncated or replaced): everything read before is gone."""


@dataclass(frozen=True)
class Skipped:
    """A complete line in the middle of a trace that is not an event; reading goes on after it."""

    problem: str


TailUpdate = Event | TailState | Restarted | Skipped


def trace_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be followed, or None: a missing file is fine (it is waited for).

    Checked before the UI opens, so ``specviz follow`` can say what to fix instead of showing a
    follower that waits forever on something that will never be a trace.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        if not path.parent.is_dir():
            return (
                f"{path.parent} does not exist: the teacher's `specviz run --trace {path}` would fail "
                "there too; give the path of the trace the teacher records"
            )
        return None
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if stat.S_ISDIR(info.st_mode):
        return f"{path} is a directory: give the trace file the teacher records (specviz run --trace FILE)"
    tail = TraceTail(path)
    for update in tail.poll():
        if isinstance(update, TailState) and update.kind == "error":
            return update.detail
    return None


class TraceTail:
    """Follows one trace file; :meth:`poll` returns what changed since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int, int, int] | None = None  # (dev, inode, size, mtime) last read
        self._identity: tuple[int, int] | None = None  # (dev, inode) of the file being read
        self._offset = 0  # bytes read so far (complete lines, plus ``_partial``)
        self._partial = b""  # the last line read so far, its newline not yet written
        self._head = b""  # the file's first bytes, as read: a rewrite in place changes them
        self._lineno = 0  # complete lines read
        self._events = 0  # events read from this file (since the last restart)
        self._bad = False  # the file is not a trace: nothing more is parsed until it is started afresh
        self._state: TailState | None = None

    @property
    def state(self) -> TailState | None:
        return self._state

    def poll(self) -> list[TailUpdate]:
        """The events appended since the last poll, and any change of state (in order)."""
        updates: list[TailUpdate] = []
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            # The teacher has not started yet, or the file was removed to be written anew: either way
            # the next file is another one (checked by its inode when it appears).
            self._signature = None
            self._set_state(TailState("missing"), updates)
            return updates
        except OSError as exc:
            self._signature = None
            self._set_state(TailState("error", f"cannot read {self.path}: {exc.strerror}"), updates)
            return updates
        if stat.S_ISDIR(info.st_mode):
            self._signature = None
            self._set_state(TailState("error", f"{self.path} is a directory, not a trace file"), updates)
            return updates
        signature = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        if signature == self._signature:
            return updates  # nothing written since the last poll: no read at all
        try:
            self._read(updates)
        except OSError as exc:
            self._signature = None
            self._set_state(TailState("error", f"cannot read {self.path}: {exc.strerror}"), updates)
            return updates
        self._signature = signature
        return updates

    def _read(self, updates: list[TailUpdate]) -> None:
        with self.path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            identity = (info.st_dev, info.st_ino)
            if self._offset and (
                identity != self._identity or info.st_size < self._offset or not self._same_head(handle)
            ):
                self._start_over(updates)
            self._identity = identity
            handle.seek(self._offset)
            data = handle.read()
        self._offset += len(data)
        if len(self._head) < HEAD_BYTES:
            self._head = (self._head + data)[:HEAD_BYTES]
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # after the last newline: a line still being written (or b"")
        for line in lines:
            self._lineno += 1
            if line.strip() and not self._bad:
                self._parse(line, updates)
        if not self._bad:  # readable again after an error, or still waiting for the first event
            self._set_state(TailState("reading" if self._events else "empty"), updates)

    def _same_head(self, handle: BinaryIO) -> bool:
        handle.seek(0)
        return handle.read(len(self._head)) == self._head

    def _start_over(self, updates: list[TailUpdate]) -> None:
        had_something = self._events > 0 or self._bad
        self._offset, self._partial, self._head, self._lineno = 0, b"", b"", 0
        self._events, self._bad = 0, False
        if had_something:
            updates.append(Restarted())

    def _parse(self, line: bytes, updates: list[TailUpdate]) -> None:
        where = f"{self.path}:{self._lineno}"
        try:
            event = loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            problem = f"{where}: not text (binary data)"
        except (json.JSONDecodeError, TypeError, KeyError, AttributeError, ValueError) as exc:
            # TraceError (a ValueError) names an unknown schema version or event type itself.
            reason = str(exc) if isinstance(exc, TraceError) else f"not a specviz trace event ({exc})"
            problem = f"{where}: {reason}"
        else:
            self._events += 1
            self._set_state(TailState("reading"), updates)
            updates.append(event)
            return
        if self._events == 0:
            # The first line decides: a file that does not start with an event is not a trace.
            self._bad = True
            self._set_state(TailState("error", f"{problem}; is this the file the teacher records?"), updates)
        else:
            updates.append(Skipped(f"{problem}: skipped"))

    def _set_state(self, state: TailState, updates: list[TailUpdate]) -> None:
        if state != self._state:
            self._state = state
            updates.append(state)
