from __future__ import annotations

import json

import pytest

from specviz.decoding.theory import best_gamma, expected_tokens, speedup


def test_paper_worked_examples() -> None:
    # Leviathan et al. 2023, section 3.5 / figure: c = 0.02.
    assert speedup(0.75, 7, 0.02) == pytest.approx(3.16, abs=0.005)
    assert speedup(0.65, 5, 0.02) == pytest.approx(2.40, abs=0.005)


def test_expected_tokens_limits() -> None:
    assert expected_tokens(0.0, 5) == 1.0
    assert expected_tokens(1.0, 5) == 6.0
    assert expected_tokens(0.5, 2) == pytest.approx(1 + 0.5 + 0.25)


def test_not_the_quoted_formula() -> None:
    """``γ / (1 + (1 − α) γ)``, a formula sometimes quoted for the speedup, is not the paper's."""
    alpha, gamma = 0.8, 4
    quoted = gamma / (1 + (1 - alpha) * gamma)
    assert speedup(alpha, gamma, 0.0) != pytest.approx(quoted)


def test_best_gamma_grows_with_alpha_and_shrinks_with_cost() -> None:
    assert best_gamma(0.9, 0.05) > best_gamma(0.6, 0.05)
    assert best_gamma(0.8, 0.5) < best_gamma(0.8, 0.02)


def test_theory_command_prints_both_charts_and_the_best_gamma(capsys) -> None:
    from specviz.cli import main
    from specviz.decoding.theory import best_gamma

    best = best_gamma(0.7, 0.3, 12)
    assert main(["theory", "--alpha", "0.7", "--c", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "speedup vs α (run: α≈0.70)" in out and f"speedup vs γ (run: γ={best})" in out
    assert "γ=7" in out and "α=0.9" in out  # the curves' legends: γ 3/5/7 and α 0.5/0.7/0.9
    assert json.loads(out.strip().splitlines()[-1]) == {"alpha": 0.7, "c": 0.3, "best_gamma": best}


def test_the_cost_model_on_a_table_worked_by_hand() -> None:
    """T(1) = 100 ms, T(5) = 150 ms, a 10 ms draft step, α = 0.8: the three numbers the chart draws."""
    from specviz.decoding.theory import CostTable

    table = CostTable.from_measured(0.010, {1: 0.100, 5: 0.150}, max_k=5)
    by_hand = (1 - 0.8**5) / (1 - 0.8) * 0.100 / (4 * 0.010 + 0.150)
    assert table.speedup(0.8, 4) == pytest.approx(by_hand) == pytest.approx(1.76926, abs=1e-5)
    assert table.verify_ratio(5) == pytest.approx(1.5)
    assert table.cost_ratio == pytest.approx(0.1)
    # The curve stops where the table does: γ = 4 verifies 5 tokens, the last one timed.
    curve = table.speedup_curve(0.8, 16)
    assert len(curve) == 4 and curve[3] == pytest.approx(by_hand)
    assert curve[1] == pytest.approx(expected_tokens(0.8, 2) * 0.100 / (2 * 0.010 + 0.125))
    # Flat verification is Leviathan's assumption: then the two formulas agree.
    flat = CostTable(0.010, (0.100,) * 17)
    assert flat.speedup_curve(0.8, 16) == pytest.approx([speedup(0.8, g, 0.1) for g in range(1, 17)])


def test_the_cost_model_imports_no_torch() -> None:
    """The UI draws the cost model, and the UI never imports torch."""
    import subprocess
    import sys

    code = (
        "import sys; import specviz.decoding.theory, specviz.decoding.stats; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
