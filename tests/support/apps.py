"""Opening the UI on any event factory, e.g. the fake source: the whole UI without loading a model.

    .venv/bin/python -m tests.support.apps [PROMPT]

Runs the real app on :class:`~tests.support.fake_source.FakeSource` at its synthetic pace, to try the UI by hand (keys,
layout, playback) in a second. ``specviz ui`` is the entry point with real models.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from specviz.decoding.settings import RunSettings
from specviz.tui.app import SpecvizApp
from specviz.tui.source import EventSourceFactory
from tests.support.fake_source import FakeSource


def run_live(
    factory: EventSourceFactory,
    settings: RunSettings,
    *,
    record_to: Path | None = None,
    export_dir: Path | None = None,
    drafters: Sequence[str] = ("model", "ngram"),
    autorun: bool = True,
) -> None:
    """Open the UI on a live decoder; ``factory(settings)`` yields one run's events."""
    SpecvizApp(
        factory=factory,
        settings=settings,
        record_to=record_to,
        export_dir=export_dir,
        drafters=drafters,
        autorun=autorun,
    ).run()


if __name__ == "__main__":
    prompt = " ".join(sys.argv[1:]) or "Explain speculative decoding."
    run_live(
        FakeSource(delay_scale=1.0), RunSettings(prompt=prompt, gamma=4, temperature=0.8, max_new_tokens=256)
    )
