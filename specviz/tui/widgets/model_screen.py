"""Choose the target and the draft model: a packaged one from a list, or any path / hub id typed in.

The highlighted row of each list is the choice; text typed under a list overrides it. "none" for
the draft means no draft model: runs draft by prompt lookup (n-gram) only. Enter loads, esc cancels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

from specviz.tui.model_loading import ModelChoice, ModelEntry

NO_DRAFT = "none"


def _entry_prompt(entry: ModelEntry) -> Text:
    state = "✓ ready" if entry.ready else "↓ downloads"  # provisioning happens inside the load
    return Text.assemble((f"{entry.name:<20} ", "bold"), (f"{state:<12}", "dim"), entry.description)


class ModelScreen(ModalScreen[ModelChoice | None]):
    DEFAULT_CSS = """
    ModelScreen {
        align: center middle;
        & > VerticalScroll {
            width: 100;
            max-width: 95%;
            height: auto;
            max-height: 95%;
            background: $panel;
            border: round $primary;
            padding: 0 1;
        }
        Label { color: $text-accent; text-style: bold; }
        #draft-label { margin-top: 1; }
        OptionList { height: auto; max-height: 8; }
        Input { margin-bottom: 0; }
        #model-summary { margin-top: 1; color: $text; text-style: none; }
        Horizontal { height: auto; align-horizontal: right; }
        Button { margin-left: 2; }
    }
    """

    AUTO_FOCUS = "#target-list"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, entries: Sequence[ModelEntry], current: ModelChoice | None, *, blink: bool = True
    ) -> None:
        super().__init__()
        self._entries = list(entries)
        self._current = current
        self._blink = blink

    def compose(self) -> ComposeResult:
        names = [e.name for e in self._entries]
        current = self._current
        with VerticalScroll() as box:
            box.border_title = "models (tab: next field, enter: load, esc: cancel)"
            yield Label("Target")
            yield OptionList(
                *(Option(_entry_prompt(e), id=e.name) for e in self._entries), id="target-list", compact=True
            )
            yield self._input(
                "target-input", "…or a local folder, .gguf file or hub id", names, current and current.target
            )
            yield Label("Draft", id="draft-label")
            yield OptionList(
                Option(
                    Text.assemble(
                        (f"{NO_DRAFT:<20} ", "bold"),
                        " " * 12,
                        "prompt lookup (n-gram) only, no draft model",
                    ),
                    id=NO_DRAFT,
                ),
                *(Option(_entry_prompt(e), id=e.name) for e in self._entries),
                id="draft-list",
                compact=True,
            )
            yield self._input(
                "draft-input", "…or a local folder, .gguf file or hub id", names, current and current.draft
            )
            yield Label("", id="model-summary")
            with Horizontal():
                yield Button("Load", variant="primary", id="load", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def _input(self, id: str, placeholder: str, names: list[str], current: str | None) -> Input:
        # A current model that is not packaged (a path, a hub id) starts in the text field.
        value = current if current and current not in names else ""
        field = Input(value, placeholder=placeholder, id=id, compact=True)
        field.cursor_blink = self._blink
        return field

    def on_mount(self) -> None:
        current = self._current
        self._highlight("#target-list", current.target if current else None)
        self._highlight("#draft-list", (current.draft or NO_DRAFT) if current else None)
        self._show_summary()

    def _highlight(self, selector: str, option_id: str | None) -> None:
        options = self.query_one(selector, OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = ids.index(option_id) if option_id in ids else 0

    @property
    def choice(self) -> ModelChoice | None:
        """What Load would load now (None while no target is chosen)."""
        target = self._picked("#target-input", "#target-list")
        draft = self._picked("#draft-input", "#draft-list")
        if not target:
            return None
        return ModelChoice(target=target, draft=None if draft in (None, NO_DRAFT) else draft)

    def _picked(self, input_selector: str, list_selector: str) -> str | None:
        typed = self.query_one(input_selector, Input).value.strip()
        if typed:
            return typed
        options = self.query_one(list_selector, OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    def _show_summary(self) -> None:
        choice = self.choice
        text = f"load: {choice.label}" if choice else "choose a target"
        self.query_one("#model-summary", Label).update(Text(text))

    @on(OptionList.OptionHighlighted)
    @on(Input.Changed)
    def _changed(self) -> None:
        self._show_summary()

    @on(OptionList.OptionSelected)
    @on(Input.Submitted)
    @on(Button.Pressed, "#load")
    def _confirm(self) -> None:
        choice = self.choice
        if choice is None:
            self.app.bell()
            return
        self.dismiss(choice)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
