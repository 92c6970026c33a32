"""Asks for an iteration number to jump to."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class JumpScreen(ModalScreen[int | None]):
    DEFAULT_CSS = """
    JumpScreen {
        align: center middle;
        & > Vertical {
            width: 40;
            height: auto;
            background: $panel;
            border: round $primary;
            padding: 0 1;
        }
    }
    """

    AUTO_FOCUS = "#jump-input"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, last: int, *, blink: bool = True) -> None:
        super().__init__()
        self._last = last
        self._blink = blink

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Jump to iteration (0–{self._last}):")
            input_ = Input(type="integer", id="jump-input")
            input_.cursor_blink = self._blink
            yield input_

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(int(value) if value.lstrip("-").isdigit() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
