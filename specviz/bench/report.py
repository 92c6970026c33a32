"""Aggregates raw measurements into per-category tables, predictions, charts and JSON."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections import defaultdict
from typing import Any

from rich import box
from rich.table import Table

from specviz.bench.methods import SPECULATIVE, TREE_METHODS, USES_DRAFT_MODEL
from specviz.bench.recommend import Recommendation, recommend
from specviz.bench.runner import BenchPlan, Measurement
from specviz.bench.targets import Target, check
from specviz.decoding.costs import CostTable, predicted_run_s, predicted_speedup
from specviz.decoding.stats import RunStats


def _geomean(values: list[float]) -> float:
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else 0.0


def sweep_summary(results: list[Measurement], costs: CostTable | None) -> dict[str, Any]:
    """summary[mode][category][method@gamma] -> figures; speedups are per-prompt ratios of median
    tokens/s against plain decoding in the same run, then a geometric mean over prompts (and the
    same against transformers' assisted generation, ``speedup_vs_hf_assisted``, where it ran)."""
    groups: dict[tuple[str, str, str, int | str], list[Measurement]] = defaultdict(list)
    for m in results:
        groups[(m.mode, m.category, m.method, m.gamma)].append(m)

    def median_tps(ms: list[Measurement], prompt: str) -> float | None:
        values = [m.tokens_per_s for m in ms if m.prompt == prompt]
        return statistics.median(values) if values else None

    plain_first: dict[tuple[str, str], list[int]] = {}
    for m in results:
        if m.method == "plain" and m.repeat == 0:
            plain_first[(m.mode, m.prompt)] = m.token_ids

    out: dict[str, Any] = {}

    def order(item: tuple[tuple[str, str, str, int | str], list[Measurement]]) -> tuple[Any, ...]:
        mode, category, method, gamma = item[0]
        return (mode, category, method, isinstance(gamma, str), str(gamma).zfill(4))

    def ratio_to(ms: list[Measurement], base: list[Measurement], prompts: list[str]) -> float | None:
        """Geometric mean over prompts of median tokens/s of ``ms`` over that of ``base``."""
        ratios = []
        for p in prompts:
            a, b = median_tps(ms, p), median_tps(base, p)
            if a and b:
                ratios.append(a / b)
        return _geomean(ratios) if ratios else None

    for (mode, category, method, gamma), ms in sorted(groups.items(), key=order):
        plain = groups.get((mode, category, "plain", 0), [])
        prompts = sorted({m.prompt for m in ms})
        tps = [t for p in prompts if (t := median_tps(ms, p)) is not None]
        entry: dict[str, Any] = {
            "method": method,
            "gamma": gamma,
            "prompts": len(prompts),
            "runs": len(ms),
            "tokens_per_s": statistics.mean(tps) if tps else 0.0,
            "speedup": ratio_to(ms, plain, prompts),
        }
        hf = groups.get((mode, category, "hf_assisted", 0), [])
        if hf and method.startswith("specviz_"):
            entry["speedup_vs_hf_assisted"] = ratio_to(ms, hf, prompts)
        pooled = RunStats.pooled(m.stats for m in ms)
        iterations = pooled.iterations
        if method in SPECULATIVE and iterations:
            entry["acceptance_rate"] = pooled.acceptance_rate
            entry["alpha_estimate"] = pooled.alpha_estimate
            entry["mean_accepted_length"] = pooled.mean_accepted_length
            entry["drafted_per_iteration"] = pooled.drafted / iterations
            # Where an iteration's time went, to set beside the cost model's T(d + 1) + d * draft step.
            entry["draft_ms_per_iteration"] = 1000 * pooled.draft_time_s / iterations
            entry["verify_ms_per_iteration"] = 1000 * pooled.verify_time_s / iterations
            entry["wall_ms_per_iteration"] = 1000 * sum(m.time_s for m in ms) / iterations
            # A tree's target scores every node; its draft built them in fewer forwards than nodes.
            scored = forwards = None
            if method in TREE_METHODS:
                scored = sum(m.nodes or 0 for m in ms) / iterations
                forwards = sum(m.draft_forwards or 0 for m in ms) / iterations
                entry["nodes_per_iteration"] = scored
                entry["draft_forwards_per_iteration"] = forwards
            if costs is not None:
                uses_draft = method in USES_DRAFT_MODEL
                entry["predicted_steady_speedup"] = predicted_speedup(
                    costs,
                    pooled.drafted / iterations if scored is None else scored,
                    pooled.committed / iterations,
                    uses_draft=uses_draft,
                    draft_forwards_per_iteration=forwards,
                )
                entry["predicted_speedup"] = _predicted_with_prefill(costs, ms, plain, uses_draft)
                if method == "specviz_model" and entry["alpha_estimate"]:
                    entry["cost_model_best_gamma"] = costs.best_length(min(entry["alpha_estimate"], 0.999))
        else:
            entry["acceptance_rate"] = None
        reference = groups.get((mode, category, "plain_reference", 0), [])
        if reference and method != "plain":
            # Against whichever plain run was faster on each prompt (the other dtype may be).
            fastest = []
            for p in prompts:
                a = median_tps(ms, p)
                b = max(median_tps(plain, p) or 0.0, median_tps(reference, p) or 0.0)
                if a and b:
                    fastest.append(a / b)
            entry["speedup_vs_fastest_plain"] = _geomean(fastest) if fastest else None
        if mode == "greedy" and method not in ("plain", "plain_reference"):
            checks = [
                m.token_ids == plain_first[(mode, m.prompt)] for m in ms if (mode, m.prompt) in plain_first
            ]
            entry["identical"] = all(checks) if checks else None
        out.setdefault(mode, {}).setdefault(category, {})[f"{method}@{gamma}" if gamma else method] = entry
    return out


def _predicted_with_prefill(
    costs: CostTable, runs: list[Measurement], plain: list[Measurement], uses_draft: bool
) -> float | None:
    """The cost model's speedup for these runs: per prompt, predicted tokens/s of the runs over
    predicted tokens/s of plain decoding (each with its measured prefill), geometric mean. A tree
    run is priced by the nodes its target scored and the draft forwards that built them."""

    def tps(ms: list[Measurement], drafting: bool) -> float | None:
        seconds = tokens = 0.0
        for m in ms:
            if m.prefill_s is None:
                return None
            if not drafting:  # plain decoding: one T(1) step per token
                seconds += predicted_run_s(costs, m.new_tokens, m.new_tokens, 0, False, m.prefill_s)
            else:  # a tree: all its nodes scored, built in fewer draft forwards than nodes
                tree = m.nodes is not None
                seconds += predicted_run_s(
                    costs,
                    m.new_tokens,
                    m.iterations or 0,
                    (m.nodes if tree else m.drafted) or 0,
                    uses_draft,
                    m.prefill_s,
                    draft_forwards=m.draft_forwards if tree else None,
                    verify_rows=m.verify_rows,
                )
            tokens += m.new_tokens
        return tokens / seconds if seconds > 0 else None

    ratios = []
    for prompt in sorted({m.prompt for m in runs}):
        spec = tps([m for m in runs if m.prompt == prompt], True)
        base = tps([m for m in plain if m.prompt == prompt], False)
        if spec and base:
            ratios.append(spec / base)
    return _geomean(ratios) if ratios else None


def best_per_method(summary: dict[str, Any]) -> dict[str, Any]:
    """summary[mode][category][method] with the best measured γ for each speculative method."""
    best: dict[str, Any] = {}
    for mode, cats in summary.items():
        for category, entries in cats.items():
            for entry in entries.values():
                key = entry["method"]
                slot = best.setdefault(mode, {}).setdefault(category, {})
                if key not in slot or (entry["speedup"] or 0) > (slot[key]["speedup"] or 0):
                    slot[key] = entry
    return best


def overall(best: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, cats in best.items():
        methods = {m for entries in cats.values() for m in entries}
        for method in sorted(methods):
            speedups = [
                cats[c][method]["speedup"] for c in cats if method in cats[c] and cats[c][method]["speedup"]
            ]
            out.setdefault(mode, {})[method] = {"speedup_geomean": _geomean(speedups) if speedups else None}
    return out


def environment(session: Any) -> dict[str, Any]:
    import torch
    import transformers

    from specviz import __version__

    return {
        "specviz": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(session.target.device),
        "target_dtype": str(session.target.dtype).removeprefix("torch."),
        "target": session.options.target,
        "draft": session.options.draft,
        "draft_quant": session.draft_quant,
        "target_linear_packed": any(
            type(m).__name__ == "PackedLinear" for m in session.target.model.modules()
        ),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _fmt(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


# Short labels keep the tables readable in an 80-column terminal; the JSON keeps the full names.
METHOD_LABELS = {
    "plain": "plain",
    "plain_reference": "plain ref",
    "specviz_model": "draft",
    "specviz_ngram": "lookup",
    "specviz_tree": "tree",
    "specviz_lookup_tree": "lookup tree",
    "specviz_hybrid": "hybrid",
    "hf_assisted": "hf assist",
    "hf_prompt_lookup": "hf lookup",
}
CATEGORY_LABELS = {
    "code_completion": "complete",
    "code_editing": "edit",
    "chat_explanation": "chat",
    "summarisation": "summary",
    "translation": "translate",
    "arithmetic": "arith",
}


def tables(best: dict[str, Any]) -> list[Table]:
    out = []
    for mode, cats in best.items():
        entries_all = [e for entries in cats.values() for e in entries.values()]
        # Columns a run has no figures for (no reference dtype, no transformers run) are left out,
        # so the table stays within 80 columns.
        with_fast = any(e.get("speedup_vs_fastest_plain") is not None for e in entries_all)
        with_hf = any(e.get("speedup_vs_hf_assisted") is not None for e in entries_all)
        table = Table(
            title=f"specviz bench — {mode}",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            show_edge=False,  # with the padding: 11 columns fit in 80
            padding=(0, 0, 0, 1),
            collapse_padding=True,
            caption="γ: drafted tokens, or a tree's node budget; ×plain: speedup over plain decoding in "
            "the same run; ×fast: over the faster of plain and plain ref (another dtype); ×hf: over "
            "transformers' assisted generation; pred: cost-model prediction; acc: acceptance rate; "
            "len: tokens per iteration; same: greedy output = plain's (same dtype). draft/lookup/tree "
            "= specviz, hf = transformers. The JSON has α estimates and every raw timing.",
        )
        columns = ["category", "method", "γ", "tok/s", "×plain"]
        columns += ["×fast"] if with_fast else []
        columns += ["×hf"] if with_hf else []
        columns += ["pred", "acc", "len", "same"]
        for col in columns:
            left = col in ("category", "method")
            table.add_column(
                col, justify="left" if left else "right", no_wrap=True, min_width=max(4, len(col))
            )
        for category, entries in cats.items():
            for method, e in sorted(entries.items()):
                ident = e.get("identical")
                row = [
                    CATEGORY_LABELS.get(category, category),
                    METHOD_LABELS.get(method, method),
                    str(e["gamma"] or "–"),
                    _fmt(e["tokens_per_s"], ".1f"),
                    _fmt(e["speedup"], ".2f"),
                ]
                row += [_fmt(e.get("speedup_vs_fastest_plain"), ".2f")] if with_fast else []
                row += [_fmt(e.get("speedup_vs_hf_assisted"), ".2f")] if with_hf else []
                row += [
                    _fmt(e.get("predicted_speedup"), ".2f"),
                    _fmt(e.get("acceptance_rate"), ".2f"),
                    _fmt(e.get("mean_accepted_length"), ".1f"),
                    "–" if ident is None else ("yes" if ident else "NO"),
                ]
                table.add_row(*row)
            table.add_section()
        out.append(table)
    return out


def targets_table(targets: list[Target]) -> Table:
    """The issue's targets; for a missed draft-model target, the draft step or the tokens per
    iteration that would have met it (see targets.py)."""
    table = Table(
        title="targets (greedy, best γ per method)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="against the faster plain run where a reference dtype was measured; tree rows: "
        "tokens/s ratios in the same run (×hf, ×its chain), and for predictions got = "
        "|predicted / measured − 1|, met when at most need; would reach it: the draft step (ms) at "
        "the measured acceptance, or the tokens per iteration at the measured costs, that meet the "
        "target",
    )
    for col in ("target", "category", "need", "got", "met", "would reach it"):
        table.add_column(
            col, justify="right" if col in ("need", "got") else "left", no_wrap=col != "would reach it"
        )
    for t in targets:
        how = ""
        if t.met is False and t.tokens_per_iteration:
            step = (
                f"draft {t.draft_step_ms:.0f}→{t.needed_draft_step_ms:.0f} ms"
                if t.needed_draft_step_ms and t.draft_step_ms
                else "no draft cost"
            )
            how = f"{step} or len {t.tokens_per_iteration:.1f}→{t.needed_tokens_per_iteration:.1f}"
        if t.note:
            how = f"{how} ({t.note})" if how else t.note
        met = "–" if t.met is None else ("yes" if t.met else "NO")
        category = CATEGORY_LABELS.get(t.category, t.category)
        table.add_row(t.name, category, f"{t.required:.2f}", _fmt(t.measured, ".2f"), met, how)
    return table


def recommendations_table(items: list[Recommendation]) -> Table:
    """Which drafter and γ to use per category: the fastest measured, and the cost model's γ."""
    table = Table(title="recommended (fastest measured specviz setting)", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("mode", "category", "drafter", "γ", "×plain", "cost model γ (draft model)"):
        table.add_column(col, justify="left" if col in ("mode", "category", "drafter") else "right")
    for r in items:
        table.add_row(
            r.mode,
            CATEGORY_LABELS.get(r.category, r.category),
            r.drafter if r.drafter != "none" else "none (plain)",
            "–" if r.gamma is None else str(r.gamma),
            f"{r.speedup:.2f}",
            "–" if r.cost_model_gamma is None else str(r.cost_model_gamma),
        )
    return table


def charts(summary: dict[str, Any], width: int = 100) -> str:
    """Speedup vs γ per speculative method (mean over categories), and measured vs predicted."""
    import plotext as plt

    texts = []
    for mode, cats in summary.items():
        per: dict[str, dict[int | str, list[float]]] = defaultdict(lambda: defaultdict(list))
        pairs: list[tuple[float, float]] = []
        for entries in cats.values():
            for e in entries.values():
                if e["method"].startswith("specviz_") and e["speedup"]:
                    per[e["method"]][e["gamma"]].append(e["speedup"])
                    if e.get("predicted_speedup"):
                        pairs.append((e["predicted_speedup"], e["speedup"]))
        if not per:
            continue
        plt.clf()
        plt.plotsize(width, 18)
        plt.theme("clear")
        fixed = sorted(g for by_gamma in per.values() for g in by_gamma if isinstance(g, int))
        span = [fixed[0], fixed[-1]] if fixed else [0, 1]
        for method, by_gamma in per.items():
            gammas = sorted(g for g in by_gamma if isinstance(g, int))
            if gammas:
                plt.plot(gammas, [_geomean(by_gamma[g]) for g in gammas], label=method, marker="dot")
            if "auto" in by_gamma:  # automatic γ has no x position: a level line across the sweep
                level = _geomean(by_gamma["auto"])
                plt.plot(span, [level, level], label=f"{method} auto γ")
        plt.hline(1.0)
        plt.title(f"{mode}: measured speedup vs γ (geomean over categories)")
        plt.xlabel("γ (trees: nodes per iteration)")
        texts.append(plt.build())
        if pairs:
            plt.clf()
            plt.plotsize(width, 16)
            plt.theme("clear")
            plt.scatter([p for p, _ in pairs], [m for _, m in pairs], marker="x", label="category×γ")
            lo, hi = min(min(pairs)), max(max(pairs))
            plt.plot([lo, hi], [lo, hi], label="measured = predicted")
            plt.title(f"{mode}: measured (y) vs cost-model prediction (x)")
            texts.append(plt.build())
    return "\n".join(texts)


def to_json(
    plan: BenchPlan, costs: CostTable | None, results: list[Measurement], env: dict[str, Any]
) -> dict[str, Any]:
    summary = sweep_summary(results, costs)
    best = best_per_method(summary)
    return {
        "environment": env,
        "plan": {
            "prompts": [p.name for p in plan.prompts],
            "methods": plan.methods,
            "modes": plan.modes,
            "gammas": plan.gammas,
            "repeats": plan.repeats,
            "max_new_tokens": plan.max_new_tokens,
            "seed": plan.seed,
            "draft_confidence": plan.draft_confidence,
            "reference_dtype": plan.reference_dtype,
            "cost_ks": plan.cost_ks,
            "interrupted": plan.interrupted,
            "error": plan.error,
        },
        "notes": (
            "speedup = tokens/s of a method / tokens/s of plain specviz decoding, per prompt in the same "
            "run (median over repeats), geometric mean over a category's prompts. identical compares "
            "greedy output token ids with plain decoding at the same target dtype (a different dtype "
            "changes near-ties). plain_reference = plain decoding of the target in reference_dtype; "
            "speedup_vs_fastest_plain divides by the faster of plain and plain_reference per prompt."
        ),
        "costs": costs.to_json() if costs else None,
        "categories": best,
        "sweep": summary,
        "overall": overall(best),
        "targets": [t.to_json() for t in check(best)],
        "recommendations": [r.to_json() for r in recommend(summary)],
        "measurements": [m.to_json() for m in results],
    }
