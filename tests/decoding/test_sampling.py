"""The sampler on its own: it draws exactly the given distribution, never a zero-mass token."""

from __future__ import annotations

import torch
from scipy.stats import chisquare

from specviz.decoding.sampling import sample


def test_sample_matches_the_distribution_and_skips_zero_mass() -> None:
    gen = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.0, 0.05, 0.0, 0.45, 0.3, 0.2, 0.0])  # [vocab], zeros at both ends too
    trials = 60_000
    draws = sample(probs.expand(trials, -1).contiguous(), gen)  # [trials]
    counts = torch.bincount(draws, minlength=probs.numel())
    assert counts[probs == 0].sum() == 0
    support = probs > 0
    assert chisquare(counts[support].numpy(), (probs[support] * trials).numpy()).pvalue > 1e-3


def test_sample_is_a_real_test_it_rejects_a_shifted_distribution() -> None:
    # The negative control for the test above: the same draws against a slightly wrong
    # distribution must fail, so the chi-square check has the power to catch a biased sampler.
    gen = torch.Generator().manual_seed(1)
    probs = torch.tensor([0.05, 0.45, 0.3, 0.2])
    trials = 60_000
    counts = torch.bincount(sample(probs.expand(trials, -1).contiguous(), gen), minlength=4)
    wrong = torch.tensor([0.06, 0.44, 0.3, 0.2])
    assert chisquare(counts.numpy(), (wrong * trials).numpy()).pvalue < 1e-3


def test_sample_accepts_unnormalised_rows_and_is_reproducible() -> None:
    # Residual distributions reach the sampler unnormalised: rows scale, they are not renormalised.
    probs = torch.tensor([[0.0, 2.0, 6.0], [1.0, 0.0, 0.0]])  # [2, vocab]
    a = sample(probs.repeat(5000, 1), torch.Generator().manual_seed(3))
    b = sample(probs.repeat(5000, 1), torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    first, second = a[0::2], a[1::2]
    assert set(second.tolist()) == {0} and 0 not in set(first.tolist())
    assert abs(float((first == 2).double().mean()) - 0.75) < 0.02
