"""Bad arguments get a clear message and exit code 2, never a traceback (no model is loaded)."""

from __future__ import annotations

import pytest

from specviz.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["theory", "--c", "inf"], "--c must be a finite number"),
        (["theory", "--c", "nan"], "--c must be a finite number"),
        (["theory", "--c", "-1"], "--c must be a finite number"),
        (["theory", "--alpha", "nan"], "--alpha must be in [0, 1]"),
        (["theory", "--alpha", "1.5"], "--alpha must be in [0, 1]"),
        (["theory", "--max-gamma", "0"], "--max-gamma must be between 1 and 64"),
    ],
)
def test_theory_refuses_values_that_mean_nothing(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
