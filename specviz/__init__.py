"""specviz: see, teach and measure speculative decoding of LLMs.

The Python API, for notebooks; the CLI, the UI and the bench are built on the same names::

    import specviz

    pair = specviz.load("qwen2.5-coder-1.5b", draft="qwen2.5-coder-0.5b")
    events = list(pair.speculative(specviz.RunSettings("def fib(n):", max_new_tokens=32)))
    summary = specviz.summarise(events)  # the same summary as `specviz run --json`
    specviz.write_trace("fib.jsonl", events)  # replay it: specviz replay fib.jsonl

- ``load(target, draft=None, **model_options)`` -> :class:`~specviz.session.Session`, whose
  ``speculative(settings)`` and ``plain(settings)`` yield events one iteration at a time.
- :class:`RunSettings`: every run option, validated once.
- The events (``RunStarted``, ``Iteration``, ``RunFinished``; their glossary is in
  :mod:`specviz.decoding.events`), ``summarise(events)``, ``RunStats``, ``write_trace``,
  ``read_trace`` and ``load_trace``.

Names are imported on first use, so ``import specviz`` stays cheap: torch takes seconds to import.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load": "specviz.session",
    "Session": "specviz.session",
    "ModelOptions": "specviz.session",
    "RunSettings": "specviz.decoding.settings",
    "summarise": "specviz.decoding.stats",
    "RunStats": "specviz.decoding.stats",
    "Event": "specviz.decoding.events",
    "RunStarted": "specviz.decoding.events",
    "Iteration": "specviz.decoding.events",
    "RunFinished": "specviz.decoding.events",
    "write_trace": "specviz.decoding.events",
    "read_trace": "specviz.decoding.events",
    "load_trace": "specviz.decoding.events",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'specviz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
