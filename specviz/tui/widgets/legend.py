"""One line naming each token status in its own style, so the stream reads without colour."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

from specviz.tui.widgets.status_styles import GLYPHS, STATUS_COMPONENT_CLASSES, STATUS_CSS

# "plain" too: a speculative run's iteration that drafted nothing (the budget's last token) commits
# a plain target step, and the stream shows it so.
SPECULATIVE = ("accepted", "rejected", "discarded", "resampled", "bonus", "plain")
PLAIN = ("plain",)


class StatusLegend(Widget):
    DEFAULT_CSS = (
        """
    StatusLegend {
        height: 1;
        padding: 0 1;
        background: $surface;
    }
    """
        + STATUS_CSS
    )

    COMPONENT_CLASSES = STATUS_COMPONENT_CLASSES

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._statuses: tuple[str, ...] = SPECULATIVE

    @property
    def statuses(self) -> tuple[str, ...]:
        return self._statuses

    def set_speculative(self, speculative: bool) -> None:
        statuses = SPECULATIVE if speculative else PLAIN
        if statuses != self._statuses:
            self._statuses = statuses
            self.refresh()

    def render(self) -> Text:
        # Two spaces between entries where they fit; one on a narrow screen (80 columns), where two
        # would cut the last entry short.
        for gap in ("  ", " "):
            text = self._line(gap)
            if cell_len(text.plain) <= self.content_size.width:
                break
        return text

    def _line(self, gap: str) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for status in self._statuses:
            style = self.get_component_rich_style(f"status--{status}", partial=True)
            text.append(f"{GLYPHS[status]} ")
            text.append(status, style=style)
            text.append(gap)
        if self._statuses == SPECULATIVE:
            text.append("│", style=self.get_component_rich_style("status--boundary", partial=True))
            text.append(" iteration")
        return text
