"""A token-tree iteration drawn as a tree: one row per node, the accepted path marked.

A tree iteration (``Iteration.tree``, decoding/tree.py) drafts several continuations at once and
the target scores every node in one forward; verification then walks down from the root (the last
committed token), testing each node's children in order. The rows here follow the same order:
parents first, each node's children in the order they were tested, so reading down the accepted
path (●) is reading the walk. Refused nodes are ✗, nodes the walk never reached are dimmed (·), and
the token the target added itself (↻ resampled after its children were all refused, ★ bonus at a
leaf) hangs where the path ends.

Trees are long next to a chain (12–16 nodes against γ rows), and the inspector has 8 rows on an
80×24 terminal, so a tree that does not fit can be drawn *collapsed*: every untested subtree folds
into the row above it, a refused node's or its own top node's, which counts what it hides
(``+3 untested``). Untested nodes carry no verdict, so folding them loses nothing the walk
decided: the path, each refusal and the correction keep their rows. What still does not fit
scrolls.

Pure functions of the events (no widget): the inspector (widgets/inspector.py) lays the rows out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from rich.style import Style
from rich.table import Table
from rich.text import Text

from specviz.decoding.events import Iteration, TreeNode
from specviz.decoding.stats import correction_kind
from specviz.tui.widgets.status_styles import GLYPHS, TOKEN_CELLS, num, prob_of, token_repr

# Where the walk went, beside each node's token. The path's glyph differs from the verdict
# column's ✓ so the path reads down the tree cell alone, without colour.
MARKS = {**GLYPHS, "accepted": "●"}
SOURCES = {"draft": "model", "lookup": "lookup"}
TREE_GLYPH = "⋔"  # a tree iteration, in the stream and the legend

StyleOf = Callable[[str], Style]


@dataclass(frozen=True)
class TreeRow:
    """One line of the drawn tree: a node, or the correction where the path ends (``node`` None)."""

    prefix: str  # the branch lines to its left, e.g. "│ ├─"
    status: str  # accepted / rejected / untested / pending, or the correction's kind
    node: TreeNode | None
    text: str  # the token's text
    hidden: int = 0  # untested descendants folded into this row (collapsed trees only)


def node_depths(nodes: tuple[TreeNode, ...]) -> list[int]:
    """Depth of each node: 0 for a child of the root (parents come first)."""
    depths: list[int] = []
    for node in nodes:
        depths.append(0 if node.parent < 0 else depths[node.parent] + 1)
    return depths


def _children(nodes: tuple[TreeNode, ...]) -> list[list[int]]:
    """``_children(nodes)[v + 1]``: node v's children in test order (v = -1: the root's)."""
    kids: list[list[int]] = [[] for _ in range(len(nodes) + 1)]
    for i, node in enumerate(nodes):
        kids[node.parent + 1].append(i)
    return kids


def path_end(nodes: tuple[TreeNode, ...]) -> int:
    """The last accepted node (-1: the root, nothing was accepted)."""
    return max((i for i, n in enumerate(nodes) if n.verdict == "accepted"), default=-1)


def tree_header(it: Iteration, *, pending: bool = False) -> str:
    """One line: the tree's size, and (once verified) what one target forward bought."""
    nodes = it.tree or ()
    deep = max(node_depths(nodes), default=-1) + 1
    if pending:
        return f"{TREE_GLYPH} {len(nodes)} nodes drafted ({deep} deep) · the target has not scored them yet"
    path = sum(1 for n in nodes if n.verdict == "accepted")
    tokens = len(it.new_token_ids)
    return (
        f"tree: {len(nodes)} nodes ({deep} deep) · path {path} accepted · "
        f"{tokens} token{'s' if tokens != 1 else ''} from 1 target forward"
    )


def tree_rows(
    it: Iteration, *, collapse: bool = False, pending: bool = False, indent: int = 2
) -> list[TreeRow]:
    """The rows of ``it``'s tree, depth first in test order, with the correction where the path ends.

    ``collapse``: untested subtrees fold into the refused node they hang from, or else into their
    own top node's row, which counts the nodes it hides.
    ``pending``: drafted, not yet verified: no verdicts, no correction, nothing folded.
    ``indent``: cells per level, 2 or 1 (long lookup chains run 12–16 deep: one cell per level
    keeps the numbers beside them on 80 columns).
    """
    nodes = it.tree or ()
    kids = _children(nodes)
    end = None if pending else path_end(nodes)
    rows: list[TreeRow] = []

    def size(i: int) -> int:
        return 1 + sum(size(c) for c in kids[i + 1])

    tee, elbow, bar, gap = ("├─", "└─", "│ ", "  ") if indent > 1 else ("├", "└", "│", " ")

    def visit(parent: int, lead: str) -> None:
        children: list[int | None] = list(kids[parent + 1])
        if parent == end:
            children.append(None)  # the target's own token, after every child of the path's end
        for k, child in enumerate(children):
            last = k == len(children) - 1
            prefix = lead + (elbow if last else tee)
            if child is None:
                rows.append(TreeRow(prefix, correction_kind(it), None, it.correction.text))
                continue
            node = nodes[child]
            status = "pending" if pending else node.verdict
            # Below a refused node nothing was tested, so its whole subtree folds into its row.
            fold = collapse and status in ("untested", "rejected")
            rows.append(TreeRow(prefix, status, node, node.text, size(child) - 1 if fold else 0))
            if not fold:
                visit(child, lead + (gap if last else bar))

    visit(-1, "")
    return rows


def tree_table(
    it: Iteration,
    rows: list[TreeRow],
    style: StyleOf,
    *,
    greedy: bool,
    root_text: str | None,
    short_counts: bool = False,
) -> Table:
    """The rows as a table: the tree, where each node came from, both models' probabilities, u, verdict.

    Greedy runs show each model's softmax probability at temperature 1 where the events recorded it
    (the argmax decided; draft_prob/target_prob are one-hot there), as the chain inspector does.
    ``short_counts``: a folded row counts its hidden nodes as "+3", not "+3 untested" (narrow screens).
    """
    softmax = greedy and any(n.target_softmax is not None for n in it.tree or ())
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("tree", no_wrap=True)
    table.add_column("from")
    table.add_column("draft" if greedy else "q draft", justify="right")
    table.add_column("target" if greedy else "p target", justify="right")
    if not greedy:
        table.add_column("u", justify="right")
    table.add_column("verdict", no_wrap=True)
    muted = style("prompt")
    root = Text("◉ ", style=muted)
    root.append("root" if root_text is None else f"after {_tail(root_text)}", style=muted)
    table.add_row(root, *([""] * (4 if greedy else 5)))
    for row in rows:
        table.add_row(*_cells(it, row, style, greedy=greedy, softmax=softmax, short=short_counts))
    return table


def _cells(
    it: Iteration, row: TreeRow, style: StyleOf, *, greedy: bool, softmax: bool, short: bool
) -> list[Text | str]:
    line = style("boundary")
    status_style = style(row.status)
    tree = Text(row.prefix, style=line)
    if row.node is None:  # the correction: the target's own token where the path ends
        tree.append(f"{GLYPHS[row.status]} ", style=status_style)
        tree.append(token_repr(row.text), style=status_style)
        c = it.correction
        # Greedy: how sure the target was (softmax at T=1); sampling: a bonus is drawn from p itself,
        # a resampled token from what the refusals left of it, which is not p (shown below the table).
        sure = prob_of(c.softmax_top, c.token_id) if softmax else None
        target = num(sure) if softmax else (num(c.prob) if row.status == "bonus" and not greedy else "–")
        cells: list[Text | str] = [tree, "target", "–", target]
        if not greedy:
            cells.append("–")
        cells.append(Text(f"{GLYPHS[row.status]} {row.status}", style=status_style))
        return cells
    node = row.node
    tree.append(f"{MARKS[row.status]} ", style=status_style)
    tree.append(token_repr(row.text), style=status_style)
    if row.hidden:
        tree.append(f" +{row.hidden}" if short else f" +{row.hidden} untested", style=line)
    draft = node.draft_softmax if softmax else node.draft_prob
    target = node.target_softmax if softmax else node.target_prob
    cells = [
        tree,
        SOURCES.get(node.source, node.source),
        num(draft),
        "–" if row.status == "pending" else num(target),
    ]
    if not greedy:
        cells.append(num(node.u))
    cells.append(Text(f"{GLYPHS[row.status]} {row.status}", style=status_style))
    return cells


def tree_caption(it: Iteration, greedy: bool) -> str:
    """What the numbers mean for a tree, in one line."""
    if greedy:
        if any(n.target_softmax is not None for n in it.tree or ()):
            return "draft, target: softmax at T=1 · greedy follows the target's argmax"
        return "draft, target: as this trace recorded them · greedy follows the target's argmax"
    return (
        "children are tested in order, each against what the refused ones before it left of p "
        "(u < p for a fixed candidate, u < p/q for a sample)"
    )


def tree_explanation(it: Iteration, greedy: bool) -> str:
    """Why the iteration ends with the token it ends with (the correction line's words)."""
    nodes = it.tree or ()
    end = path_end(nodes)
    kind = correction_kind(it)
    if kind == "bonus":
        return "the path reached a leaf: a free token from the target"
    if kind == "plain":
        return "nothing was drafted: a plain target step (one forward, one token), nothing free"
    refused = sum(1 for n in nodes if n.parent == end and n.verdict == "rejected")
    children = f"{refused} child{'ren' if refused != 1 else ''}"
    where = "the root's" if end < 0 else "the path end's"
    if greedy:
        return f"the target's argmax: none of {where} {children} matched"
    return f"drawn from what is left of p once {where} {children} {'was' if refused == 1 else 'were'} refused"


def _tail(text: str, chars: int = TOKEN_CELLS - 4) -> str:
    """The end of the text so far, quoted like a token: what the root (the last committed token) ends."""
    shown = json.dumps(text[-chars:], ensure_ascii=False)
    return '"…' + shown[1:] if len(text) > chars else shown
