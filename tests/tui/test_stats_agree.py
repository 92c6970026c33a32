"""The UI's playhead statistics and the headless metrics use one set of conventions: check they agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from specviz.decoding.events import read_trace
from specviz.decoding.stats import stats_of
from specviz.tui.recording import split_runs
from specviz.tui.run_stats import acceptance_by_position, summarise

TRACE = Path(__file__).parents[1] / "support" / "data" / "sampled.jsonl"


def test_ui_stats_equal_headless_metrics_on_a_recorded_run() -> None:
    events = list(read_trace(TRACE))
    run = next(r for r in split_runs(events) if r.speculative)
    ui = summarise(run, len(run))
    headless = stats_of(list(run.iterations))
    assert ui.iterations == headless.iterations
    assert ui.drafted == headless.drafted and ui.accepted == headless.accepted
    assert ui.acceptance_rate == pytest.approx(headless.acceptance_rate)
    assert ui.mean_accepted_length == pytest.approx(headless.mean_accepted_length)
    assert ui.alpha_hat == pytest.approx(headless.alpha_estimate)
    assert acceptance_by_position(run.iterations) == headless.per_position_acceptance
