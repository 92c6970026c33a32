"""``specviz lossy-cost``: what the lossy acceptance rules cost, computed exactly on toy models."""

from __future__ import annotations

from typing import Any


def main(args: Any) -> int:
    """What a shortcut costs, computed exactly: the TV distance between each rule's output
    distribution (every branch of the speculative loop enumerated) and the target's."""
    from rich.console import Console
    from rich.table import Table

    from specviz.decoding.acceptance import verify
    from specviz.decoding.backends import TableLM
    from specviz.decoding.lossy import (
        exact_output_distribution,
        exact_target_distribution,
        threshold_verifier,
        total_variation,
        typical_verifier,
    )
    from specviz.decoding.sampling import SamplingConfig

    sampling = SamplingConfig(temperature=args.temperature)
    rules = {
        "lossless (rejection sampling)": verify,
        f"threshold τ={args.tau} (accept if target_prob > τ)": threshold_verifier(args.tau),
        f"typical ε={args.typical_epsilon} δ={args.typical_delta}": typical_verifier(
            args.typical_epsilon, args.typical_delta
        ),
    }
    table = Table(
        title=f"TV distance to the target's output distribution (vocab 4, 3 tokens, γ={args.gamma})"
    )
    table.add_column("rule")
    table.add_column("mean TV", justify="right")
    table.add_column("max TV", justify="right")
    for name, rule in rules.items():
        tvs = []
        for seed in range(args.seeds):
            target = TableLM(4, order=2, seed=2 * seed + 1, sharpness=1.0)
            draft = TableLM(4, order=2, seed=2 * seed + 2, sharpness=1.0)
            exact = exact_target_distribution(target, [1], 3, sampling)
            got = exact_output_distribution(target, draft, [1], 3, sampling, args.gamma, rule)
            tvs.append(total_variation(exact, got))
        table.add_row(name, f"{sum(tvs) / len(tvs):.4f}", f"{max(tvs):.4f}")
    Console().print(table)
    return 0
