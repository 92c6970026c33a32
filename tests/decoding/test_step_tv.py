"""Iteration.step_tv: the exact one-step TV between a rule's first emitted token and the target.

Checked against an independent float64 computation: lossy.py's enumeration of the whole loop
(γ = 1, two tokens, so the first iteration drafts one), marginalised to the first token.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

from specviz.decoding.acceptance import AcceptanceRule, verify
from specviz.decoding.backends import TableLM
from specviz.decoding.decoder import DecodeConfig, speculative_decode
from specviz.decoding.drafters import ModelDrafter
from specviz.decoding.events import Iteration
from specviz.decoding.lossy import (
    exact_output_distribution,
    exact_target_distribution,
    threshold_verifier,
    total_variation,
    typical_verifier,
)
from specviz.decoding.sampling import SamplingConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RULES: list[AcceptanceRule] = [verify, threshold_verifier(0.1), typical_verifier(0.09, 0.3)]
RULE_IDS = ["lossless", "threshold", "typical"]
SAMPLINGS = [SamplingConfig(temperature=1.0), SamplingConfig(temperature=0.7, top_k=4, top_p=0.9)]
SAMPLING_IDS = ["t1", "t0.7-topk4-topp0.9"]


def _pair(vocab: int = 6, draft_sharpness: float = 1.0) -> tuple[TableLM, TableLM]:
    return (
        TableLM(vocab, order=2, seed=11, sharpness=1.0),
        TableLM(vocab, order=2, seed=12, sharpness=draft_sharpness),
    )


def _iterations(
    target: TableLM, draft: TableLM, rule: AcceptanceRule, sampling: SamplingConfig, codec, seed: int = 3
) -> tuple[list[int], list[Iteration]]:
    """A decoded run's prompt and iterations (γ = 3, 12 tokens)."""
    prompt = [1, 2]
    config = DecodeConfig(
        max_new_tokens=12, gamma=3, sampling=sampling, seed=seed, verifier=rule, lossy=rule.lossy
    )
    drafter = ModelDrafter(draft, sampling, target_vocab_size=target.vocab_size)
    events = speculative_decode(target, drafter, prompt, config, codec)
    return prompt, [e for e in events if isinstance(e, Iteration)]


def _enumerated_step_tv(
    target: TableLM, draft: TableLM, context: list[int], sampling: SamplingConfig, rule: AcceptanceRule
) -> float:
    """TV of the first token after ``context``: the loop enumerated in float64 (γ = 1, 2 tokens)."""
    first: defaultdict[tuple[int, ...], float] = defaultdict(float)
    for seq, prob in exact_output_distribution(target, draft, context, 2, sampling, 1, rule).items():
        first[seq[:1]] += prob
    return total_variation(dict(first), exact_target_distribution(target, context, 1, sampling))


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=SAMPLING_IDS)
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_step_tv_equals_the_enumerated_one_step_distance(
    rule: AcceptanceRule, sampling: SamplingConfig, codec
) -> None:
    target, draft = _pair()
    prompt, iterations = _iterations(target, draft, rule, sampling, codec)
    context = list(prompt)
    checked = 0
    for it in iterations:
        if it.drafted:
            expected = _enumerated_step_tv(target, draft, context, sampling, rule)
            assert it.step_tv == pytest.approx(expected, abs=1e-6), f"iteration {it.index}"
            checked += 1
        else:
            assert it.step_tv is None, "an iteration that drafted nothing has no one-step TV"
        context += it.new_token_ids
    assert checked >= 3
    if rule.lossy:  # the comparison has power: the values are not all ~0
        assert max(it.step_tv or 0.0 for it in iterations) > 0.01
    else:
        assert all(it.step_tv < 1e-6 for it in iterations if it.step_tv is not None)


def test_threshold_rule_on_a_case_built_to_be_lossy(codec) -> None:
    """Every target probability above τ: everything the draft proposes is kept, so the first token
    follows the draft's distribution, not the target's. By hand: TV = 0.5·(0.6 + 3·0.2) = 0.6."""
    draft_probs = torch.tensor([0.7, 0.1, 0.1, 0.1])
    target_probs = torch.tensor([0.1, 0.3, 0.3, 0.3])
    rule = threshold_verifier(0.05)
    torch.testing.assert_close(rule.step_distribution(draft_probs, target_probs), draft_probs)
    assert rule.step_tv(draft_probs, target_probs) == pytest.approx(0.6, abs=1e-6)
    assert verify.step_tv(draft_probs, target_probs) < 1e-6

    # The decoder on toy models: a draft 4× sharper than the target, τ below every target row's mass.
    target, draft = _pair(vocab=4, draft_sharpness=4.0)
    _, iterations = _iterations(target, draft, threshold_verifier(0.02), SamplingConfig(1.0), codec)
    values = [it.step_tv for it in iterations if it.step_tv is not None]
    assert values and sum(values) / len(values) > 0.05
    _, lossless = _iterations(target, draft, verify, SamplingConfig(1.0), codec)
    assert all(it.step_tv < 1e-6 for it in lossless if it.step_tv is not None)


def test_lossless_step_tv_is_rounding_on_a_large_vocabulary() -> None:
    generator = torch.Generator().manual_seed(5)
    target_probs = (3 * torch.randn(50_000, generator=generator)).softmax(-1)
    draft_probs = (3 * torch.randn(50_000, generator=generator)).softmax(-1)
    assert verify.step_tv(draft_probs, target_probs) < 1e-5
    # The same rows under a lossy rule, so ~0 above is the rule's doing (0.0045 here).
    assert typical_verifier(0.09, 0.3).step_tv(draft_probs, target_probs) > 1e-3


@pytest.mark.parametrize("rule", [*RULES, threshold_verifier(0.25)], ids=[*RULE_IDS, "threshold-tie"])
def test_acceptance_row_agrees_with_the_verify_loops_probabilities(rule: AcceptanceRule) -> None:
    """The vectorised row (step_tv) and the per-drafted-token list (the verify loop) are one rule.

    The rows hold zeros (a top-k cut: q = 0, p = 0, both 0) and an entry exactly at τ = 0.25.
    """
    draft_probs = torch.tensor([0.25, 0.0, 0.3, 0.0, 0.05, 0.4])
    target_probs = torch.tensor([0.25, 0.2, 0.0, 0.0, 0.35, 0.2])
    row = rule.acceptance_row(draft_probs, target_probs).tolist()
    listed = [
        rule.acceptance_probabilities([float(q)], [float(p)], target_probs.unsqueeze(0))[0]
        for q, p in zip(draft_probs, target_probs, strict=True)
    ]
    assert row == pytest.approx(listed)
    kept = draft_probs * torch.tensor(listed)
    torch.testing.assert_close(rule.kept(draft_probs, target_probs), kept)


def test_greedy_runs_record_no_step_tv(codec) -> None:
    target, draft = _pair()
    _, iterations = _iterations(target, draft, verify, SamplingConfig(temperature=0), codec)
    assert iterations and all(it.step_tv is None for it in iterations)
