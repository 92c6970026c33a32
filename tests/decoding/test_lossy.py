"""Lossy acceptance rules: exact enumeration of the loop, and the real loop checked against it."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from scipy.stats import chisquare

from specviz.decoding.acceptance import verify
from specviz.decoding.backends import TableLM
from specviz.decoding.decoder import DecodeConfig, speculative_decode
from specviz.decoding.drafters import ModelDrafter
from specviz.decoding.events import Iteration, RunFinished, RunStarted
from specviz.decoding.lossy import (
    ThresholdRule,
    TypicalRule,
    as_exact_rule,
    entropy,
    exact_output_distribution,
    exact_target_distribution,
    rule_for,
    threshold_verifier,
    total_variation,
    typical_verifier,
)
from specviz.decoding.sampling import SamplingConfig
from tests.support.tv import estimate_tv_from_samples, tv_permutation_baseline

SAMPLINGS = [SamplingConfig(temperature=1.0), SamplingConfig(temperature=0.7, top_k=3, top_p=0.9)]
SAMPLING_IDS = ["t1", "t0.7-topk3-topp0.9"]


def _pair(vocab: int = 4) -> tuple[TableLM, TableLM]:
    return TableLM(vocab, order=2, seed=11, sharpness=1.0), TableLM(vocab, order=2, seed=12, sharpness=1.0)


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=SAMPLING_IDS)
@pytest.mark.parametrize("gamma", [1, 2, 3])
def test_enumerated_lossless_loop_is_exactly_the_target(sampling: SamplingConfig, gamma: int) -> None:
    """Validates the enumerator: the lossless rule must give back the target's distribution."""
    target, draft = _pair()
    exact = exact_target_distribution(target, [1], 3, sampling)
    got = exact_output_distribution(target, draft, [1], 3, sampling, gamma, verify)
    assert math.isclose(sum(got.values()), 1.0, abs_tol=1e-9)
    assert total_variation(got, exact) < 1e-6


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=SAMPLING_IDS)
def test_lossy_rules_move_the_output_distribution(sampling: SamplingConfig) -> None:
    target, draft = _pair()
    exact = exact_target_distribution(target, [1], 3, sampling)
    for rule in (threshold_verifier(0.1), typical_verifier(0.09, 0.3)):
        got = exact_output_distribution(target, draft, [1], 3, sampling, 2, rule)
        assert math.isclose(sum(got.values()), 1.0, abs_tol=1e-9)
        assert total_variation(got, exact) > 0.2, f"{rule} should be clearly lossy on this pair"


def test_lossy_rules_are_exact_in_greedy_mode() -> None:
    target, draft = _pair(5)
    greedy = SamplingConfig(temperature=0)
    exact = exact_target_distribution(target, [1, 2], 4, greedy)
    for rule in (threshold_verifier(0.3), typical_verifier(0.09, 0.3)):
        assert (
            total_variation(exact_output_distribution(target, draft, [1, 2], 4, greedy, 3, rule), exact) == 0
        )


def test_real_loop_with_threshold_rule_matches_the_enumeration(codec) -> None:
    """Validates both sides: the decoder loop with the lossy rule against the enumerated distribution.

    The same counts must also reject the target's own distribution, so the test has power.
    """
    vocab, n_tokens, prompt, runs = 4, 3, [1], 1500
    sampling = SamplingConfig(temperature=1.0)
    rule = threshold_verifier(0.1)
    target, draft = _pair(vocab)
    drafter = ModelDrafter(draft, sampling, target_vocab_size=vocab)
    counts: Counter[tuple[int, ...]] = Counter()
    kinds: Counter[str] = Counter()
    for seed in range(runs):
        config = DecodeConfig(
            max_new_tokens=n_tokens, gamma=2, sampling=sampling, seed=seed, verifier=rule, lossy=True
        )
        events = list(speculative_decode(target, drafter, prompt, config, codec))
        assert isinstance(events[0], RunStarted) and events[0].lossy
        assert isinstance(events[-1], RunFinished)
        counts[events[-1].token_ids] += 1
        for e in events:
            if isinstance(e, Iteration):
                kinds[e.correction.kind] += 1
                assert all(d.u is None for d in e.drafted), "a threshold rule draws no uniforms"
    assert kinds["resampled"] > 100 and kinds["bonus"] > 100

    def p_value(dist: dict[tuple[int, ...], float]) -> float:
        seqs = sorted(set(dist) | set(counts))
        total = sum(dist.values())
        return chisquare([counts[s] for s in seqs], [dist.get(s, 1e-12) / total * runs for s in seqs]).pvalue

    lossy = exact_output_distribution(target, draft, prompt, n_tokens, sampling, 2, rule)
    assert set(counts) <= set(lossy)
    assert p_value(lossy) > 1e-3, "the loop's lossy output differs from the enumerated one"
    assert p_value(exact_target_distribution(target, prompt, n_tokens, sampling)) < 1e-6


def test_lossless_runs_are_not_labelled_lossy(codec) -> None:
    target, draft = _pair()
    greedy = SamplingConfig(temperature=0)
    started = next(
        iter(speculative_decode(target, ModelDrafter(draft, greedy, 4), [1], DecodeConfig(), codec))
    )
    assert isinstance(started, RunStarted) and not started.lossy


def test_threshold_rule_worked_example(cpu_generator: torch.Generator) -> None:
    target_probs = torch.tensor([[0.6, 0.3, 0.1], [0.05, 0.05, 0.9], [0.2, 0.5, 0.3]])  # [k + 1, vocab]
    draft_probs = torch.tensor([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05]])  # [k, vocab]
    rule = threshold_verifier(0.2)
    # Token 1 has target 0.3 > 0.2: accepted although the draft over-proposes it (0.8). Token 0 at
    # position 1 has target 0.05: rejected; the correction is drawn from target_probs[1] itself.
    result = rule(torch.tensor([1, 0]), draft_probs, target_probs, cpu_generator, greedy=False)
    assert result.n_accepted == 1 and result.next_kind == "resampled"
    assert result.uniforms == [None, None]
    assert result.ratios == pytest.approx([0.3 / 0.8, 0.05 / 0.9])
    assert result.draft_token_probs == pytest.approx([0.8, 0.9])
    assert result.target_token_probs == pytest.approx([0.3, 0.05])
    torch.testing.assert_close(result.next_dist, target_probs[1])

    bonus = rule(torch.tensor([0, 2]), None, target_probs, cpu_generator, greedy=False)
    assert bonus.n_accepted == 2 and bonus.next_kind == "bonus"
    torch.testing.assert_close(bonus.next_dist, target_probs[2])
    assert bonus.draft_token_probs == [1.0, 1.0]  # no draft distribution: one-hot

    greedy_rows = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    greedy = rule(torch.tensor([2]), None, greedy_rows, cpu_generator, greedy=True)
    assert greedy.n_accepted == 0 and greedy.next_token == 1


def test_typical_threshold_worked_example() -> None:
    uniform = torch.full((4,), 0.25)  # H = ln 4, so delta * exp(-H) = 0.3 / 4 = 0.075 < 0.09
    assert float(entropy(uniform)) == pytest.approx(math.log(4))
    rule = typical_verifier(0.09, 0.3)
    assert rule.threshold(uniform) == pytest.approx(0.075)
    peaked = torch.tensor([0.97, 0.01, 0.01, 0.01])  # low entropy: the bar is epsilon
    assert rule.threshold(peaked) == pytest.approx(0.09)
    rows = torch.stack([uniform, peaked])  # [k, vocab]
    # 0.25 > 0.075 on the flat row; 0.01 < 0.09 on the peaked one.
    assert rule.acceptance_probabilities([0.25, 0.25], [0.25, 0.01], rows) == [1.0, 0.0]
    with pytest.raises(ValueError):
        typical_verifier(0.0, 0.3)
    with pytest.raises(ValueError):
        threshold_verifier(1.0)


def test_opaque_verifier_cannot_be_enumerated() -> None:
    with pytest.raises(TypeError, match="no exact description"):
        as_exact_rule(lambda *args: None)


def test_tv_helpers_worked_examples() -> None:
    assert total_variation({(0,): 0.5, (1,): 0.5}, {(0,): 1.0}) == pytest.approx(0.5)
    a = [[0, 1], [0, 2], [1, 1], [1, 1]]
    b = [[0, 1], [0, 1], [0, 2], [1, 2]]
    # whole sequences: a = {01: .25, 02: .25, 11: .5}, b = {01: .5, 02: .25, 12: .25}
    assert estimate_tv_from_samples(a, b) == pytest.approx(0.5)
    # first token only: a = {0: .5, 1: .5}, b = {0: .75, 1: .25}
    assert estimate_tv_from_samples(a, b, prefix_len=1) == pytest.approx(0.25)
    gen = torch.Generator().manual_seed(0)
    same = [[int(x)] for x in torch.randint(0, 3, (400,), generator=gen)]
    baseline = tv_permutation_baseline(same[:200], same[200:], gen, rounds=10)
    assert 0 < baseline < 0.15


def test_rule_names_map_to_rules() -> None:
    assert rule_for("lossless", 0.1, 0.09, 0.3) is verify and not verify.lossy
    assert rule_for("threshold", 0.2, 0.09, 0.3) == ThresholdRule(0.2)
    assert rule_for("typical", 0.2, 0.05, 0.4) == TypicalRule(epsilon=0.05, delta=0.4)
    assert rule_for("threshold", 0.2, 0.09, 0.3).lossy and rule_for("typical", 0.2, 0.09, 0.3).lossy
    with pytest.raises(ValueError, match="unknown acceptance rule"):
        rule_for("greedy", 0.1, 0.09, 0.3)


def test_unlabelled_lossy_verifier_is_refused() -> None:
    with pytest.raises(ValueError, match="lossy=True"):
        DecodeConfig(verifier=threshold_verifier(0.1))
    with pytest.raises(ValueError, match="lossy=True"):
        DecodeConfig(verifier=lambda *args: None)  # type: ignore[arg-type]
    assert DecodeConfig(verifier=threshold_verifier(0.1), lossy=True).lossy
