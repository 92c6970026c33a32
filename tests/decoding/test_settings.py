"""RunSettings: the one run-settings type, its validation, automatic γ and the replay round trip."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from specviz.decoding.events import RunStarted
from specviz.decoding.settings import AUTO_GAMMA_CAP, RunSettings, gamma_fields, parse_gamma
from tests.support.fake_source import FakeSource


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gamma": -1}, "--gamma must be a whole number >= 0 or 'auto', got -1"),
        ({"temperature": -0.5}, "--temperature must be a finite number >= 0 (0 = greedy), got -0.5"),
        ({"temperature": float("nan")}, "--temperature must be a finite number >= 0 (0 = greedy), got nan"),
        ({"temperature": float("inf")}, "--temperature must be a finite number >= 0 (0 = greedy), got inf"),
        ({"prompt": "caf\udce9"}, "the prompt is not valid UTF-8 text (byte 3 of it): re-encode it as UTF-8"),
        ({"top_k": 0}, "--top-k must be >= 1, got 0"),
        ({"top_p": 1.5}, "--top-p must be in (0, 1], got 1.5"),
        ({"top_p": 0.0}, "--top-p must be in (0, 1], got 0.0"),
        ({"max_new_tokens": 0}, "--max-new-tokens must be >= 1, got 0"),
        ({"draft_confidence": 1.5}, "--draft-confidence must be in [0, 1] (0 = off), got 1.5"),
        ({"tau": 1.0}, "--tau must be in [0, 1), got 1.0"),
        ({"typical_epsilon": 0.0}, "--typical-epsilon must be in (0, 1), got 0.0"),
        ({"typical_delta": 0.0}, "--typical-delta must be > 0, got 0.0"),
        ({"ngram_max": 0}, "ngram_max must be >= 1, got 0"),
        (
            {"drafter": "medusa"},
            "--drafter must be one of model, ngram, tree, lookup-tree, hybrid, got 'medusa'",
        ),
        ({"rule": "greedy"}, "--rule must be one of lossless, threshold, typical, got 'greedy'"),
        ({"cross_method": "bpe"}, "--cross-method must be one of auto, text, tli, got 'bpe'"),
        ({"mode": "plain"}, "mode must be one of speculative, autoregressive, got 'plain'"),
    ],
)
def test_a_bad_value_names_its_flag_and_what_it_allows(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        RunSettings(**({"prompt": "x"} | changes))  # type: ignore[arg-type]
    assert str(caught.value) == message
    # evolve validates too: the UI's keys cannot step a setting out of range unnoticed.
    with pytest.raises(ValueError) as caught:
        RunSettings(prompt="x").evolve(**changes)
    assert str(caught.value) == message


def test_the_defaults_are_the_command_line_defaults() -> None:
    s = RunSettings(prompt="x")
    assert (s.gamma, s.auto_gamma, s.drafter, s.mode) == (8, False, "model", "speculative")
    assert (s.top_k, s.top_p, s.max_new_tokens) == (None, None, 128)
    assert (s.draft_confidence, s.rule) == (0.4, "lossless")
    assert s.greedy and not s.evolve(temperature=0.7).greedy
    # γ 0 drafts nothing (a plain step per iteration); the bench's plain methods run with it.
    assert RunSettings(prompt="x", gamma=0).gamma == 0


def test_parse_gamma_takes_a_whole_number_or_auto() -> None:
    assert parse_gamma("auto") == "auto" and parse_gamma("12") == 12
    with pytest.raises(ValueError, match="whole number or 'auto', not 'fast'"):
        parse_gamma("fast")
    with pytest.raises(ValueError):
        parse_gamma("2.5")


def test_automatic_gamma_keeps_its_cap_in_gamma() -> None:
    assert gamma_fields("auto") == (AUTO_GAMMA_CAP, True) == (16, True)
    assert gamma_fields(5) == (5, False)
    gamma, auto_gamma = gamma_fields(parse_gamma("auto"))
    settings = RunSettings(prompt="x", gamma=gamma, auto_gamma=auto_gamma)
    lower = settings.evolve(gamma=settings.gamma - 1)
    assert (lower.gamma, lower.auto_gamma) == (15, True)


def test_evolve_keeps_every_field_it_does_not_change() -> None:
    cli = RunSettings(prompt="x", chat=True, rule="threshold", tau=0.2, draft_confidence=None, adaptive=True)
    ui = cli.evolve(gamma=3, temperature=0.8, drafter="ngram", mode="autoregressive")
    assert (ui.chat, ui.rule, ui.tau, ui.draft_confidence, ui.adaptive) == (
        True,
        "threshold",
        0.2,
        None,
        True,
    )
    assert (ui.gamma, ui.temperature, ui.drafter, ui.mode) == (3, 0.8, "ngram", "autoregressive")
    assert cli.gamma == 8  # frozen: evolve copies


@pytest.mark.parametrize("mode", ["speculative", "autoregressive"])
def test_from_run_started_round_trips_what_a_trace_records(mode: str) -> None:
    asked = RunSettings(
        prompt="x", gamma=6, temperature=0.7, top_k=40, top_p=0.9, seed=4, max_new_tokens=50, drafter="ngram"
    )
    asked = asked.evolve(mode=mode)
    started = next(FakeSource()(asked))
    assert isinstance(started, RunStarted)
    expected = asked if mode == "speculative" else asked.evolve(gamma=0, drafter="model")
    assert RunSettings.from_run_started(started) == expected


def test_from_run_started_reads_a_cross_tokenizer_drafter_as_the_model_drafter() -> None:
    started = next(FakeSource()(RunSettings(prompt="x", gamma=3)))
    assert isinstance(started, RunStarted)
    settings = RunSettings.from_run_started(replace(started, drafter="cross-tli"))
    assert (settings.drafter, settings.cross_method) == ("model", "tli")


def test_the_settings_module_does_not_import_torch() -> None:
    """The UI edits RunSettings and never imports torch."""
    code = "import sys, specviz.decoding.settings; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_token_trees_take_a_node_budget_and_rejection_sampling_only() -> None:
    tree = RunSettings(prompt="x", drafter="hybrid", gamma=12)
    assert (
        tree.tree
        and tree.uses_draft_model
        and not RunSettings(prompt="x", drafter="lookup-tree").uses_draft_model
    )
    assert RunSettings(prompt="x", drafter="tree", auto_gamma=True).tree  # automatic node budgets
    with pytest.raises(ValueError, match="--drafter tree verifies with rejection sampling only: drop --rule"):
        RunSettings(prompt="x", drafter="tree", rule="threshold")
    # A plain run keeps its drafter setting (the UI toggles modes) without the tree checks.
    assert (
        RunSettings(prompt="x", drafter="tree", rule="threshold", mode="autoregressive").rule == "threshold"
    )
