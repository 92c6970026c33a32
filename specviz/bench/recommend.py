"""Per category: which drafter and γ to use, from what the run measured and what the cost model says."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from specviz.bench.methods import DRAFTER, SPECULATIVE


@dataclass(frozen=True)
class Recommendation:
    mode: str
    category: str
    drafter: str  # a --drafter value (model, ngram, tree, lookup-tree, hybrid), or "none" (plain was faster)
    gamma: int | str | None  # for a tree drafter: the node budget
    speedup: float  # measured, over plain decoding in the same run
    cost_model_gamma: int | None  # the draft model's best γ by the cost model, for its measured α

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def recommend(summary: dict[str, Any]) -> list[Recommendation]:
    """The fastest measured specviz configuration per mode and category (report.sweep_summary's output)."""
    out = []
    for mode, cats in summary.items():
        for category, entries in cats.items():
            runs = [e for e in entries.values() if e["method"] in SPECULATIVE and e.get("speedup")]
            if not runs:
                continue
            best = max(runs, key=lambda e: e["speedup"])
            model_runs = [e for e in runs if e["method"] == "specviz_model"]
            model_best = max(model_runs, key=lambda e: e["speedup"]) if model_runs else None
            faster = best["speedup"] >= 1.0
            out.append(
                Recommendation(
                    mode=mode,
                    category=category,
                    drafter=DRAFTER[best["method"]] if faster else "none",
                    gamma=best["gamma"] if faster else None,
                    speedup=best["speedup"] if faster else 1.0,
                    cost_model_gamma=model_best.get("cost_model_best_gamma") if model_best else None,
                )
            )
    return out
