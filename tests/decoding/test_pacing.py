"""Automatic γ: the running α estimate, falling back to plain steps, and the cost table kept per setup
(the table and the cost-optimal length itself: tests/decoding/test_costs.py; losslessness:
tests/decoding/test_lossless.py)."""

from __future__ import annotations

import pytest

from specviz.decoding.backends import TableLM
from specviz.decoding.costs import CostTable
from specviz.decoding.decoder import DecodeConfig, speculative_decode
from specviz.decoding.drafters import NgramDrafter
from specviz.decoding.drafters.paced import AcceptanceEstimate, PacedDrafter
from specviz.decoding.events import Iteration, RunFinished
from specviz.decoding.sampling import SamplingConfig


def test_acceptance_estimate_counts_trials_to_first_rejection() -> None:
    est = AcceptanceEstimate(prior=0.5, prior_trials=2.0, decay=1.0)
    est.update(n_accepted=3, n_drafted=3)  # 3 of 3
    est.update(n_accepted=1, n_drafted=4)  # 1 success, then the rejection: 2 trials
    est.update(n_accepted=0, n_drafted=0)  # nothing drafted: no information
    assert est.value == pytest.approx((1.0 + 3 + 1) / (2.0 + 3 + 2))
    decaying = AcceptanceEstimate(prior=0.5, prior_trials=2.0, decay=0.5)
    decaying.update(0, 2)
    assert decaying.value == pytest.approx((0.5 * 1.0 + 0) / (0.5 * 2.0 + 1))


def test_falls_back_to_plain_steps_and_probes(codec) -> None:
    """A drafter that is always wrong: pacing stops drafting, probing every 4th iteration."""
    vocab = 6
    target = TableLM(vocab, order=1, seed=3, sharpness=4.0)
    # The lookup drafter proposes the prompt's continuation, which the target does not follow.
    drafter = PacedDrafter(
        NgramDrafter(max_ngram=1), CostTable(0.0, (1.0, 1.3, 1.6, 1.9)), probe_every=4, window=2
    )
    prompt = [0, 1, 2, 3, 4, 5] * 3
    config = DecodeConfig(max_new_tokens=40, gamma=3, sampling=SamplingConfig(0.0), seed=0)
    events = list(speculative_decode(target, drafter, prompt, config, codec))
    iterations = [e for e in events if isinstance(e, Iteration)]
    asked = [it.gamma for it in iterations]
    assert 0 in asked, "pacing never fell back to plain steps"
    zeros = [i for i, a in enumerate(asked) if a == 0]
    assert all(len(it.drafted) == 0 for it in (iterations[i] for i in zeros))
    # After a fallback, no run of plain iterations exceeds probe_every - 1.
    run = longest = 0
    for a in asked:
        run = run + 1 if a == 0 else 0
        longest = max(longest, run)
    assert 0 < longest <= 3
    plain = list(speculative_decode(target, NgramDrafter(max_ngram=1), prompt, config, codec))[-1]
    assert isinstance(events[-1], RunFinished) and isinstance(plain, RunFinished)
    assert events[-1].token_ids == plain.token_ids  # greedy: same text whatever the lengths


def test_cost_table_is_measured_once_per_setup_and_monotone(tmp_path, monkeypatch) -> None:
    from specviz.session import cost_cache

    monkeypatch.setenv("SPECVIZ_COSTS", str(tmp_path / "costs"))
    target = TableLM(8, order=1, seed=1)
    draft = TableLM(8, order=1, seed=2)
    stages: list[str] = []
    first = cost_cache.load_or_measure("k1", target, draft, 9, stages.append)
    assert len(stages) == 1 and len(first.verify_s) == 9
    assert all(a <= b for a, b in zip(first.verify_s, first.verify_s[1:], strict=False))
    again = cost_cache.load_or_measure("k1", target, draft, 5, stages.append)
    assert len(stages) == 1, "a stored table that covers the request is reused"
    assert again.verify_s == first.verify_s[:5]
    cost_cache.load_or_measure("k1", target, draft, 12, stages.append)
    assert len(stages) == 2, "a longer request measures again"
    (tmp_path / "costs" / "k1.json").write_text("{not json")
    cost_cache.load_or_measure("k1", target, draft, 4, stages.append)
    assert len(stages) == 3, "a corrupt file is measured again, not an error"
