"""Opening the terminal UI: live on loaded models, or on a recorded trace (no model, no torch work)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from specviz.compute_thread import ComputeThread
from specviz.decoding.events import Event
from specviz.session import ModelOptions, RunSettings, Session


def make_factory(session: Session, base: RunSettings, compute: ComputeThread | None = None) -> Any:
    """The UI's EventSourceFactory: its settings mapped onto the session's, extras kept from ``base``.

    ``compute``: the thread that loaded the session, where every decoding step then runs too
    (see compute_thread.py); None decodes on whichever thread pulls the events."""
    from specviz.tui.source import RunSettings as UiSettings

    # Runs share the session's model caches. A cancelled run's worker may still be inside its
    # last iteration when the next run starts, so each run holds the lock until it is closed.
    lock = threading.Lock()

    def factory(ui: UiSettings) -> Iterator[Event]:
        settings = replace(
            base,
            prompt=ui.prompt,
            gamma=ui.gamma,
            temperature=ui.temperature,
            top_k=ui.top_k,
            top_p=ui.top_p,
            seed=ui.seed,
            drafter=ui.drafter,
            max_new_tokens=ui.max_new_tokens,
        )
        return _locked(lock, session, settings, ui.mode == "autoregressive", compute)

    return factory


def _locked(
    lock: threading.Lock, session: Session, settings: RunSettings, plain: bool, compute: ComputeThread | None
) -> Iterator[Event]:
    # A lazy generator: one iteration per next(), so pausing the UI pauses the decoder itself.
    with lock:
        events = session.plain(settings) if plain else session.speculative(settings)
        yield from (compute.iterate(events) if compute is not None else events)


def ui_settings(settings: RunSettings) -> Any:
    from specviz.tui.source import RunSettings as UiSettings

    return UiSettings(
        prompt=settings.prompt,
        gamma=max(1, settings.gamma),
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        seed=settings.seed,
        drafter=settings.drafter,
        max_new_tokens=settings.max_new_tokens,
    )


def open_live(options: ModelOptions, settings: RunSettings, record_to: Path | None) -> None:
    """Open the UI at once; it loads ``options``' models in a worker and shows the progress."""
    from specviz.session_loader import SessionLoader
    from specviz.tui.app import run_loading
    from specviz.tui.model_loading import ModelChoice

    run_loading(
        SessionLoader(options, settings),
        ModelChoice(options.target, options.draft),
        ui_settings(settings),
        record_to=record_to,
    )


def open_replay(path: Path) -> int:
    from specviz.decoding.events import TraceError
    from specviz.tui.app import run_replay

    try:
        run_replay(path)
    except TraceError as exc:
        print(f"error: {exc}")
        return 2
    return 0
