"""A modal listing every key binding, generated from the bindings themselves so it cannot drift."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from specviz.tui.widgets.status_styles import DESCRIPTIONS, GLYPHS

_KEY_NAMES = {
    "space": "space",
    "right": "→",
    "left": "←",
    "question_mark": "?",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "plus": "+",
    "minus": "-",
    "escape": "esc",
    "equals_sign": "=",
}


def key_label(key: str) -> str:
    return ", ".join(_KEY_NAMES.get(k.strip(), k.strip()) for k in key.split(","))


def bindings_table(bindings: Iterable[Binding]) -> Table:
    table = Table(box=None, padding=(0, 2), show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    seen: set[str] = set()
    for b in bindings:
        if not b.description or b.description in seen:
            continue
        seen.add(b.description)
        table.add_row(key_label(b.key), b.tooltip or b.description)
    return table


def legend_table() -> Table:
    table = Table(box=None, padding=(0, 2), show_header=False)
    table.add_column(no_wrap=True)
    table.add_column()
    for status in ("accepted", "rejected", "discarded", "resampled", "bonus", "plain", "pending"):
        table.add_row(Text(f"{GLYPHS[status]} {status}"), DESCRIPTIONS[status])
    table.add_row("│", "iteration boundary")
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        & > VerticalScroll {
            width: auto;
            max-width: 90%;
            height: auto;
            max-height: 90%;
            background: $panel;
            border: round $primary;
            padding: 0 1;
        }
        Static { width: auto; }
        .help-heading { color: $text-accent; text-style: bold; margin-top: 1; }
    }
    """

    AUTO_FOCUS = "VerticalScroll"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, bindings: Iterable[Binding]) -> None:
        super().__init__()
        self._key_bindings = list(bindings)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "specviz — keys (esc closes)"
            yield Static("Keys", classes="help-heading")
            yield Static(bindings_table(self._key_bindings))
            yield Static("Token statuses", classes="help-heading")
            yield Static(legend_table())
            yield Static(
                "ctrl+p opens the command palette; tab moves focus; click a token to inspect its iteration.",
                classes="help-heading",
            )

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
