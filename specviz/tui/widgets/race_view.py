"""Plain and speculative decoding side by side, played back at their measured pace."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Static

from specviz.tui.race import race_verdict, speedup_text
from specviz.tui.recording import Recording
from specviz.tui.widgets.token_stream import TokenStream


class RacePanel(Vertical):
    DEFAULT_CSS = """
    RacePanel {
        height: 1fr;
        #race-status { height: auto; padding: 0 1; background: $panel; }
        Horizontal { height: 1fr; }
        .race-side { width: 1fr; height: 1fr; }
        .race-title { height: 1; padding: 0 1; color: $text-accent; }
        .-identical { color: $text-success; }
        .-different { color: $text-error; }
    }
    """

    def __init__(self, *, show_timings: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self._show_timings = show_timings
        self._plain: Recording | None = None
        self._spec: Recording | None = None
        self._shown = (0, 0)
        self._clock = 0.0
        self._status_text = ""

    def compose(self) -> ComposeResult:
        yield Static("Press x to race plain against speculative decoding.", id="race-status")
        with Horizontal():
            with Vertical(classes="race-side"):
                yield Static("plain", id="race-plain-title", classes="race-title")
                yield TokenStream(id="race-plain", show_boundaries=False)
            with Vertical(classes="race-side"):
                yield Static("speculative", id="race-spec-title", classes="race-title")
                yield TokenStream(id="race-spec", show_drafts=False)

    @property
    def shown(self) -> tuple[int, int]:
        return self._shown

    @property
    def status_text(self) -> str:
        return self._status_text

    def load(self, plain: Recording, spec: Recording) -> None:
        """Show a race whose runs may still be decoding; both start hidden, at time 0."""
        self._plain, self._spec = plain, spec
        self._shown = (-1, -1)
        self.query_one("#race-plain", TokenStream).reset(_prompt(plain), plain.iterations)
        self.query_one("#race-spec", TokenStream).reset(_prompt(spec), spec.iterations)
        self.show(0, 0, 0.0)

    def decoding(self, side: str, plain: Recording, spec: Recording) -> None:
        """Progress while the two runs are decoded one after the other (before playback)."""
        self._plain, self._spec = plain, spec
        done = f"plain {plain.committed(len(plain))} tokens" + (
            f", speculative {spec.committed(len(spec))} tokens" if side == "speculative" else ""
        )
        self._status(f"decoding {side}… ({done}); playback starts when both are done", None)

    def show(self, plain_n: int, spec_n: int, clock: float) -> None:
        if self._plain is None or self._spec is None:
            return
        self._clock = clock
        if (plain_n, spec_n) != self._shown:
            self._shown = (plain_n, spec_n)
            self.query_one("#race-plain", TokenStream).show(plain_n)
            self.query_one("#race-spec", TokenStream).show(spec_n)
        self._title("#race-plain-title", "plain", self._plain, plain_n)
        self._title("#race-spec-title", "speculative", self._spec, spec_n)
        verdict = race_verdict(self._plain, self._spec)
        parts = [verdict.text]
        speed = speedup_text(self._plain, self._spec)
        if speed and self._show_timings:
            parts.append(f"speculative {speed}")
        if self._show_timings:
            parts.append(f"t = {clock:.1f}s")
        self._status("   ".join(parts), verdict.identical)

    def _title(self, selector: str, label: str, run: Recording, n: int) -> None:
        text = f"{label}: {run.committed(n)}/{run.committed(len(run))} tokens"
        if self._show_timings:
            text += f" · {run.decode_time(n):.1f}s"
        if n >= len(run) and run.finished is not None:
            text += " · done"
        self.query_one(selector, Static).update(text)

    def _status(self, text: str, identical: bool | None) -> None:
        self._status_text = text
        status = self.query_one("#race-status", Static)
        status.update(Content(text))
        status.set_class(identical is True, "-identical")
        status.set_class(identical is False, "-different")


def _prompt(run: Recording) -> str | None:
    return run.started.prompt if run.started is not None else None
