"""One line naming each token status in its own style, so the stream reads without colour."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

from specviz.decoding.events import RunStarted
from specviz.decoding.settings import TREE_DRAFTERS
from specviz.tui.widgets.status_styles import GLYPHS, STATUS_COMPONENT_CLASSES, STATUS_CSS
from specviz.tui.widgets.tree_view import TREE_GLYPH

# "plain" too: a speculative run's iteration that drafted nothing (the budget's last token) commits
# a plain target step, and the stream shows it so.
SPECULATIVE = ("accepted", "rejected", "discarded", "resampled", "bonus", "plain")
PLAIN = ("plain",)


def tree_budget(started: RunStarted | None) -> int | None:
    """The node budget of a run that drafts token trees (None: it drafts chains, or nothing)."""
    if started is None or started.mode != "speculative" or started.drafter not in TREE_DRAFTERS:
        return None
    return started.gamma


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
        self._tree_nodes: int | None = None

    @property
    def statuses(self) -> tuple[str, ...]:
        return self._statuses

    @property
    def tree_nodes(self) -> int | None:
        """The node budget the legend names for a token-tree run (None: no tree entry)."""
        return self._tree_nodes

    def set_speculative(self, speculative: bool, tree_nodes: int | None = None) -> None:
        """``tree_nodes``: the run drafts token trees of at most this many nodes (see tree_budget)."""
        statuses = SPECULATIVE if speculative else PLAIN
        tree_nodes = tree_nodes if speculative else None
        if (statuses, tree_nodes) != (self._statuses, self._tree_nodes):
            self._statuses, self._tree_nodes = statuses, tree_nodes
            self.refresh()

    @property
    def plain(self) -> str:
        return self._line("  ").plain

    def render(self) -> Text:
        # Two spaces between entries where they fit; one on a narrow screen (80 columns), where two
        # would cut the last entry short; a tree run's extra entry then shortens both marks' words.
        for gap, short in (("  ", False), (" ", False), (" ", True)):
            text = self._line(gap, short)
            if cell_len(text.plain) <= self.content_size.width:
                break
        return text

    def _line(self, gap: str, short: bool = False) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for status in self._statuses:
            style = self.get_component_rich_style(f"status--{status}", partial=True)
            text.append(f"{GLYPHS[status]} ")
            text.append(status, style=style)
            text.append(gap)
        if self._statuses == SPECULATIVE:
            boundary = self.get_component_rich_style("status--boundary", partial=True)
            text.append("│", style=boundary)
            text.append(" iter." if short else " iteration")
            if self._tree_nodes is not None:
                text.append(gap)
                text.append(TREE_GLYPH, style=boundary)
                text.append(" tree" if short else f" tree: {self._tree_nodes} nodes")
        return text
