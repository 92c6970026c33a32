"""The cost table: its one interpolation, the cost model on it, and its measurement on a toy model."""

from __future__ import annotations

import pytest

from specviz.decoding.backends import TableLM
from specviz.decoding.costs import (
    CostTable,
    measure_costs,
    measure_pacing_costs,
    predicted_run_s,
    predicted_speedup,
)
from specviz.decoding.theory import expected_tokens, speedup


def test_filled_table_is_linear_between_measured_k_and_flat_beyond() -> None:
    measured = {1: 0.10, 4: 0.16, 8: 0.40}
    table = CostTable.from_measured(0.01, measured, max_k=10, context_tokens=96)
    expected = []
    for k in range(1, 11):
        if k <= 4:
            expected.append(0.10 + (k - 1) * (0.16 - 0.10) / (4 - 1))
        elif k <= 8:
            expected.append(0.16 + (k - 4) * (0.40 - 0.16) / (8 - 4))
        else:
            expected.append(0.40)  # beyond the last measured k: flat
    assert table.verify_s == pytest.approx(tuple(expected))
    assert [table.verify_s[k - 1] for k in measured] == list(measured.values())  # measured k exactly
    assert table.draft_step_s == 0.01 and table.context_tokens == 96 and table.max_draft == 9
    # Measured points out of order, and a gap at the start filled from T(1).
    assert CostTable.from_measured(0.0, {3: 2.0, 1: 1.0, 5: 2.0}, max_k=6).verify_s == pytest.approx(
        (1.0, 1.5, 2.0, 2.0, 2.0, 2.0)
    )
    with pytest.raises(ValueError, match="T\\(1\\)"):
        CostTable.from_measured(0.01, {2: 1.0}, max_k=3)


def test_fractional_k_uses_the_same_interpolation() -> None:
    t1 = 0.3
    table = CostTable(0.06, tuple(t1 * (1 + 0.3 * k) for k in range(16)))
    assert table.verify_time(2.5) == pytest.approx((table.verify_s[1] + table.verify_s[2]) / 2)
    assert table.verify_time(3.25) == pytest.approx(0.75 * table.verify_s[2] + 0.25 * table.verify_s[3])
    assert [table.verify_time(k) for k in range(1, 17)] == list(table.verify_s)
    assert table.verify_time(0.2) == table.verify_s[0]  # clamped to the table
    assert table.verify_time(40.0) == table.verify_s[-1]
    # A table filled from a few points answers a fractional k like the points themselves would.
    sparse = CostTable.from_measured(0.0, {1: 1.0, 5: 3.0}, max_k=5)
    assert sparse.verify_time(2.5) == pytest.approx(1.0 + 1.5 * (3.0 - 1.0) / 4)


def test_tokens_per_second_and_best_length_by_hand() -> None:
    costs = CostTable(draft_step_s=0.1, verify_s=(1.0, 1.0, 1.0))
    assert costs.tokens_per_s(0.5, 2) == pytest.approx(expected_tokens(0.5, 2) / (2 * 0.1 + 1.0))
    # alpha 0.5: k=0 -> 1/1 = 1.0; k=1 -> 1.5/1.1 = 1.364; k=2 -> 1.75/1.2 = 1.458
    assert costs.best_length(0.5, cap=2) == 2
    assert costs.best_length(0.5, cap=1) == 1
    # alpha 0.05: k=1 -> 1.05/1.1 < 1, drafting does not pay
    assert costs.best_length(0.05, cap=2) == 0
    # verifying 3 tokens costs 2x: alpha 0.5, k=2 -> 1.75/2.2 = 0.80, k=1 -> 1.5/1.1 = 1.36
    steep = CostTable(draft_step_s=0.1, verify_s=(1.0, 1.0, 2.0))
    assert steep.best_length(0.5, cap=2) == 1
    assert costs.best_length(0.99, cap=10) == 2  # never past the table
    assert costs.best_length(0.99) == 2


def test_cost_table_validation_and_views() -> None:
    with pytest.raises(ValueError):
        CostTable(0.1, ())
    with pytest.raises(ValueError):
        CostTable(-0.1, (1.0,))
    with pytest.raises(ValueError):
        CostTable(0.1, (1.0, 0.0))
    assert CostTable(0.0, (1.0,)).tokens_per_s(1.0, 0) == 1.0
    table = CostTable(0.02, (0.2, 0.25, 0.3), context_tokens=16)
    assert table.up_to(2) == CostTable(0.02, (0.2, 0.25), context_tokens=16)
    assert table.without_draft_cost() == CostTable(0.0, table.verify_s, context_tokens=16)
    data = table.to_json()
    assert data == {
        "verify_s": [0.2, 0.25, 0.3],
        "draft_step_s": 0.02,
        "context_tokens": 16,
    }  # bench JSON keys
    assert CostTable.from_json(data) == table
    assert CostTable.from_json({"draft_step_s": 0.02, "verify_s": [0.2]}).context_tokens is None


def test_cost_model_matches_leviathan_when_verification_is_free() -> None:
    t1, draft, gamma, alpha = 0.3, 0.06, 4, 0.8
    costs = CostTable(draft_step_s=draft, verify_s=(t1,) * 16, context_tokens=128)
    tokens = expected_tokens(alpha, gamma)
    assert predicted_speedup(costs, gamma, tokens, uses_draft=True) == pytest.approx(
        speedup(alpha, gamma, draft / t1)
    )
    assert costs.tokens_per_s(alpha, gamma) * t1 == pytest.approx(speedup(alpha, gamma, draft / t1))
    growing = CostTable(draft, tuple(t1 * (1 + 0.3 * k) for k in range(16)), context_tokens=128)
    assert predicted_speedup(growing, gamma, tokens, True) < predicted_speedup(costs, gamma, tokens, True)
    # A lookup drafter drafts for free.
    assert predicted_speedup(costs, gamma, tokens, uses_draft=False) == pytest.approx(tokens)


def test_run_prediction_counts_the_prefill() -> None:
    costs = CostTable(draft_step_s=0.02, verify_s=(0.2, 0.25, 0.3, 0.35), context_tokens=16)
    # 4 iterations drafting 3 tokens each: 12 draft steps + 4 * T(4), after a 1.5 s prefill.
    assert predicted_run_s(costs, 16, 4, 12, True, 1.5) == pytest.approx(1.5 + 12 * 0.02 + 4 * 0.35)
    assert predicted_run_s(costs, 16, 4, 12, False, 0.0) == pytest.approx(4 * 0.35)  # lookup: free drafts
    plain = predicted_run_s(costs, 16, 16, 0, False, 1.5)
    assert plain == pytest.approx(1.5 + 16 * 0.2)
    # 4 tokens per 0.59 s iteration is 6.8 tok/s against 5 tok/s plain; the shared prefill dilutes that.
    assert plain / predicted_run_s(costs, 16, 4, 12, True, 1.5) < 2.0
    assert predicted_run_s(costs, 0, 0, 0, True, 0.7) == 0.7  # nothing generated: only the prefill


def test_measurement_on_a_toy_model() -> None:
    target, draft = TableLM(8, order=1, seed=1), TableLM(8, order=1, seed=2)
    full = measure_costs(target, draft, max_k=5, context_tokens=12, repeats=1)
    assert len(full.verify_s) == 5 and full.context_tokens == 12 and full.draft_step_s > 0
    assert measure_costs(target, None, max_k=2, context_tokens=4, repeats=1).draft_step_s == 0.0
    paced = measure_pacing_costs(target, draft, max_k=9)
    assert len(paced.verify_s) == 9
    assert all(a <= b for a, b in zip(paced.verify_s, paced.verify_s[1:], strict=False)), "T(k) is monotone"


def test_the_measured_cost_model_reduces_to_leviathan_when_verification_is_free() -> None:
    """With T(k) = T(1), tokens/s × T(1) is Leviathan et al.'s speedup with c = draft step / T(1)."""
    t1, draft = 0.3, 0.12
    flat = CostTable(draft, (t1,) * 17)
    for gamma in (1, 4, 8):
        assert flat.tokens_per_s(0.7, gamma) * t1 == pytest.approx(speedup(0.7, gamma, draft / t1))


def test_the_measured_cost_model_penalises_expensive_verification() -> None:
    growing = CostTable(0.1, tuple(0.3 * (1 + 0.25 * (k - 1)) for k in range(1, 17)))  # T(k) grows
    assert growing.tokens_per_s(0.8, 8) * 0.3 < speedup(0.8, 8, 0.1 / 0.3)
    assert growing.tokens_per_s(0.8, 0) * 0.3 == pytest.approx(1.0)
    assert growing.best_length(0.05) == 0  # drafting never pays at α ≈ 0
