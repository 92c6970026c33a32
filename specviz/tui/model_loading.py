"""What the UI needs to load models without knowing torch: a choice, a loader, and its result.

The live app is handed a :class:`ModelLoader` and calls it from a thread worker, so the screen
opens at once and stays responsive while a multi-gigabyte checkpoint loads. Tests pass a fake
loader (no torch); ``specviz.commands.ui`` is the real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from specviz.decoding.theory import CostTable
from specviz.progress import Progress
from specviz.tui.source import EventSourceFactory


@dataclass(frozen=True)
class ModelChoice:
    """The models to load: a packaged name, a local folder, a .gguf file or a hub id each."""

    target: str
    draft: str | None  # None: no draft model, the n-gram (prompt lookup) drafter only

    @property
    def label(self) -> str:
        return f"{self.target} + {self.draft}" if self.draft else f"{self.target} (no draft model)"


@dataclass(frozen=True)
class ModelEntry:
    """One packaged model in the picker."""

    name: str
    description: str
    ready: bool  # provisioned: loads from the local cache without downloading
    state: str  # the catalogue's own words: "ready", "not provisioned", ...


@dataclass(frozen=True)
class LoadedModels:
    """A loaded pair, ready to decode: the runs' factory and what the settings bar shows."""

    factory: EventSourceFactory
    drafters: tuple[str, ...]  # drafters this pair supports ("model" needs a draft model)
    target: str  # as RunStarted.target will report it
    draft: str | None  # as RunStarted.draft will report it for the model drafter
    detail: str = ""  # e.g. "cpu/float32": shown once when loading finishes
    # T(k) and the draft step measured for this pair (automatic γ measures them while loading;
    # torch-free numbers): the charts' cost-model curve. None: not measured, runs' timings are used.
    costs: CostTable | None = None


class ModelLoadError(Exception):
    """A load failed for a reason the user can act on; the message says what to do."""


class ModelLoader(Protocol):
    def catalogue(self) -> list[ModelEntry]:
        """The packaged models, with whether each is provisioned (cheap: no model is loaded)."""
        ...

    def load(self, choice: ModelChoice, progress: Progress) -> LoadedModels:
        """Load ``choice`` (blocking; called in a worker thread); raise ModelLoadError on failure."""
        ...


def drafter_after_switch(current: str, drafters: tuple[str, ...], previous: LoadedModels | None) -> str:
    """The drafter the next run uses once a new pair (offering ``drafters``) replaces ``previous``.

    Without a draft model only the n-gram drafter is left; when a draft model was just added to a
    pair that had none, the user switched to get it, so the model drafter is picked again.
    """
    if current not in drafters:
        return drafters[0]
    if previous is not None and previous.draft is None and "model" in drafters:
        return "model"
    return current
