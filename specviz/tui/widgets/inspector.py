"""The selected iteration, one row per drafted token, and the token the target added at its end.

Greedy runs decide by argmax, so their ``draft_prob``/``target_prob`` are one-hot (1.000 or 0.000)
and say nothing about how sure either model was; where the events recorded each model's softmax
probability at temperature 1 (schema 2), the greedy table shows those instead, labelled "draft" and
"target", beside the argmax decision. Sampling runs show the real distributions (q draft, p target),
as the acceptance rule uses them.

A token-tree iteration (``Iteration.tree``) is drawn as its tree instead (widgets/tree_view.py): a
node per row under the root, the accepted path marked, collapsed to fit when it is long.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.measure import Measurement
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import events
from textual.containers import VerticalScroll
from textual.widgets import Static

from specviz.decoding.events import Correction, DraftedToken, Iteration, TokenProb
from specviz.decoding.stats import correction_kind
from specviz.tui.recording import Recording
from specviz.tui.widgets.status_styles import (
    GLYPHS,
    STATUS_COMPONENT_CLASSES,
    STATUS_CSS,
    TOKEN_CELLS,
    num,
    prob_of,
    token_repr,
)
from specviz.tui.widgets.tree_view import tree_caption, tree_explanation, tree_header, tree_rows, tree_table

__all__ = ["TOKEN_CELLS", "IterationInspector", "token_repr"]

# Lines a tree iteration shows above its node rows: the header, the table's header and the root.
TREE_HEAD_LINES = 3


class IterationInspector(VerticalScroll):
    """Shows one iteration; rebuilt on selection (small: γ rows), restyled through component classes."""

    DEFAULT_CSS = (
        """
    IterationInspector {
        height: 1fr;
        background: $surface;
        padding: 0 1;
        & > Static { width: auto; min-width: 100%; }
    }
    """
        + STATUS_CSS
    )

    COMPONENT_CLASSES = STATUS_COMPONENT_CLASSES

    def __init__(
        self, *, show_timings: bool = True, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._show_timings = show_timings
        self._run: Recording | None = None
        self._index: int | None = None
        self._pending = False
        self._body = Static(id="inspector-body")

    def compose(self):  # type: ignore[override]
        yield self._body

    @property
    def index(self) -> int | None:
        return self._index

    def show(self, run: Recording | None, index: int | None, *, pending: bool = False) -> None:
        self._run, self._index, self._pending = run, index, pending
        self._render_body()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self._render_body()

    def on_resize(self, event: events.Resize) -> None:
        # A tree is collapsed or not by the rows there are to show it in.
        if self._shows_tree():
            self._render_body()

    def _shows_tree(self) -> bool:
        run, index = self._run, self._index
        return (
            run is not None
            and index is not None
            and 0 <= index < len(run)
            and bool(run.iterations[index].tree)
        )

    def _style(self, status: str) -> Style:
        return self.get_component_rich_style(f"status--{status}", partial=True)

    def _render_body(self) -> None:
        run, index = self._run, self._index
        if run is None or index is None or not 0 <= index < len(run.iterations):
            self.border_title = "iteration"
            hint = "No iteration selected: press r to run, space to play, → to step."
            self._body.update(Text(hint, style=self._style("prompt")))
            return
        it = run.iterations[index]
        self.border_title = f"iteration {it.index}"
        self._body.update(self.render_iteration(run, it))

    def render_iteration(
        self, run: Recording, it: Iteration, *, collapse: bool | None = None
    ) -> RenderableType:
        """``collapse`` (tree iterations): fold untested subtrees; None: only when the tree does not
        fit the rows the inspector has."""
        if it.tree:
            return self._render_tree(run, it, collapse)
        parts: list[RenderableType] = [self._header(it)]
        if it.drafted:
            parts.append(self._table(run, it))
            if run.greedy:
                parts.append(Text(_greedy_caption(it), style=self._style("prompt")))
        if self._pending:
            parts.append(Text("step again (→) to let the target verify them", self._style("pending")))
        else:
            parts.append(self._correction(run, it))
        return Group(*parts)

    def _render_tree(self, run: Recording, it: Iteration, collapse: bool | None) -> RenderableType:
        pending = self._pending
        header = Text(tree_header(it, pending=pending))
        if self._show_timings:
            header.append(f" · draft {it.draft_time_s * 1000:.0f} ms")
            if not pending:
                header.append(f" · verify {it.verify_time_s * 1000:.0f} ms")
        region = self.scrollable_content_region if self.is_mounted else None
        width = region.width if region is not None else 0
        if collapse is None:
            # Fold the untested subtrees only when the whole tree would not fit the rows there are.
            head = TREE_HEAD_LINES + (cell_len(header.plain) - 1) // width if width > 0 else TREE_HEAD_LINES
            room = region.height - head if region is not None else 0
            collapse = room > 0 and len(tree_rows(it, pending=pending)) > room
        table = self._fit_tree(run, it, collapse=collapse and not pending, width=width)
        parts: list[RenderableType] = [header, table]
        if pending:
            parts.append(Text("step again (→) to let the target verify them", self._style("pending")))
            return Group(*parts)
        parts.append(self._correction(run, it))
        parts.append(Text(tree_caption(it, run.greedy), style=self._style("prompt")))
        return Group(*parts)

    def _fit_tree(self, run: Recording, it: Iteration, *, collapse: bool, width: int) -> RenderableType:
        """The tree's table at two cells per level, or narrower until its numbers fit ``width``."""
        table = None
        for indent, short in ((2, False), (1, False), (1, True)):
            rows = tree_rows(it, collapse=collapse, pending=self._pending, indent=indent)
            table = tree_table(
                it,
                rows,
                self._style,
                greedy=run.greedy,
                root_text=_text_before(run, it),
                short_counts=short,
            )
            console = self.app.console if self.is_mounted else None
            if console is None or width <= 0:
                break
            # Measured unbounded: a measurement is capped at the width it is given.
            if Measurement.get(console, console.options.update_width(10_000), table).maximum <= width:
                break
        assert table is not None
        return table

    def _header(self, it: Iteration) -> Text:
        text = Text()
        if self._pending:
            text.append(f"γ {it.gamma} · {len(it.drafted)} drafted · the target has not scored them yet")
            return text
        if it.drafted:
            text.append(f"γ {it.gamma} · {it.n_accepted}/{len(it.drafted)} accepted · ")
        n = len(it.new_token_ids)
        text.append(f"+{n} token{'s' if n != 1 else ''} · {it.total_tokens} total")
        if self._show_timings:
            text.append(f" · draft {it.draft_time_s * 1000:.0f} ms · verify {it.verify_time_s * 1000:.0f} ms")
        return text

    def _table(self, run: Recording, it: Iteration) -> Table:
        greedy = run.greedy
        softmax = greedy and _has_softmax(it)
        table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False, header_style="bold")
        table.add_column("#", justify="right")
        table.add_column("token")
        if greedy:
            # One-hot at T=0 unless the softmax was recorded; either way not p and q of a sampler.
            table.add_column("draft", justify="right")
            table.add_column("target", justify="right")
            table.add_column("target argmax")
        else:
            table.add_column("q draft", justify="right")
            table.add_column("p target", justify="right")
            table.add_column("p/q", justify="right")
            table.add_column("u", justify="right")
        table.add_column("Σmin", justify="right")
        table.add_column("verdict")
        pieces = any(d.draft_pieces for d in it.drafted)
        if pieces:
            table.add_column("draft pieces")
        for d in it.drafted:
            status = "pending" if self._pending else d.verdict
            style = self._style(status)
            row: list[RenderableType] = [
                str(d.position),
                Text(token_repr(d.text), style=style),
                num(d.draft_softmax if softmax else d.draft_prob),
            ]
            if self._pending:
                # Only the drafter has spoken: everything the target computes is still unknown.
                row += ["–"] * (3 if greedy else 4)
            else:
                row.append(num(d.target_softmax if softmax else d.target_prob))
                if greedy:
                    row.append(self._argmax_cell(run, d, it.correction.softmax_top if softmax else ()))
                else:
                    row += [num(d.ratio, 2), num(d.u)]
                row.append(num(d.overlap, 2))
            row.append(Text(f"{GLYPHS[status]} {status}", style=style))
            if pieces:
                # Cross-tokenizer drafting: the draft-vocabulary pieces this target token was made from.
                row.append(" ".join(token_repr(p, 12) for p in d.draft_pieces or ()))
            table.add_row(*row)
        return table

    def _argmax_cell(self, run: Recording, d: DraftedToken, softmax_top: tuple[TokenProb, ...]) -> Text:
        """What greedy decoding of the target emits here; after a rejection it only reads as context.

        At the rejected position the target's softmax there (``softmax_top``, the correction's
        position) says how sure the target was of the token it preferred.
        """
        if d.verdict == "discarded":
            style = self._style("discarded") + Style(strike=False)
        elif d.verdict == "rejected":
            style = self._style("resampled")  # the argmax is what replaces the rejected draft
        else:
            style = self._style("accepted")
        if d.token_id == d.target_argmax:
            return Text("= same", style=style)
        text = run.token_text(d.target_argmax)
        shown = token_repr(text) if text is not None else f"id {d.target_argmax}"
        sure = prob_of(softmax_top, d.target_argmax) if d.verdict == "rejected" else None
        return Text(f"≠ {shown}" + (f" {sure:.3f}" if sure is not None else ""), style=style)

    def _correction(self, run: Recording, it: Iteration) -> RenderableType:
        c = it.correction
        kind = correction_kind(it)  # a 0-draft iteration is a plain step, whatever an old trace says
        style = self._style(kind)
        line = Text()
        line.append(f"{GLYPHS[kind]} {kind} ", style=style)
        line.append(token_repr(c.text, 24), style=style)
        # Greedy: the correction's own distribution is one-hot; the softmax says how sure the target was.
        softmax = run.greedy and bool(c.softmax_top)
        sure = prob_of(c.softmax_top, c.token_id) if softmax else None
        if sure is not None:
            line.append(f"  target {sure:.3f} (softmax at T=1)  ")
        else:
            line.append(f"  p={c.prob:.3f}  ")
        lossy = run.started is not None and run.started.lossy
        line.append(_explain(c, it, kind, run, lossy), style=self._style("prompt"))
        top_entries = c.softmax_top if softmax else c.top
        if not top_entries:
            return line
        residual = kind == "resampled" and not run.greedy and not lossy
        label = "residual top" if residual else ("target top at T=1" if softmax else "top")
        top = Text(f"  {label}: ")
        for i, entry in enumerate(top_entries[:5]):
            if i:
                top.append(" · ")
            chosen = entry.token_id == c.token_id
            top.append(token_repr(entry.text, 16), style=style if chosen else Style())
            top.append(f" {entry.prob:.3f}")
        return Group(line, top)


def _has_softmax(it: Iteration) -> bool:
    """The events recorded the greedy run's softmax probabilities (schema 2 decoders do)."""
    return any(d.target_softmax is not None for d in it.drafted)


def _greedy_caption(it: Iteration) -> str:
    if _has_softmax(it):
        return "draft, target: softmax at T=1, how sure each model was; greedy keeps the target's argmax"
    # Older traces: a real decoder recorded one-hot probabilities here, the test fake does not, so
    # the caption only says what is certain.
    return (
        "draft, target: as this trace recorded them (no softmax at T=1 in it); "
        "greedy keeps the target's argmax"
    )


def _text_before(run: Recording, it: Iteration) -> str | None:
    """The prompt and the text committed before ``it``: what the root of its tree ends."""
    position = it.index if it.index < len(run) and run.iterations[it.index] is it else None
    if position is None:
        position = next((i for i, x in enumerate(run.iterations) if x is it), None)
    if position is None:
        return None
    prompt = run.started.prompt if run.started is not None else ""
    return prompt + run.text(position)


def _explain(c: Correction, it: Iteration, kind: str, run: Recording, lossy: bool) -> str:
    if it.tree:
        return tree_explanation(it, run.greedy)
    if kind == "plain":
        if not run.speculative:
            return "plain decoding: one target step, one token"
        return "nothing was drafted: a plain target step (one forward, one token), nothing free"
    if kind == "bonus":
        n = len(it.drafted)
        return (
            f"all {n} drafts accepted: a free token from the target"
            if n != 1
            else "the draft was accepted: a free token"
        )
    rejected = next((d for d in it.drafted if d.verdict == "rejected"), None)
    what = f"replaces {token_repr(rejected.text, 16)}" if rejected else "replaces the rejected draft"
    if run.greedy:
        gave = rejected.target_softmax if rejected is not None else None
        if gave is not None:
            return f"the target's argmax (it gave the draft {gave:.3f}), {what}"
        return f"target argmax, {what}"
    if lossy:
        return f"drawn from p itself (lossy rule), {what}"
    return f"drawn from norm(max(0, p − q)), {what}"
