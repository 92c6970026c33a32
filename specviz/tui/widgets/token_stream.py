"""The generated text, every token styled by its status, drawn with the line API.

Only lines on screen are rendered, each at most once per change (a Strip cache keyed by line), and
new iterations re-wrap only the tail (:class:`~specviz.tui.stream_layout.StreamLayout`), so thousands
of tokens cost no more per iteration than ten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment as RichSegment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from specviz.decoding.events import Iteration
from specviz.decoding.stats import correction_kind
from specviz.tui.stream_layout import Piece, StreamLayout
from specviz.tui.widgets.status_styles import STATUS_COMPONENT_CLASSES, STATUS_CSS
from specviz.tui.widgets.tree_view import TREE_GLYPH

BOUNDARY = "│"


def _clean(text: str) -> str:
    """Committed text as it reads: newlines kept, tabs expanded, other control characters shown."""
    return "".join(ch if ch == "\n" or ch >= " " else ("    " if ch == "\t" else "�") for ch in text)


def _inline(text: str) -> str:
    """Text that is not part of the output (rejected drafts) must not break lines."""
    return _clean(text).replace("\n", "↵")


def iteration_pieces(
    it: Iteration, index: int, *, show_drafts: bool, show_boundaries: bool, pending: bool = False
) -> list[Piece]:
    """The pieces one iteration adds to the stream, in reading order.

    A token-tree iteration begins with ⋔ instead of │ (the first iteration too: the mark says where
    trees were used), and its stream shows the winning path, which ``drafted`` lists as a chain.
    """
    pieces: list[Piece] = []
    if show_boundaries and (index > 0 or it.tree):
        pieces.append(Piece(TREE_GLYPH if it.tree else BOUNDARY, "boundary", index))
    if pending:
        # Drafted but not yet verified: the teaching step between drafting and verification. A
        # tree's nodes are no text yet (which path wins is the verification's to say): its size.
        if it.tree:
            return [*pieces, Piece(f"({len(it.tree)} nodes drafted)", "pending", index)]
        return pieces + [Piece(_inline(d.text), "pending", index) for d in it.drafted]
    for d in it.drafted:
        if d.verdict == "accepted":
            pieces.append(Piece(_clean(d.text), "accepted", index))
        elif show_drafts:
            pieces.append(Piece(_inline(d.text), d.verdict, index))
    if it.correction.committed:  # an EOS/stop/budget cut inside the draft leaves it out
        # An iteration that drafted nothing is a plain step, even where an old trace says bonus.
        pieces.append(Piece(_clean(it.correction.text), correction_kind(it), index))
    return pieces


class TokenStream(ScrollView, can_focus=True):
    """Shows the first n iterations of a run; n moves both ways as the user steps."""

    DEFAULT_CSS = (
        """
    TokenStream {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-gutter: stable;
        background: $surface;
        color: $text;
        &:focus { background-tint: $foreground 4%; }
    }
    """
        + STATUS_CSS
    )

    COMPONENT_CLASSES = STATUS_COMPONENT_CLASSES

    # The scroll bindings of ScrollView would swallow these; here they move the playhead instead.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "app.step_back", "Back", show=False),
        Binding("right", "app.step", "Step", show=False),
        Binding("home", "app.first", "First", show=False),
        Binding("end", "app.last", "Last", show=False),
    ]

    class IterationClicked(Message):
        def __init__(self, stream: TokenStream, iteration: int) -> None:
            super().__init__()
            self.stream = stream
            self.iteration = iteration

        @property
        def control(self) -> TokenStream:
            return self.stream

    def __init__(
        self,
        *,
        show_drafts: bool = True,
        show_boundaries: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._layout = StreamLayout(80)
        self._cache: LRUCache[int, Strip] = LRUCache(1024)
        self._styles: dict[str, Style] = {}
        self._prompt: str | None = None
        self._iterations: Sequence[Iteration] = ()
        self._starts: list[int] = []  # piece index where each shown iteration begins
        self._pending = False
        self._selected: int | None = None
        self._show_drafts = show_drafts
        self._show_boundaries = show_boundaries

    # -- what is shown -------------------------------------------------------------------------

    @property
    def shown(self) -> int:
        """How many iterations are shown (a pending one not counted)."""
        return len(self._starts) - (1 if self._pending else 0)

    @property
    def selected(self) -> int | None:
        return self._selected

    @property
    def layout_lines(self) -> list[list[tuple[str, str, int]]]:
        """(text, status, iteration) per segment per line: what tests and exports inspect."""
        return [[(s.text, s.status, s.iteration) for s in line] for line in self._layout.lines]

    def statuses_of(self, iteration: int) -> list[tuple[str, str]]:
        """(text, status) of the pieces of one shown iteration, boundary excluded."""
        return [
            (p.text, p.status)
            for p in self._layout.pieces
            if p.iteration == iteration and p.status != "boundary"
        ]

    def reset(self, prompt: str | None, iterations: Sequence[Iteration] = ()) -> None:
        """Start over for a new run; ``iterations`` is the run's (growing) list, shown via :meth:`show`."""
        self._prompt = prompt
        self._iterations = iterations
        self._starts = []
        self._pending = False
        self._selected = None
        self._layout.clear()
        if prompt:
            self._layout.append([Piece(_clean(prompt), "prompt", -1)])
        self._changed(0, scroll_end=True)

    def show(self, n: int, *, pending: bool = False) -> None:
        """Show the first ``n`` iterations, plus iteration n's drafts as pending if ``pending``."""
        n = max(0, min(n, len(self._iterations)))
        pending = pending and n < len(self._iterations)
        previous = self.shown
        if n == previous and pending == self._pending:
            return
        at_end = self.is_vertical_scroll_end or self.max_scroll_y == 0
        keep = min(n, previous)
        first_changed = len(self._layout)
        if len(self._starts) > keep:
            first_changed = self._layout.truncate(self._starts[keep])
            del self._starts[keep:]
        self._pending = False
        for index in range(keep, n):
            first_changed = min(first_changed, self._append(index, pending=False))
        if pending:
            first_changed = min(first_changed, self._append(n, pending=True))
            self._pending = True
        self._changed(first_changed, scroll_end=at_end or n < previous)

    def _append(self, index: int, *, pending: bool) -> int:
        self._starts.append(len(self._layout.pieces))
        pieces = iteration_pieces(
            self._iterations[index],
            index,
            show_drafts=self._show_drafts,
            show_boundaries=self._show_boundaries,
            pending=pending,
        )
        return self._layout.append(pieces)

    def select(self, iteration: int | None) -> None:
        if iteration != self._selected:
            self._selected = iteration
            self._cache.clear()
            self.refresh()

    def set_options(self, *, show_drafts: bool | None = None, show_boundaries: bool | None = None) -> None:
        """Change what is drawn; rebuilds the pieces of everything shown (O(tokens), on a key press)."""
        if show_drafts is not None:
            self._show_drafts = show_drafts
        if show_boundaries is not None:
            self._show_boundaries = show_boundaries
        n, pending, selected = self.shown, self._pending, self._selected
        self.reset(self._prompt, self._iterations)
        self._selected = selected
        self.show(n, pending=pending)

    @property
    def show_drafts(self) -> bool:
        return self._show_drafts

    @property
    def show_boundaries(self) -> bool:
        return self._show_boundaries

    def scroll_to_iteration(self, iteration: int) -> None:
        y = self._layout.line_of_iteration(iteration)
        if y is not None:
            self.scroll_to(y=max(0, y - self.size.height // 2), animate=False)

    def _changed(self, first_line: int, *, scroll_end: bool) -> None:
        for y in list(self._cache.keys()):
            if y >= first_line:
                self._cache.discard(y)
        self.virtual_size = Size(self._layout.width, len(self._layout))
        if scroll_end:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    # -- rendering -----------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width > 0 and width != self._layout.width:
            self._layout.set_width(width)
            self._cache.clear()
            self.virtual_size = Size(width, len(self._layout))

    def _style(self, status: str) -> Style:
        style = self._styles.get(status)
        if style is None:
            style = self.get_component_rich_style(f"status--{status}", partial=True)
            self._styles[status] = style
        return style

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        line_no = scroll_y + y
        if line_no >= len(self._layout):
            return Strip.blank(width, base)
        strip = self._cache.get(line_no)
        if strip is None:
            selected = self._style("selected")
            segments = []
            for seg in self._layout.lines[line_no]:
                style = base + self._style(seg.status)
                if self._selected is not None and seg.iteration == self._selected:
                    style += selected
                segments.append(RichSegment(seg.text, style))
            strip = Strip(segments)
            self._cache[line_no] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        segment = self._layout.locate(self.scroll_offset.y + offset.y, offset.x)
        if segment is not None and segment.iteration >= 0 and segment.status != "boundary":
            self.post_message(self.IterationClicked(self, segment.iteration))
