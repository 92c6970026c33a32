"""Bad decoding flags: one clear line and exit status 2, before any model loads or the UI opens."""

from __future__ import annotations

import pytest

from specviz.cli import main


@pytest.fixture
def no_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    import specviz.commands.ui

    def open_live(*args: object, **kwargs: object) -> None:
        raise AssertionError("the UI opened with invalid settings")

    monkeypatch.setattr(specviz.commands.ui, "open_live", open_live)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--top-k", "0"], "--top-k must be >= 1, got 0"),
        (["--top-p", "1.5"], "--top-p must be in (0, 1], got 1.5"),
        (["--gamma", "-1"], "--gamma must be a whole number >= 0 or 'auto', got -1"),
        (["--max-new-tokens", "0", "--headless"], "--max-new-tokens must be >= 1, got 0"),
    ],
)
def test_a_bad_value_is_an_error_not_a_traceback(
    no_ui: None, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main(["run", *flags]) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich may wrap the line
    assert err == f"error: {message}"


def test_gamma_must_be_a_number_or_auto(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--gamma", "fast"])
    assert exited.value.code == 2
    assert "argument --gamma: γ must be a whole number or 'auto', not 'fast'" in capsys.readouterr().err
