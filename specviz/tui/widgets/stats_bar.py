"""One line of run statistics at the playhead; the least important parts drop out when narrow."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widget import Widget

from specviz.decoding.stats import RunStats


@dataclass(frozen=True)
class StatsView:
    """What the stats bar shows; a value object so the bar only repaints when it changes."""

    state: str
    shown: int
    total: int
    stats: RunStats | None  # after the shown iterations
    show_timings: bool = True
    baseline: RunStats | None = None  # a plain run of the same model: speedup and measured c


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def stats_parts(view: StatsView) -> list[tuple[int, str]]:
    """(priority, markup) parts in display order; lower priority numbers stay longest."""
    parts: list[tuple[int, str]] = [
        (0, f"[b]{view.state}[/]"),
        (0, f"[$text-muted]it[/] {view.shown}/{view.total}"),
    ]
    s = view.stats
    if s is None:
        return parts
    if s.drafted:
        parts.append((1, f"[$text-muted]acc[/] {s.accepted}/{s.drafted} [b]{_pct(s.acceptance_rate)}[/]"))
        parts.append((2, f"[$text-muted]len[/] {_fmt(s.mean_accepted_length, '.2f')}"))
    parts.append((3, f"[$text-muted]tok[/] {s.committed}"))
    if view.show_timings:
        parts.append((2, f"{_fmt(s.tokens_per_s, '.1f')} [$text-muted]tok/s[/]"))
        if s.drafted:
            parts.append(
                (
                    4,
                    f"[$text-muted]draft[/] {s.draft_time_s:.2f}s [$text-muted]verify[/] {s.verify_time_s:.2f}s",
                )
            )
        speedup, cost_ratio = s.speedup(view.baseline), s.cost_ratio(view.baseline)
        if speedup is not None:
            parts.append((3, f"[b]{speedup:.2f}×[/] [$text-muted]vs plain[/]"))
        if cost_ratio is not None:
            parts.append((6, f"[$text-muted]c[/] {cost_ratio:.2f}"))
    if s.alpha_estimate is not None:
        parts.append((5, f"[$text-muted]α≈[/]{s.alpha_estimate:.2f}"))
    return parts


def fit_parts(parts: list[tuple[int, str]], width: int, sep: str = "  ") -> str:
    """Join parts, dropping the lowest-priority ones until the line fits ``width`` cells."""
    kept = list(parts)
    while True:
        markup = sep.join(m for _, m in kept)
        if Content.from_markup(markup).cell_length <= width or len(kept) <= 1:
            return markup
        worst = max(range(len(kept)), key=lambda i: (kept[i][0], i))
        del kept[worst]


class StatsBar(Widget):
    DEFAULT_CSS = """
    StatsBar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view: StatsView | None = None

    @property
    def view(self) -> StatsView | None:
        return self._view

    def update_view(self, view: StatsView) -> None:
        if view != self._view:
            self._view = view
            self.refresh()

    def render(self) -> Content:
        if self._view is None:
            return Content("")
        return Content.from_markup(fit_parts(stats_parts(self._view), max(1, self.content_size.width)))
