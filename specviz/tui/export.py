"""Metrics of the run at the playhead as JSON and CSV, and the run itself as a JSON-lines trace."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from specviz.decoding.events import TraceWriter
from specviz.tui.recording import Recording
from specviz.tui.run_stats import acceptance_by_position, accepted_length_histogram, summarise

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
    """A JSON-ready summary of ``run`` after ``n`` iterations, with its conventions named."""
    stats = summarise(run, n, baseline)
    shown = run.iterations[:n]
    return {
        "run": asdict(run.started) if run.started is not None else None,
        "iterations_shown": n,
        "iterations_total": len(run),
        "finished": run.finished.reason if run.finished is not None and n == len(run) else None,
        "drafted": stats.drafted,
        "accepted": stats.accepted,
        "tokens": stats.tokens,
        "acceptance_rate": stats.acceptance_rate,
        "acceptance_rate_note": "accepted / drafted; not Leviathan's alpha",
        "alpha_hat": stats.alpha_hat,
        "alpha_hat_note": "mean sum_x min(p, q) over verified drafted positions",
        "mean_accepted_length": stats.mean_accepted_length,
        "mean_accepted_length_note": "tokens committed per iteration, correction included (>= 1)",
        "acceptance_by_position": acceptance_by_position(shown),
        "accepted_length_histogram": accepted_length_histogram(shown),
        "draft_time_s": stats.draft_time_s,
        "verify_time_s": stats.verify_time_s,
        "tokens_per_s": stats.tokens_per_s,
        "cost_ratio_c": stats.cost_ratio,
        "cost_ratio_note": "draft step / target step; target step from the plain baseline if present",
        "baseline_tokens_per_s": stats.baseline_tokens_per_s,
        "measured_speedup": stats.measured_speedup,
        "text": run.text(n),
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


def write_trace(path: Path, runs: list[Recording]) -> Path:
    """The runs' events in order, readable by ``events.read_trace`` and by replay."""
    with path.open("w", encoding="utf-8") as handle:
        writer = TraceWriter(handle)
        for run in runs:
            if run.started is not None:
                writer.write(run.started)
            for it in run.iterations:
                writer.write(it)
            if run.finished is not None:
                writer.write(run.finished)
    return path
