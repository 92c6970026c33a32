"""Token statuses: one component class each, with colour AND a text style or glyph.

Every widget that draws statuses declares these component classes, so a theme (or app.tcss) restyles
them everywhere, and NO_COLOR / 16-colour terminals still tell them apart by strike, dim, underline,
bold and italic, and by the glyphs in the inspector and legend.
"""

from __future__ import annotations

STATUSES = ("prompt", "accepted", "rejected", "discarded", "resampled", "bonus", "plain", "pending")

GLYPHS = {
    "accepted": "✓",
    "rejected": "✗",
    "discarded": "⊘",
    "resampled": "↻",
    "bonus": "★",
    "plain": "•",
    "pending": "…",
    "prompt": "»",
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
.status--boundary { color: $text-muted; text-style: dim; }
.status--selected { background: $primary 35%; }
"""
