"""Opening the terminal UI: live on loaded models, or on a recorded trace (no model, no torch work).

The live UI's model loader lives here too: it builds (and warms up) a Session for the target/draft
the user chose, implementing specviz.tui.model_loading.ModelLoader, so the UI loads models in its own
worker, shows the progress, and knows nothing of torch. Every other model option (device, dtype,
quantization, packing) and every run setting the UI does not edit comes from the command line.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from specviz.decoding.events import Event
from specviz.decoding.theory import CostTable
from specviz.models import ModelError, list_models, oom_errors
from specviz.progress import Progress
from specviz.session import ModelOptions, RunSettings, Session
from specviz.session.compute_thread import ComputeThread
from specviz.tui.model_loading import LoadedModels, ModelChoice, ModelEntry, ModelLoadError
from specviz.tui.source import EventSourceFactory


def make_factory(session: Session, compute: ComputeThread | None = None) -> EventSourceFactory:
    """The UI's EventSourceFactory: the UI edits the session's own RunSettings, so each run's
    settings go to the session as they are (flags the UI has no key for ride along unchanged).

    ``compute``: the thread that loaded the session, where every decoding step then runs too
    (see compute_thread.py); None decodes on whichever thread pulls the events."""
    # Runs share the session's model caches. A cancelled run's worker may still be inside its
    # last iteration when the next run starts, so each run holds the lock until it is closed.
    lock = threading.Lock()

    def factory(settings: RunSettings) -> Iterator[Event]:
        return _locked(lock, session, settings, compute)

    return factory


def _locked(
    lock: threading.Lock, session: Session, settings: RunSettings, compute: ComputeThread | None
) -> Iterator[Event]:
    # A lazy generator: one iteration per next(), so pausing the UI pauses the decoder itself.
    with lock:
        plain = settings.mode == "autoregressive"
        events = session.plain(settings) if plain else session.speculative(settings)
        yield from (compute.iterate(events) if compute is not None else events)


def open_live(options: ModelOptions, settings: RunSettings, record_to: Path | None) -> None:
    """Open the UI at once; it loads ``options``' models in a worker and shows the progress."""
    from specviz.tui.app import run_loading

    run_loading(
        SessionLoader(options, settings),
        ModelChoice(options.target, options.draft),
        settings,
        record_to=record_to,
    )


def open_replay(path: Path) -> int:
    from specviz.decoding.events import TraceError
    from specviz.tui.app import run_replay

    try:
        problems = run_replay(path)
    except TraceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in problems:  # shown in the UI as well; repeated here where it stays visible
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def offered_drafters(draft_model: bool, same_tokenizer: bool) -> tuple[str, ...]:
    """The drafters ``d`` cycles through on a loaded pair: chains first, then token trees.

    Prompt lookup (chain and tree) needs no draft model. The draft-model tree and the hybrid
    feed the draft the target's token ids, so they need a draft with the target's tokenizer;
    the chain drafter bridges two tokenizers (drafters/cross_tokenizer.py).

    >>> offered_drafters(True, True), offered_drafters(True, False), offered_drafters(False, True)
    (('model', 'ngram', 'tree', 'hybrid', 'lookup-tree'), ('model', 'ngram', 'lookup-tree'), ('ngram', 'lookup-tree'))
    """
    chains = ("model", "ngram") if draft_model else ("ngram",)
    trees = ("tree", "hybrid", "lookup-tree") if draft_model and same_tokenizer else ("lookup-tree",)
    return chains + trees


class StageNarrator:
    """Forwards the loaders' progress, and names the steps they do not report themselves.

    ``Session`` reports provisioning and weight packing, but not the moments a model's checkpoint
    starts loading (the longest silent step), so after each reported stage ends this names what
    comes next instead of leaving a finished stage on screen.
    """

    def __init__(self, progress: Progress, choice: ModelChoice) -> None:
        self._progress = progress
        self._choice = choice
        self._muted = False

    def mute(self) -> None:
        """Stop forwarding: the Session keeps this callback and reports later work (measuring
        costs for automatic γ during a run) that is not part of the load the UI shows."""
        self._muted = True

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._muted:
            return
        self._progress(stage, done, total)
        if total and done >= total:
            following = self._after(stage)
            if following is not None:
                self._progress(following, 0, 0)

    def _after(self, stage: str) -> str | None:
        target, draft = self._choice.target, self._choice.draft
        if stage.startswith("converting "):  # provisioning done: the checkpoint load follows
            return f"loading {stage.removeprefix('converting ').split(' ')[0]}"
        if stage == f"packing {target} for oneDNN" and draft:
            return f"loading {draft}"
        if draft and stage == f"packing {draft} for oneDNN":
            return "preparing the draft"
        return None


class SessionLoader:
    """Loads the chosen pair with the command line's other model options; runs keep its settings."""

    def __init__(self, options: ModelOptions, base: RunSettings) -> None:
        self._options = options
        self._base = base
        # Every pair this loader loads is loaded, warmed up and decoded on this one thread.
        self._compute = ComputeThread()
        self._session: Session | None = None  # the last pair loaded: a new draft reuses its target

    def catalogue(self) -> list[ModelEntry]:
        return [
            ModelEntry(
                name=row["name"],
                description=row["description"],
                ready=row["state"] == "ready",
                state=row["state"],
            )
            for row in list_models()
        ]

    def load(self, choice: ModelChoice, progress: Progress) -> LoadedModels:
        options = replace(self._options, target=choice.target, draft=choice.draft)
        progress(f"loading {choice.target}", 0, 0)
        narrator = StageNarrator(progress, choice)

        def build() -> tuple[Session, CostTable | None]:
            last = self._session
            if last is not None and replace(last.options, draft=options.draft) == options:
                session = last.with_draft(options.draft, progress=narrator)  # same target: not reloaded
            else:
                self._session = None  # let the old pair go before the new one loads
                session = Session(options, progress=narrator)
            # One-off kernel setup belongs to loading, not to the first timed run.
            progress("warming up", 0, 1)
            session.warm_up()
            progress("warming up", 1, 1)
            if not self._base.auto_gamma:
                return session, None  # the charts use the runs' own timings instead
            # Measured now (once per setup, then cached) rather than silently in the first run;
            # the charts draw this machine's speedup curve from the same table.
            return session, session.costs(self._base.gamma + 1)

        try:
            session, costs = self._compute.call(build)
            self._session = session
        except ModelError as exc:
            raise ModelLoadError(str(exc)) from exc
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load {choice.label}: {exc}") from exc
        except oom_errors() as exc:
            raise ModelLoadError(
                f"out of memory loading {choice.label} on {options.device}: {str(exc).splitlines()[0]}. "
                "Try a smaller model, no draft model, or --dtype bfloat16."
            ) from exc
        finally:
            narrator.mute()
        info = session.info(self._base.evolve(drafter="model"), with_draft=True)
        return LoadedModels(
            factory=make_factory(session, self._compute),
            drafters=offered_drafters(session.draft is not None, session.same_vocab),
            target=info.target,
            draft=info.draft,
            detail=f"{info.device}/{info.dtype}",
            costs=costs,
        )
