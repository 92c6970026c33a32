"""The body of a live decoding worker: pull a factory's events one at a time and post each one.

Shared by the app's live run and the race panel's two runs. It runs on a Textual thread worker
(``@work(thread=True, exclusive=True)``), which supplies ``cancelled`` and turns each event into a
message, so the UI thread handles one message per event and the decoder never waits on the screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from specviz.decoding.events import Event, TraceWriter
from specviz.decoding.settings import RunSettings
from specviz.tui.pause_gate import PauseGate
from specviz.tui.source import EventSourceFactory

Post = Callable[[Event], None]
Cancelled = Callable[[], bool]


@dataclass(frozen=True)
class TraceTarget:
    """Where one worker records the events it decodes: a JSON-lines file and its open mode."""

    path: Path
    mode: Literal["w", "a"]


class TraceFile:
    """The ``--record`` file of a session: its first run starts the file, later ones append."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._opened = False

    def next_target(self) -> TraceTarget | None:
        """Where the next run (or race) is recorded; None when nothing is recorded."""
        if self._path is None:
            return None
        mode: Literal["w", "a"] = "a" if self._opened else "w"
        self._opened = True
        return TraceTarget(self._path, mode)


def decode_runs(
    factory: EventSourceFactory,
    runs: Sequence[tuple[RunSettings, Post]],
    cancelled: Cancelled,
    *,
    trace: TraceTarget | None = None,
    gate: PauseGate | None = None,
) -> str | None:
    """Decode each run in turn, posting its events with its ``post``; returns an error to show, or None.

    A failing decoder must not take the UI down, so its exception comes back as text. With a
    ``gate`` the decoder holds between iterations while the gate is paused (RunStarted, after the
    prefill, always flows), so pausing stops the model itself, not just the display.
    """
    handle: IO[str] | None = None
    try:
        if trace is not None:
            handle = trace.path.open(trace.mode, encoding="utf-8")
        writer = TraceWriter(handle) if handle is not None else None
        for settings, post in runs:
            if cancelled():
                break
            events = factory(settings)
            try:
                _pump(events, post, cancelled, gate, writer)
            finally:
                close = getattr(events, "close", None)  # stops a generator's decoder at once
                if close is not None:
                    close()
    except Exception as exc:  # shown to the user, not raised into the UI
        return f"{type(exc).__name__}: {exc}"
    finally:
        if handle is not None:
            handle.close()
    return None


def _pump(
    events: Iterator[Event],
    post: Post,
    cancelled: Cancelled,
    gate: PauseGate | None,
    writer: TraceWriter | None,
) -> None:
    first = True
    while not cancelled():
        if gate is not None and not first and not gate.wait(cancelled):
            break
        first = False
        event = next(events, None)
        if event is None or cancelled():
            break
        if writer is not None:
            writer.write(event)
        post(event)
