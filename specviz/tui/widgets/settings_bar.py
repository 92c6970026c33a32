"""The settings of the current run (from RunStarted) and what the next run will change."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.geometry import Size
from textual.markup import escape
from textual.widget import Widget

from specviz.decoding.events import RunStarted
from specviz.decoding.settings import TREE_DRAFTERS, RunSettings

SEP = "  "


@dataclass(frozen=True)
class ModelLabels:
    """The models the next live run will use, named as RunStarted names them."""

    target: str
    draft: str | None  # None: no draft model loaded (n-gram drafting only)
    state: str | None = None  # "loading", "not loaded": shown while no pair is ready yet


def _opt(value: float | int | None) -> str:
    return "–" if value is None else f"{value:g}"


def _gamma(gamma: int, auto: bool) -> str:
    """γ as set: a number, or automatic γ with its cap (``gamma`` is then the cap)."""
    return f"auto (≤ {gamma})" if auto else str(gamma)


def _budget_label(tree: bool) -> str:
    """A tree drafter's γ is its node budget per iteration, and the bar calls it so."""
    return "nodes" if tree else "γ"


def settings_markup(
    started: RunStarted | None, next_run: RunSettings | None, models: ModelLabels | None = None
) -> str:
    """Markup for the bar on one line."""
    return SEP.join(settings_parts(started, next_run, models))


def wrap_parts(parts: list[str], width: int) -> list[str]:
    """Lines of markup, breaking only between parts so a label never leaves its value."""
    lines: list[str] = []
    line: list[str] = []
    used = 0
    for part in parts:
        cells = Content.from_markup(part).cell_length
        if line and used + len(SEP) + cells > width:
            lines.append(SEP.join(line))
            line, used = [], 0
        used += (len(SEP) if line else 0) + cells
        line.append(part)
    if line:
        lines.append(SEP.join(line))
    return lines


def settings_parts(
    started: RunStarted | None, next_run: RunSettings | None, models: ModelLabels | None = None
) -> list[str]:
    """The run's real settings, with ``old→new`` where the next run differs, one part per setting.

    ``models`` (live runs only) are the loaded models: a switched target or draft shows as a change.
    """
    parts: list[str] = []

    def item(label: str, current: str, upcoming: str | None = None) -> None:
        value = escape(current)
        if upcoming is not None and upcoming != current:
            value = f"{value}[$text-warning]→{escape(upcoming)}[/]"
        parts.append(f"[$text-muted]{label}[/] {value}")

    n = next_run
    # The draft the next run would draft with: only the model drafter uses the draft model.
    next_draft = models.draft if models is not None and n is not None and n.drafter == "model" else None
    if started is None:
        if n is None:
            return ["[$text-muted]no run yet[/]"]
        parts.append("[$text-muted]next run[/]")
        if models is not None:
            state = f" ({models.state})" if models.state else ""
            item("target", models.target + state)
        item("mode", n.mode)
        if n.mode == "speculative":
            item("drafter", n.drafter)
            if next_draft:
                item("draft", next_draft)
            item(_budget_label(n.tree), _gamma(n.gamma, n.auto_gamma))
        item("T", f"{n.temperature:g}")
        item("top-k", _opt(n.top_k))
        item("top-p", _opt(n.top_p))
        item("seed", str(n.seed))
        item("max", str(n.max_new_tokens))
        return parts
    speculative = started.mode == "speculative"
    item("target", started.target, None if models is None else models.target)
    if speculative:
        item("drafter", started.drafter or "?", None if n is None or n.mode != "speculative" else n.drafter)
        if started.draft or next_draft:
            item("draft", started.draft or "–", None if models is None or n is None else next_draft or "–")
        # RunStarted records the cap, not whether γ was automatic. No key toggles automatic γ, so
        # a live session's runs are all automatic or none are: the next run's setting tells.
        auto = n is not None and n.auto_gamma
        tree = started.drafter in TREE_DRAFTERS
        upcoming = None
        if n is not None:
            upcoming = _gamma(n.gamma, n.auto_gamma)
            if n.tree != tree:  # the next run counts the other thing: say which
                upcoming = f"{upcoming} nodes" if n.tree else f"γ {upcoming}"
        item(_budget_label(tree), _gamma(started.gamma, auto and not tree), upcoming)
    else:
        item(
            "mode", "plain", None if n is None else ("plain" if n.mode == "autoregressive" else "speculative")
        )
    item("T", f"{started.temperature:g}", None if n is None else f"{n.temperature:g}")
    item("top-k", _opt(started.top_k), None if n is None else _opt(n.top_k))
    item("top-p", _opt(started.top_p), None if n is None else _opt(n.top_p))
    item("seed", str(started.seed), None if n is None else str(n.seed))
    item("max", str(started.max_new_tokens), None if n is None else str(n.max_new_tokens))
    parts.append(escape(f"{started.device}/{started.dtype}"))
    if started.lossy:
        parts.append("[$text-error b]LOSSY[/]")
    return parts


class SettingsBar(Widget):
    DEFAULT_CSS = """
    SettingsBar {
        height: auto;
        max-height: 3;
        background: $panel;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._parts: list[str] = []

    @property
    def markup(self) -> str:
        return SEP.join(self._parts)

    @property
    def plain(self) -> str:
        return Content.from_markup(self.markup).plain

    def show(
        self, started: RunStarted | None, next_run: RunSettings | None, models: ModelLabels | None = None
    ) -> None:
        parts = settings_parts(started, next_run, models)
        if parts != self._parts:
            self._parts = parts
            self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(wrap_parts(self._parts, width)))

    def render(self) -> Content:
        return Content.from_markup("\n".join(wrap_parts(self._parts, max(1, self.content_size.width))))
