"""Metrics of the run at the playhead as JSON and CSV, and the run itself as a JSON-lines trace."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from specviz.decoding import events
from specviz.decoding.stats import summary_of
from specviz.tui.recording import Recording

CSV_FIELDS = (
    "index",
    "gamma",
    "drafted",
    "accepted",
    "committed",
    "correction",
    "correction_text",
    "draft_time_s",
    "verify_time_s",
    "total_tokens",
)


def metrics(run: Recording, n: int, baseline: Recording | None = None) -> dict[str, Any]:
    """The ``--json`` summary of ``run`` after ``n`` iterations, with the playhead's own keys added.

    Timings are the summed draft and verify times, as the stats bar shows them. The run-end keys
    describe the playhead: ``text`` and ``token_ids`` are what the first ``n`` iterations committed,
    ``finish_reason`` is None before the last iteration, and ``identical`` (with a baseline) is None
    until then. The UI's earlier names stay as aliases: ``alpha_hat`` (= ``alpha_estimate``),
    ``tokens``, ``acceptance_by_position`` (= ``per_position_acceptance``) and ``measured_speedup``
    (= ``speedup``); ``cost_ratio_c`` and ``baseline_tokens_per_s`` are there without a baseline too,
    c then estimated from the verify step.
    """
    stats = run.stats(n)
    base = baseline.stats() if baseline is not None else None
    at_end = run.finished is not None and n == len(run)
    token_ids = list(run.token_ids(n))
    summary = summary_of(stats, base)
    if baseline is not None:
        summary.update(
            baseline_text=baseline.text(len(baseline)),
            identical=token_ids == list(baseline.token_ids(len(baseline))) if at_end else None,
        )
    return {
        "run": asdict(run.started) if run.started is not None else None,
        "iterations_shown": n,
        "iterations_total": len(run),
        "finished": run.finished.reason if at_end else None,
        **summary,
        "text": run.text(n),
        "token_ids": token_ids,
        "finish_reason": run.finished.reason if at_end else None,
        "tokens": stats.committed,
        "acceptance_rate_note": "accepted / drafted; not Leviathan's alpha",
        "alpha_hat": stats.alpha_estimate,
        "alpha_hat_note": "mean sum_x min(p, q) over verified drafted positions",
        "mean_accepted_length_note": "tokens committed per iteration, correction included (>= 1)",
        "acceptance_by_position": stats.per_position_acceptance,
        "accepted_length_histogram": list(stats.length_counts),
        "cost_ratio_c": stats.cost_ratio(base),
        "cost_ratio_note": "draft step / target step; target step from the plain baseline if present",
        "baseline_tokens_per_s": base.tokens_per_s if base is not None else None,
        "measured_speedup": stats.speedup(base),
    }


def write_metrics_json(path: Path, run: Recording, n: int, baseline: Recording | None = None) -> Path:
    path.write_text(
        json.dumps(metrics(run, n, baseline), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return path


def write_metrics_csv(path: Path, run: Recording, n: int) -> Path:
    """One row per iteration up to the playhead."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for it in run.iterations[:n]:
            writer.writerow(
                [
                    it.index,
                    it.gamma,
                    len(it.drafted),
                    it.n_accepted,
                    len(it.new_token_ids),
                    it.correction.kind,
                    it.correction.text,
                    f"{it.draft_time_s:.6f}",
                    f"{it.verify_time_s:.6f}",
                    it.total_tokens,
                ]
            )
    return path


def write_runs(path: Path, runs: list[Recording]) -> Path:
    """The runs' events in order, readable by ``events.read_trace`` and by replay."""
    return events.write_trace(path, (event for run in runs for event in run.events()))
