"""The verification math in isolation: exact identities and a chi-square test of one step."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chisquare

from specviz.decoding.acceptance import AcceptanceRule, output_distribution, residual, verify
from specviz.decoding.sampling import sample


def _random_dist(vocab: int, seed: int, zeros: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(vocab, generator=gen)
    if zeros:
        logits[torch.randperm(vocab, generator=gen)[:zeros]] = float("-inf")
    return logits.softmax(-1)


@pytest.mark.parametrize("seed", range(20))
def test_one_step_output_distribution_is_exactly_the_target(seed: int) -> None:
    target_probs = _random_dist(6, seed, zeros=seed % 3)
    draft_probs = _random_dist(6, 1000 + seed, zeros=(seed + 1) % 3)
    got = output_distribution(target_probs, draft_probs)
    torch.testing.assert_close(got, target_probs, atol=1e-6, rtol=0)


def test_residual_is_normalised_positive_part() -> None:
    target_probs = torch.tensor([0.5, 0.3, 0.2])
    draft_probs = torch.tensor([0.2, 0.6, 0.2])
    # max(0, p - q) = [0.3, 0, 0] -> [1, 0, 0]
    torch.testing.assert_close(residual(target_probs, draft_probs), torch.tensor([1.0, 0.0, 0.0]))


def test_residual_of_equal_distributions_falls_back_to_target() -> None:
    probs = torch.tensor([0.25, 0.75])
    torch.testing.assert_close(residual(probs, probs), probs)


def _first_token_counts(target_probs, draft_probs, trials: int, seed: int, broken: bool = False):
    gen = torch.Generator().manual_seed(seed)
    counts = torch.zeros(target_probs.shape[-1])
    for _ in range(trials):
        x = torch.multinomial(draft_probs, 1, generator=gen)  # [1]
        stacked_t = torch.stack([target_probs, target_probs])  # [2, vocab]
        result = verify(x, draft_probs.unsqueeze(0), stacked_t, gen, greedy=False)
        if result.n_accepted == 1:
            token = int(x[0])
        elif broken:  # the classic bug: resample from the target instead of the residual
            token = int(torch.multinomial(target_probs, 1, generator=gen))
        else:
            token = result.next_token
        counts[token] += 1
    return counts


def test_chi_square_one_verify_step_matches_target() -> None:
    target_probs = torch.tensor([0.45, 0.25, 0.15, 0.1, 0.05])
    draft_probs = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1])
    trials = 20000
    counts = _first_token_counts(target_probs, draft_probs, trials, seed=7)
    p_value = chisquare(counts.numpy(), (target_probs * trials).numpy()).pvalue
    assert p_value > 1e-3, f"verify output deviates from the target (p={p_value:.2e})"


def test_chi_square_detects_a_wrong_resampling_rule() -> None:
    """The statistical test above has teeth: resampling from the target itself is caught."""
    target_probs = torch.tensor([0.45, 0.25, 0.15, 0.1, 0.05])
    draft_probs = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1])
    trials = 20000
    counts = _first_token_counts(target_probs, draft_probs, trials, seed=7, broken=True)
    p_value = chisquare(counts.numpy(), (target_probs * trials).numpy()).pvalue
    assert p_value < 1e-6


def test_greedy_accepts_until_first_mismatch_and_corrects_with_argmax(cpu_generator) -> None:
    target_probs = torch.tensor(
        [[0.1, 0.6, 0.3], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]]
    )  # argmax: 1, 0, 2, 2
    result = verify(torch.tensor([1, 0, 1]), None, target_probs, cpu_generator, greedy=True)
    assert result.n_accepted == 2
    assert result.next_kind == "resampled"
    assert result.next_token == 2
    result = verify(torch.tensor([1, 0, 2]), None, target_probs, cpu_generator, greedy=True)
    assert (result.n_accepted, result.next_kind, result.next_token) == (3, "bonus", 2)


def test_deterministic_draft_is_one_hot(cpu_generator) -> None:
    """An n-gram draft (no distribution) is accepted with probability target_prob exactly."""
    target_probs = torch.tensor([[0.3, 0.7], [0.5, 0.5]])
    accepted = sum(
        verify(torch.tensor([0]), None, target_probs, cpu_generator, greedy=False).n_accepted
        for _ in range(4000)
    )
    assert abs(accepted / 4000 - 0.3) < 0.03
    assert verify(torch.tensor([0]), None, target_probs, cpu_generator, greedy=False).draft_token_probs == [
        1.0
    ]


def test_lossless_random_stream_is_k_uniforms_then_one_draw() -> None:
    """Traces replay only if the stream stays put: k uniforms up front, then the correction's draw."""
    target_probs = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.25, 0.25]])  # [k + 1, vocab]
    draft_probs = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])  # [k, vocab]
    for seed in range(30):
        result = verify(
            torch.tensor([1, 0]), draft_probs, target_probs, torch.Generator().manual_seed(seed), False
        )
        replay = torch.Generator().manual_seed(seed)
        uniforms = torch.rand(2, generator=replay).tolist()
        n = result.n_accepted
        reached = min(n + 1, 2)  # drafted tokens verified: up to and including the first rejection
        assert result.uniforms == uniforms[:reached]
        assert result.ratios == pytest.approx([0.6 / 0.5, 0.2 / 0.6][:reached])
        assert n == (1 if uniforms[1] >= 0.2 / 0.6 else 2)  # position 0 always accepted: ratio > 1
        expected = residual(target_probs[n], draft_probs[n]) if n < 2 else target_probs[2]
        torch.testing.assert_close(result.next_dist, expected)
        assert result.next_token == int(sample(expected.unsqueeze(0), replay)[0])


class _AlwaysRejectFromTarget(AcceptanceRule):
    """A rule written only against the rule interface: the loop around it is the shared one."""

    lossy = True
    draws_uniforms = False

    def acceptance_probabilities(
        self, draft_token_probs: list[float], target_token_probs: list[float], target_probs: torch.Tensor
    ) -> list[float]:
        return [0.0] * len(draft_token_probs)

    def correction(self, draft_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        return target_probs


def test_a_rule_plugs_into_the_shared_loop(cpu_generator) -> None:
    target_probs = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    rule = _AlwaysRejectFromTarget()
    result = rule(torch.tensor([1]), None, target_probs, cpu_generator, greedy=False)
    assert (result.n_accepted, result.next_kind, result.next_token, result.uniforms) == (
        0,
        "resampled",
        1,
        [None],
    )
    # Greedy never consults the rule: argmax matching accepts the target's own choice.
    greedy = rule(torch.tensor([1]), None, target_probs, cpu_generator, greedy=True)
    assert (greedy.n_accepted, greedy.next_kind, greedy.next_token) == (1, "bonus", 0)
    with pytest.raises(ValueError, match="k\\+1"):
        rule(torch.tensor([1]), None, target_probs[:1], cpu_generator, greedy=False)
