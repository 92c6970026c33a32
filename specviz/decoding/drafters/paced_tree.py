"""Automatic node budgets for token trees (``--gamma auto`` with a tree drafter).

A tree of b nodes costs its draft forwards plus the target scoring b + 1 rows, T(b + 1), and
commits its accepted path plus one token. On a CPU T grows with the rows (Qwen2.5-Coder-0.5B,
float32, one thread: 175 ms for 1 row, 345 ms for 8, 470 ms for 32, 820 ms for 64), so a big tree
pays only where paths are long. Every tree drafter here lists its nodes so that the first b of
them are the tree a budget of b would have drawn (see :class:`~specviz.decoding.tree.TokenTree`),
so one verified tree of B nodes tells what every budget b ≤ B would have committed: in greedy
runs exactly (the argmax walk through the smaller tree follows the same path until the path
leaves it), in sampling runs as a close estimate. Each iteration drafts the budget with the most
expected tokens per second by the measured cost table, or takes a plain target step when no
budget beats plain decoding; every ``probe_every``-th iteration drafts the whole cap, so budgets
above the current one keep being measured.

Lossless by construction: it only decides how many nodes are proposed, never which or how they
are verified. The decision reads the cost table, not the clock, so a run is reproducible.
"""

from __future__ import annotations

import torch

from specviz.decoding.costs import CostTable
from specviz.decoding.tree import TokenTree
from specviz.decoding.tree_decoder import TreeDrafter

BUDGETS = (1, 2, 4, 8, 16, 32, 64)


class PacedTreeDrafter:
    """Wraps a tree drafter and picks its node budget each iteration (module doc)."""

    def __init__(
        self, inner: TreeDrafter, costs: CostTable, probe_every: int = 4, decay: float = 0.85
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.costs = costs
        self.probe_every = probe_every
        self.decay = decay
        self.prefill_state()

    def prefill_state(self) -> None:
        # Per budget: decayed sums of committed tokens, draft forwards and iterations observed.
        self._tokens: dict[int, float] = {}
        self._forwards: dict[int, float] = {}
        self._weight: dict[int, float] = {}
        self._since_probe = 0
        self._asked = 0

    def budgets(self, cap: int) -> list[int]:
        top = min(cap, self.costs.max_draft)
        return sorted({b for b in BUDGETS if b < top} | ({top} if top > 0 else set()))

    def rate(self, budget: int) -> float | None:
        """Expected committed tokens per second at ``budget`` nodes; None before it was observed."""
        weight = self._weight.get(budget, 0.0)
        if weight <= 0:
            return None
        tokens = self._tokens[budget] / weight
        forwards = self._forwards[budget] / weight
        return tokens / (forwards * self.costs.draft_step_s + self.costs.verify_s[budget])

    def choose(self, cap: int) -> int:
        budgets = self.budgets(cap)
        if not budgets:
            return 0
        self._since_probe += 1
        rates = {b: r for b in budgets if (r := self.rate(b)) is not None}
        if not rates or self._since_probe >= self.probe_every:
            self._since_probe = 0
            return budgets[-1]
        best = max(rates, key=lambda b: rates[b])
        plain = 1.0 / self.costs.target_step_s
        return best if rates[best] > plain else 0

    def prefill(self, context: list[int]) -> None:
        self.prefill_state()
        self.inner.prefill(context)

    def propose_tree(
        self, context: list[int], nodes: int, depth: int, generator: torch.Generator
    ) -> TokenTree:
        self._asked = self.choose(nodes) if depth else 0
        return self.inner.propose_tree(context, self._asked, depth, generator)

    def tree_feedback(self, tree: TokenTree, path: list[int]) -> None:
        """Credit every budget up to the one asked with what its prefix of ``tree`` would have done."""
        if self._asked:
            depths = tree.depths()
            for b in self.budgets(self._asked):
                kept = min(b, len(tree))
                committed = 1 + next((i for i, node in enumerate(path) if node >= kept), len(path))
                draft_depth = max(
                    (depths[i] + 1 for i in range(kept) if tree.sources[i] == "draft"), default=0
                )
                self._tokens[b] = self.decay * self._tokens.get(b, 0.0) + committed
                self._forwards[b] = self.decay * self._forwards.get(b, 0.0) + draft_depth
                self._weight[b] = self.decay * self._weight.get(b, 0.0) + 1.0
        self.inner.tree_feedback(tree, path)

    def synchronize(self) -> None:
        self.inner.synchronize()
