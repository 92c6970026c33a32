"""The benchmark's aggregation on synthetic data, and the command on tiny models (the cost model
is tested in tests/decoding/test_costs.py)."""

from __future__ import annotations

import json
import re

import pytest

from specviz.bench.methods import DEFAULT_TREE_NODES
from specviz.bench.report import best_per_method, sweep_summary
from specviz.bench.runner import Measurement
from specviz.cli import main
from tests.support.tiny_models import save_tiny_checkpoint


def _m(method: str, prompt: str, time_s: float, tokens: list[int], **kw) -> Measurement:
    return Measurement(
        category="code",
        prompt=prompt,
        method=method,
        mode="greedy",
        gamma=kw.pop("gamma", 0),
        repeat=0,
        new_tokens=len(tokens),
        time_s=time_s,
        token_ids=tokens,
        **kw,
    )


def test_summary_speedup_is_per_prompt_ratio_geomean_and_checks_identity() -> None:
    results = [
        _m("plain", "a", 10.0, [1, 2, 3, 4]),
        _m("plain", "b", 10.0, [5, 6, 7, 8]),
        _m(
            "specviz_model",
            "a",
            5.0,
            [1, 2, 3, 4],
            gamma=4,
            drafted=8,
            accepted=6,
            iterations=2,
            overlap_sum=6.5,
            verified=7,
        ),
        _m(
            "specviz_model",
            "b",
            2.5,
            [5, 6, 7, 9],
            gamma=4,
            drafted=8,
            accepted=2,
            iterations=2,
            overlap_sum=3.0,
            verified=4,
        ),
    ]
    summary = sweep_summary(results, costs=None)
    entry = summary["greedy"]["code"]["specviz_model@4"]
    assert entry["speedup"] == pytest.approx((2.0 * 4.0) ** 0.5)  # geomean of 2x and 4x
    assert entry["acceptance_rate"] == pytest.approx(8 / 16)
    assert entry["mean_accepted_length"] == pytest.approx(8 / 4)
    assert entry["alpha_estimate"] == pytest.approx(9.5 / 11)
    assert entry["identical"] is False  # prompt b differs in its last token
    best = best_per_method(summary)
    assert best["greedy"]["code"]["specviz_model"] is entry


def test_bench_command_on_tiny_models(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPECVIZ_COSTS", str(tmp_path / "costs"))  # automatic γ stores its cost table
    target = save_tiny_checkpoint(tmp_path / "t", seed=1)
    draft = save_tiny_checkpoint(tmp_path / "d", seed=2)
    out = tmp_path / "bench.json"
    argv = [
        "bench",
        "--quick",
        "--categories",
        "code_completion,translation",
        "--max-new-tokens",
        "8",
        "--target",
        target,
        "--draft",
        draft,
        "--device",
        "cpu",
        "--json",
        str(out),
        "--reference-dtype",
        "bfloat16",
    ]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    cats = data["categories"]["greedy"]
    assert set(cats) == {"code_completion", "translation"}
    for category in cats.values():
        assert set(category) == {
            "plain",
            "plain_reference",
            "specviz_model",
            "specviz_ngram",
            "specviz_tree",
            "specviz_lookup_tree",
            "specviz_hybrid",
            "hf_assisted",
            "hf_prompt_lookup",
        }
        assert category["plain_reference"].get("identical") is None  # another dtype: no identity claim
        assert category["specviz_model"]["speedup_vs_fastest_plain"] > 0
        for method, entry in category.items():
            assert entry["tokens_per_s"] > 0
            assert "speedup" in entry and "acceptance_rate" in entry
            if method.startswith("specviz_"):
                assert entry["identical"] is True
                assert entry["predicted_speedup"] > 0
    assert len(data["costs"]["verify_s"]) == 64  # token trees score up to 64 rows
    assert {"torch", "transformers", "torch_threads", "device"} <= set(data["environment"])
    assert len(data["measurements"]) == 2 * 9
    assert data["plan"]["reference_dtype"] == "bfloat16"
    # --quick runs the chains with automatic γ, whose cost table is now cached, and the trees
    # with the default node budget.
    gammas = {m["method"]: m["gamma"] for m in data["measurements"] if m["method"].startswith("specviz_")}
    assert gammas == {
        "specviz_model": "auto",
        "specviz_ngram": "auto",
        "specviz_tree": DEFAULT_TREE_NODES,
        "specviz_lookup_tree": DEFAULT_TREE_NODES,
        "specviz_hybrid": DEFAULT_TREE_NODES,
    }
    assert "specviz_model@auto" in data["sweep"]["greedy"]["translation"]
    assert len(list((tmp_path / "costs").glob("*.json"))) == 1


def test_bench_on_your_own_prompts(tmp_path, monkeypatch) -> None:
    """``--prompts FILE.jsonl`` replaces the suite; its categories are the ones measured."""
    monkeypatch.setenv("SPECVIZ_COSTS", str(tmp_path / "costs"))
    target = save_tiny_checkpoint(tmp_path / "t", seed=1)
    prompts = tmp_path / "mine.jsonl"
    lines = [
        {"category": "sql", "prompt": "SELECT name FROM users WHERE", "chat": False},
        {"category": "sql", "prompt": "SELECT id FROM orders WHERE", "chat": False},
        {"category": "poems", "prompt": "Roses are red,", "chat": False, "name": "roses"},
    ]
    prompts.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    out = tmp_path / "bench.json"
    argv = ["bench", "--prompts", str(prompts), "--methods", "plain,specviz_ngram", "--modes", "greedy"]
    argv += ["--gammas-ngram", "3", "--repeats", "1", "--max-new-tokens", "4", "--target", target]
    argv += ["--device", "cpu", "--json", str(out)]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert set(data["categories"]["greedy"]) == {"sql", "poems"}
    measured = sorted((m["category"], m["prompt"]) for m in data["measurements"] if m["method"] == "plain")
    assert measured == [("poems", "roses"), ("sql", "sql-1"), ("sql", "sql-2")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no prompts in it"),
        ("{not json\n", ":1: not JSON"),
        ('["a list"]\n', ":1: expected an object"),
        ('{"prompt": "x"}\n', ':1: "category" must be a non-empty name'),
        ('{"category": "c"}\n\n{"category": "c", "prompt": ""}\n', ':1: "prompt" must be a non-empty string'),
        ('{"category": "c", "prompt": "x", "chat": "yes"}\n', ':1: "chat" must be true or false'),
    ],
)
def test_a_bad_prompts_file_names_its_line(tmp_path, content: str, message: str) -> None:
    from specviz.bench.prompts import load_prompts

    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_prompts(path)
