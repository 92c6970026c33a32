"""Expected gains of speculative decoding (Leviathan, Kalman & Matias, ICML 2023).

alpha: expected acceptance probability of a drafted token, ``E[sum_x min(target_probs, draft_probs)]``.
gamma: drafted tokens per iteration. c: cost of one draft step / cost of one target step.

A formula sometimes quoted for it, ``gamma / (1 + (1 - alpha) * gamma)``, is not the paper's; the tests
pin the paper's own worked numbers.
"""

from __future__ import annotations

from collections.abc import Sequence


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


def speedup_with_verify_cost(
    alpha: float,
    gamma: int,
    draft_step_s: float,
    verify_cost_s: Sequence[float],
) -> float:
    """Speedup when verifying is not free: measured costs instead of the paper's T(k) = T(1).

    ``verify_cost_s[k - 1]`` is the target's time to score k tokens in one forward (T(k)); plain
    decoding costs T(1) per token, an iteration costs gamma draft steps plus T(gamma + 1).
    With T(k) = T(1) this equals :func:`speedup` with c = draft_step_s / T(1).
    """
    if gamma + 1 > len(verify_cost_s):
        raise ValueError(f"need T(k) for k up to {gamma + 1}, have {len(verify_cost_s)}")
    t1 = verify_cost_s[0]
    iteration_s = gamma * draft_step_s + verify_cost_s[gamma]
    return expected_tokens(alpha, gamma) * t1 / iteration_s


def best_gamma_with_verify_cost(alpha: float, draft_step_s: float, verify_cost_s: Sequence[float]) -> int:
    """The gamma (0 = plain decoding) with the highest predicted speedup under measured costs."""
    candidates = range(0, len(verify_cost_s))
    return max(candidates, key=lambda g: speedup_with_verify_cost(alpha, g, draft_step_s, verify_cost_s))
