"""Expected gains of speculative decoding (Leviathan, Kalman & Matias, ICML 2023).

alpha: expected acceptance probability of a drafted token, ``E[sum_x min(target_probs, draft_probs)]``.
gamma: drafted tokens per iteration. c: cost of one draft step / cost of one target step.

A formula sometimes quoted for it, ``gamma / (1 + (1 - alpha) * gamma)``, is not the paper's; the tests
pin the paper's own worked numbers.
"""

from __future__ import annotations


def expected_tokens(alpha: float, gamma: int) -> float:
    """Expected tokens per iteration: ``(1 - alpha^(gamma+1)) / (1 - alpha)`` (paper eq. 1).

    >>> round(expected_tokens(0.8, 4), 4)
    3.3616
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if alpha == 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def speedup(alpha: float, gamma: int, c: float) -> float:
    """Walltime speedup over plain decoding: ``(1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1))``.

    Assumes verifying gamma+1 tokens costs one target step (the paper's assumption).

    >>> round(speedup(0.75, 7, 0.02), 2)
    3.16
    """
    return expected_tokens(alpha, gamma) / (gamma * c + 1.0)


def best_gamma(alpha: float, c: float, max_gamma: int = 16) -> int:
    """The gamma in 1..max_gamma with the highest :func:`speedup`."""
    return max(range(1, max_gamma + 1), key=lambda g: speedup(alpha, g, c))
