"""The CLI end to end on tiny random checkpoints saved to a temp folder (the real loading path)."""

from __future__ import annotations

import json

import pytest

from specviz.cli import main
from specviz.decoding.events import Iteration, RunFinished, RunStarted, read_trace
from tests.support.tiny_models import save_tiny_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPT = "def add(a, b):\n    return a + b\n\ndef add("


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    target = save_tiny_checkpoint(root / "target", seed=1)
    draft = save_tiny_checkpoint(root / "draft", seed=2)
    return target, draft


def _run(tmp_path, target, draft, *extra: str) -> dict:
    out = tmp_path / "summary.json"
    trace = tmp_path / "trace.jsonl"
    argv = ["run", PROMPT, "--headless", "--target", target, "--draft", draft, "--device", "cpu"]
    argv += ["--max-new-tokens", "24", "--json", str(out), "--trace", str(trace), *extra]
    assert main(argv) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("drafter", ["model", "ngram"])
def test_headless_greedy_with_baseline_is_identical(tmp_path, tiny_pair, drafter: str) -> None:
    target, draft = tiny_pair
    summary = _run(tmp_path, target, draft, "--baseline", "--drafter", drafter, "--gamma", "3")
    required = {
        "text",
        "token_ids",
        "iterations",
        "drafted",
        "accepted",
        "acceptance_rate",
        "mean_accepted_length",
        "per_position_acceptance",
        "tokens_per_s",
        "target",
        "draft",
        "drafter",
        "gamma",
        "temperature",
        "device",
        "dtype",
        "baseline_tokens_per_s",
        "speedup",
        "identical",
    }
    assert required <= set(summary)
    assert summary["drafter"] == drafter

    events = list(read_trace(tmp_path / "trace.jsonl"))
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    # With --baseline the trace holds the speculative run, then the plain one (for replayed races).
    runs = [i for i, e in enumerate(events) if isinstance(e, RunStarted)]
    assert [events[i].mode for i in runs] == ["speculative", "autoregressive"]
    speculative, plain = events[: runs[1]], events[runs[1] :]
    spec_done, plain_done = speculative[-1], plain[-1]
    assert isinstance(spec_done, RunFinished) and isinstance(plain_done, RunFinished)
    assert summary["token_ids"] == list(spec_done.token_ids) and len(spec_done.token_ids) == 24
    # "identical" is the decoder's claim; the two runs' tokens are the evidence.
    assert spec_done.token_ids == plain_done.token_ids and summary["identical"] is True

    # Every count and rate in the summary, recounted from the speculative run's iterations.
    iterations = [e for e in speculative if isinstance(e, Iteration)]
    drafted = sum(len(e.drafted) for e in iterations)
    accepted = sum(e.n_accepted for e in iterations)
    committed = sum(len(e.new_token_ids) for e in iterations)
    assert committed == 24
    assert (summary["iterations"], summary["drafted"], summary["accepted"]) == (
        len(iterations),
        drafted,
        accepted,
    )
    assert summary["acceptance_rate"] == pytest.approx(accepted / drafted)
    assert summary["mean_accepted_length"] == pytest.approx(committed / len(iterations))
    # Identical because the verifier corrected the drafts it rejected, not because none was wrong.
    assert any(e.correction.kind == "resampled" for e in iterations)


def test_sampling_run_is_reproducible_with_seed(tmp_path, tiny_pair) -> None:
    target, draft = tiny_pair
    a = _run(tmp_path, target, draft, "--temperature", "1.0", "--seed", "7")
    b = _run(tmp_path, target, draft, "--temperature", "1.0", "--seed", "7")
    c = _run(tmp_path, target, draft, "--temperature", "1.0", "--seed", "8")
    assert a["token_ids"] == b["token_ids"]
    assert a["token_ids"] != c["token_ids"]


def test_mismatched_vocabularies_use_cross_tokenizer_drafting(tmp_path, tiny_pair) -> None:
    """A draft whose ids mean different strings is bridged through text, never fed raw ids."""
    target, _ = tiny_pair
    other = save_tiny_checkpoint(tmp_path / "other", seed=3, shuffle_seed=5)
    summary = _run(tmp_path, target, other, "--baseline", "--gamma", "3")
    assert summary["identical"] is True
    assert summary["drafter"] == "cross-text"


def test_lossy_rule_is_labelled(tmp_path, tiny_pair, capsys) -> None:
    target, draft = tiny_pair
    summary = _run(tmp_path, target, draft, "--rule", "threshold", "--tau", "0.2", "--temperature", "1")
    assert summary["lossy"] is True
    assert "LOSSY" in capsys.readouterr().out
    events = list(read_trace(tmp_path / "trace.jsonl"))
    assert events[0].lossy is True


def test_unknown_model_and_long_prompt_errors(tmp_path, tiny_pair, capsys) -> None:
    target, draft = tiny_pair
    assert main(["run", "x", "--headless", "--target", str(tmp_path / "nope"), "--device", "cpu"]) == 2
    assert "does not exist" in " ".join(capsys.readouterr().err.split())
    long_prompt = "x" * 300  # 300 byte tokens > 256 positions
    assert (
        main(["run", long_prompt, "--headless", "--target", target, "--draft", draft, "--device", "cpu"]) == 2
    )
    assert "context window is 256" in " ".join(capsys.readouterr().err.split())


def test_ctrl_c_keeps_what_was_decoded(tmp_path, tiny_pair, monkeypatch) -> None:
    """Interrupt after a few iterations: exit 130, the trace ends with a cancelled RunFinished, the
    summary JSON holds the tokens decoded so far."""
    import specviz.commands.run as rc

    target, draft = tiny_pair
    real_consume_sinks = rc.StreamPrinter.__call__
    seen = {"n": 0}

    def interrupting(self, event):
        if isinstance(event, Iteration):
            seen["n"] += 1
            if seen["n"] == 3:
                raise KeyboardInterrupt
        return real_consume_sinks(self, event)

    monkeypatch.setattr(rc.StreamPrinter, "__call__", interrupting)
    out, trace = tmp_path / "s.json", tmp_path / "t.jsonl"
    argv = [
        "run",
        PROMPT,
        "--headless",
        "--target",
        target,
        "--draft",
        draft,
        "--device",
        "cpu",
        "--max-new-tokens",
        "40",
        "--json",
        str(out),
        "--trace",
        str(trace),
    ]
    assert main(argv) == 130
    events = list(read_trace(trace))
    assert isinstance(events[-1], RunFinished) and events[-1].reason == "cancelled"
    summary = json.loads(out.read_text())
    assert summary["finish_reason"] == "cancelled"
    assert len(summary["token_ids"]) == sum(len(e.new_token_ids) for e in events if isinstance(e, Iteration))
    assert 0 < len(summary["token_ids"]) < 40


def test_lossy_cost_command_reports_exact_tv(capsys) -> None:
    assert main(["lossy-cost", "--seeds", "2"]) == 0
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in capsys.readouterr().out.splitlines()
        if line.count("│") >= 3
    }
    lossless = next(v for k, v in rows.items() if k.startswith("lossless"))
    threshold = next(v for k, v in rows.items() if k.startswith("threshold"))
    assert float(lossless) < 1e-6
    assert float(threshold) > 0.05
