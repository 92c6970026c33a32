"""Empirical total variation between sampled outputs, for checks on real models where no exact
distribution can be enumerated (the exact one is :func:`specviz.decoding.lossy.total_variation`
over :func:`specviz.decoding.lossy.exact_output_distribution`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

import torch

from specviz.decoding.lossy import total_variation


def _empirical(samples: Sequence[Sequence[int]], prefix_len: int | None) -> dict[Hashable, float]:
    keys = [tuple(s) if prefix_len is None else tuple(s[:prefix_len]) for s in samples]
    counts = Counter(keys)
    return {key: c / len(keys) for key, c in counts.items()}


def estimate_tv_from_samples(
    samples_a: Sequence[Sequence[int]],
    samples_b: Sequence[Sequence[int]],
    prefix_len: int | None = None,
) -> float:
    """Empirical TV between two sets of generated token sequences.

    Compares the empirical distributions of the whole sequences (``prefix_len=None``) or of their
    first ``prefix_len`` tokens. It is biased upwards: two samples of the *same* distribution give
    a positive TV, roughly ``sqrt(outcomes / samples)`` while outcomes are many, and ~1 when almost
    every sequence is unique (whole sequences from a real model). Use a short prefix (1 or 2 tokens)
    and read the result against :func:`tv_permutation_baseline` at the same sample sizes.
    """
    if not samples_a or not samples_b:
        raise ValueError("need at least one sample on each side")
    return total_variation(_empirical(samples_a, prefix_len), _empirical(samples_b, prefix_len))


def tv_permutation_baseline(
    samples_a: Sequence[Sequence[int]],
    samples_b: Sequence[Sequence[int]],
    generator: torch.Generator,
    prefix_len: int | None = None,
    rounds: int = 20,
) -> float:
    """Mean empirical TV after randomly relabelling the pooled samples into two groups of the same
    sizes: what :func:`estimate_tv_from_samples` reads when there is no difference at all."""
    pooled = list(samples_a) + list(samples_b)
    n_a = len(samples_a)
    total = 0.0
    for _ in range(rounds):
        order = torch.randperm(len(pooled), generator=generator).tolist()
        shuffled = [pooled[i] for i in order]
        total += estimate_tv_from_samples(shuffled[:n_a], shuffled[n_a:], prefix_len)
    return total / rounds
