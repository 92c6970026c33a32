"""The ladders the next-run setting keys step along, and the stepping itself.

Keys step through a few meaningful values instead of adding a constant: a temperature of 0.7 or a
top-p of 0.95 is what people try, and a value given on the command line that is not on a ladder
snaps to its nearest rung on the first key press. ``None`` (top-k/top-p off: every token) is the
top rung, the least restrictive setting.

The drafter key cycles through what the loaded pair offers (:class:`DrafterCycle`), changing what
else a drafter needs changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from specviz.decoding.settings import AUTO_GAMMA_CAP, TREE_DRAFTERS, RunSettings

TEMPERATURES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5)
TOP_KS: tuple[int | None, ...] = (1, 2, 3, 5, 10, 20, 40, 50, 100, None)
TOP_PS: tuple[float | None, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99, None)
MAX_NEW_TOKENS: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048)
# γ (or automatic γ's cap) one at a time, up to automatic γ's default cap: the verify costs measured
# when the models load cover that far. The command line may ask for more; a key press then comes
# back to the top rung.
GAMMAS: tuple[int, ...] = tuple(range(1, AUTO_GAMMA_CAP + 1))

T = TypeVar("T")  # a rung: int, float, or None for "off"


def step(ladder: Sequence[T], current: T, direction: int) -> T:
    """The rung ``direction`` steps from the one nearest ``current`` (clamped at both ends).

    >>> step(TOP_KS, 40, 1), step(TOP_KS, 45, -1), step(TOP_KS, None, -1), step(TOP_PS, 0.99, 1)
    (50, 40, 100, None)
    """

    def distance(rung: T) -> float:
        if rung is None or current is None:
            return 0.0 if rung is current else float("inf")
        return abs(float(rung) - float(current))

    nearest = min(range(len(ladder)), key=lambda i: distance(ladder[i]))
    if current is not None and ladder[nearest] != current and direction:
        # Off the ladder: the first press lands on the neighbouring rung in that direction.
        below = ladder[nearest] is not None and ladder[nearest] < current  # type: ignore[operator]
        if (direction > 0) == below:
            return ladder[max(0, min(len(ladder) - 1, nearest + direction))]
        return ladder[nearest]
    return ladder[max(0, min(len(ladder) - 1, nearest + direction))]


class DrafterCycle:
    """``d``: the next drafter the loaded pair offers, with the settings kept valid for it.

    A tree drafter's γ is a node budget that it spends whole; automatic γ paces chains only, and
    RunSettings refuses the two together. So stepping onto a tree drafter turns automatic γ off,
    keeping its cap as the budget, and says so; stepping back onto a chain drafter turns it on
    again. Tree verification is rejection sampling only: under a lossy rule (``--rule``) the tree
    drafters are stepped over, with a word why.
    """

    def __init__(self) -> None:
        self._auto_gamma_parked = False  # automatic γ was on before a tree drafter turned it off

    def step(self, settings: RunSettings, drafters: Sequence[str]) -> tuple[dict[str, object], str | None]:
        """The changes for the next drafter after ``settings.drafter``, and a notice if more changed."""
        offered = list(drafters) or ["model"]
        at = offered.index(settings.drafter) if settings.drafter in offered else -1
        drafter = offered[(at + 1) % len(offered)]
        notices: list[str] = []
        if settings.rule != "lossless" and drafter in TREE_DRAFTERS:
            chains = [d for d in offered if d not in TREE_DRAFTERS]
            later = [d for d in offered[at + 1 :] + offered[: at + 1] if d in chains]
            drafter = later[0] if later else settings.drafter
            notices.append(
                f"token trees verify with rejection sampling only, not the {settings.rule} rule this "
                f"session runs: d skips {', '.join(d for d in offered if d in TREE_DRAFTERS)}"
            )
        changes: dict[str, object] = {"drafter": drafter}
        if drafter in TREE_DRAFTERS and settings.auto_gamma:
            changes["auto_gamma"] = False
            self._auto_gamma_parked = True
            notices.append(
                f"{drafter} drafts a tree of up to {settings.gamma} nodes: automatic γ is off "
                "(it paces chains); its cap is the node budget. g/G change it"
            )
        elif drafter not in TREE_DRAFTERS and self._auto_gamma_parked:
            changes["auto_gamma"] = True
            self._auto_gamma_parked = False
            notices.append(f"{drafter} drafts chains: automatic γ is back on (≤ {settings.gamma})")
        return changes, " · ".join(notices) or None
