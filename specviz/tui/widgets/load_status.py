"""One or two lines under the settings: model loading progress, or why a load failed.

The widget owns the load: a worker calls the :class:`~specviz.tui.model_loading.ModelLoader` (on a
daemon thread, see :mod:`specviz.tui.daemon_call`) and posts its progress here; the outcome,
:class:`~specviz.tui.messages.LoadFinished`, goes on to the app, which hands it back to
:meth:`LoadStatus.finished`. Hidden when there is nothing to say. While
loading it redraws a few times a second, so a stage with no measurable length (transformers reading
a checkpoint) still shows that work goes on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from time import monotonic

from textual import on, work
from textual.content import Content
from textual.markup import escape
from textual.timer import Timer
from textual.widget import Widget

from specviz.tui.daemon_call import Abandoned, call_in_daemon_thread
from specviz.tui.messages import LoadFinished, LoadProgress
from specviz.tui.model_loading import LoadedModels, ModelChoice, ModelLoader, ModelLoadError

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
BAR_CELLS = 20


@dataclass(frozen=True)
class LoadView:
    """What a load is doing, or how it failed (``error`` set)."""

    what: str  # the models being loaded, e.g. "qwen2.5-coder-1.5b + qwen2.5-coder-0.5b"
    stage: str = "starting"
    done: int = 0
    total: int = 0  # 0: no measurable length
    error: str | None = None
    kept: str | None = None  # after a failed switch: the models still in use

    @property
    def loading(self) -> bool:
        return self.error is None


def _amount(done: int, total: int) -> str:
    # Byte counts (assembling a GGUF) read better as a percentage than as two 10-digit numbers.
    return f"{100 * done / total:.0f}%" if total >= 10_000 else f"{done}/{total}"


def _bar(done: int, total: int) -> str:
    filled = round(BAR_CELLS * min(1.0, done / total))
    return f"[$success]{'━' * filled}[/][$text-muted]{'─' * (BAR_CELLS - filled)}[/]"


def load_markup(view: LoadView, elapsed_s: float | None = None) -> str:
    """The lines for ``view``; ``elapsed_s`` (None in tests) adds a spinner and the seconds so far."""
    if view.error is not None:
        kept = f" · still using {escape(view.kept)}" if view.kept else ""
        return (
            f"[$text-error b]✗ could not load {escape(view.what)}[/]{kept} · "
            f"[b]M[/] chooses other models\n[$text-error]{escape(view.error)}[/]"
        )
    spin = SPINNER[int(elapsed_s * 8) % len(SPINNER)] if elapsed_s is not None else "⟳"
    parts = [f"[$text-accent b]{spin} loading {escape(view.what)}[/]", escape(view.stage)]
    if view.total > 0:
        parts.append(f"{_bar(view.done, view.total)} {_amount(view.done, view.total)}")
    if elapsed_s is not None:
        parts.append(f"[$text-muted]{elapsed_s:.0f} s[/]")
    parts.append(
        f"[$text-muted]still using {escape(view.kept)} until then[/]"
        if view.kept
        else "[$text-muted]runs wait until the models are ready[/]"
    )
    return " · ".join(parts)


class LoadStatus(Widget):
    DEFAULT_CSS = """
    LoadStatus {
        height: auto;
        max-height: 4;
        background: $panel;
        padding: 0 1;
        display: none;
        &.-shown { display: block; }
    }
    """

    def __init__(self, *, id: str | None = None, show_elapsed: bool = True) -> None:
        super().__init__(id=id)
        self._view: LoadView | None = None
        self._started = 0.0
        self._show_elapsed = show_elapsed
        self._ticker: Timer | None = None
        self._load_id = 0  # a superseded load's late messages are ignored by id
        self._loading: ModelChoice | None = None

    @property
    def view(self) -> LoadView | None:
        return self._view

    @property
    def loading(self) -> ModelChoice | None:
        """The pair being loaded now, if any."""
        return self._loading

    def why_not_ready(self) -> str:
        """What to tell a user who asks for a run before any models are ready."""
        view = self._view
        if self._loading is None:
            return "No models are loaded: press M to choose models."
        stage = f" ({view.stage})" if view is not None and view.loading else ""
        return f"The models are still loading{stage}: the run can start once they are ready."

    def load(self, loader: ModelLoader, choice: ModelChoice, *, kept: str | None) -> None:
        """Load ``choice`` in a worker, showing its progress (``kept``: the pair in use meanwhile)."""
        self._load_id += 1
        self._loading = choice
        self.show(LoadView(choice.label, kept=kept))
        self._load(self._load_id, loader, choice)

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self, load_id: int, loader: ModelLoader, choice: ModelChoice) -> None:
        def load(abandoned: threading.Event) -> LoadedModels:
            # On a daemon thread (see daemon_call): quitting mid-load must not wait for torch.
            def progress(stage: str, done: int, total: int) -> None:
                if abandoned.is_set():
                    raise Abandoned  # the app is gone: stop at the loader's next report
                self.post_message(LoadProgress(load_id, stage, done, total))

            return loader.load(choice, progress)

        models: LoadedModels | None = None
        error: str | None = None
        try:
            models = await call_in_daemon_thread(load, name="specviz-load")
        except ModelLoadError as exc:  # the loader's own words: what to do about it
            error = str(exc)
        except Exception as exc:  # anything else is shown too, never raised into the UI
            error = f"{type(exc).__name__}: {exc}"
        if models is None and error is None:
            error = "the loader returned nothing"
        self.post_message(LoadFinished(load_id, choice, models, error))

    @on(LoadProgress)
    def _load_progress(self, message: LoadProgress) -> None:
        view = self._view
        if message.load_id != self._load_id or self._loading is None or view is None:
            return
        self.show(LoadView(view.what, message.stage, message.done, message.total, kept=view.kept))

    def finished(self, message: LoadFinished) -> bool:
        """Show how the load ended; False if a newer load superseded it (ignore the message).

        The app calls this from its own handler of the message, so ``loading`` clears in the same
        step as the app takes the models up: nobody sees a load that is over but not acted on.
        """
        if message.load_id != self._load_id or self._loading is None:
            return False
        self._loading = None
        kept = self._view.kept if self._view is not None else None
        self.show(
            LoadView(message.choice.label, error=message.error, kept=kept) if message.models is None else None
        )
        return True

    @property
    def plain(self) -> str:
        return Content.from_markup(self._markup()).plain if self._view is not None else ""

    def show(self, view: LoadView | None) -> None:
        """Show ``view`` (None hides the widget); a new load restarts the elapsed time."""
        if view is not None and view.loading and (self._view is None or not self._view.loading):
            self._started = monotonic()
        self._view = view
        self.set_class(view is not None, "-shown")
        ticking = view is not None and view.loading and self._show_elapsed
        if ticking and self._ticker is None:
            self._ticker = self.set_interval(0.25, self.refresh)
        elif not ticking and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self.refresh(layout=True)

    def _markup(self) -> str:
        assert self._view is not None
        return load_markup(self._view, monotonic() - self._started if self._show_elapsed else None)

    def render(self) -> Content:
        return Content.from_markup(self._markup()) if self._view is not None else Content("")
