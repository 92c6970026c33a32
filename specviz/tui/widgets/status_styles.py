"""Token statuses: one component class each, with colour AND a text style or glyph; and how a
token's text is shown.

Every widget that draws statuses declares these component classes, so a theme (or app.tcss) restyles
them everywhere, and NO_COLOR / 16-colour terminals still tell them apart by strike, dim, underline,
bold and italic, and by the glyphs in the inspector and legend.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from specviz.decoding.events import TokenProb

STATUSES = (
    "prompt",
    "accepted",
    "rejected",
    "discarded",
    "resampled",
    "bonus",
    "plain",
    "pending",
    "untested",
)

GLYPHS = {
    "accepted": "✓",
    "rejected": "✗",
    "discarded": "⊘",
    "resampled": "↻",
    "bonus": "★",
    "plain": "•",
    "pending": "…",
    "prompt": "»",
    "untested": "·",
}

DESCRIPTIONS = {
    "accepted": "draft kept",
    "rejected": "first failed draft",
    "discarded": "after a rejection",
    "resampled": "target's replacement",
    "bonus": "the target's extra token once every draft was accepted",
    "plain": "a plain target step: nothing was drafted (plain decoding, or the budget's last token)",
    "pending": "drafted, not yet verified",
    "prompt": "prompt",
    "untested": "a token-tree node the verification never reached",
}

STATUS_COMPONENT_CLASSES = {f"status--{name}" for name in STATUSES} | {"status--boundary", "status--selected"}

# Scoped by each widget's DEFAULT_CSS, so it applies to that widget's component classes only.
STATUS_CSS = """
.status--prompt { color: $text-muted; text-style: italic; }
.status--accepted { color: $text-success; }
.status--rejected { color: $text-error; text-style: strike bold; }
.status--discarded { color: $text-muted; text-style: strike dim; }
.status--resampled { color: $text-warning; text-style: underline; }
.status--bonus { color: $text-accent; text-style: bold underline; }
.status--plain { color: $text; }
.status--pending { color: $text-muted; text-style: italic dim; }
.status--untested { color: $text-muted; text-style: dim; }
.status--boundary { color: $text-muted; text-style: dim; }
.status--selected { background: $primary 35%; }
"""

TOKEN_CELLS = 14


def token_repr(text: str, cells: int = TOKEN_CELLS) -> str:
    """A token as a quoted string with its whitespace visible: the leading space matters."""
    shown = json.dumps(text, ensure_ascii=False)
    return shown if len(shown) <= cells else shown[: cells - 2] + '…"'


def num(value: float | None, digits: int = 3) -> str:
    """A probability (or any number) as the inspectors show it; "–" where there is none."""
    return "–" if value is None else f"{value:.{digits}f}"


def prob_of(entries: tuple[TokenProb, ...], token_id: int) -> float | None:
    """The probability ``entries`` (a distribution's top entries) give ``token_id``, if listed."""
    return next((e.prob for e in entries if e.token_id == token_id), None)
