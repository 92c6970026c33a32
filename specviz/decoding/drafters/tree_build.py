"""Building token trees: a trie that merges continuations which share a prefix, under a node budget."""

from __future__ import annotations

import torch

from specviz.decoding.events import NodeSource
from specviz.decoding.tree import TokenTree


class TreeBuilder:
    """Collects fixed candidates into a tree, parents first, children in the order they arrive.

    Only fixed candidates (chosen without randomness) go through here: merging two sampled
    candidates that drew the same token would make the set of tested draws depend on the draws,
    which multi-step speculative sampling does not allow (see tree.py).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.tokens: list[int] = []
        self.parents: list[int] = []
        self.sources: list[NodeSource] = []
        self.probs: list[float] = []
        self.softmax: list[float | None] = []
        self._index: dict[tuple[int, int], int] = {}  # (parent, token) -> node

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def full(self) -> bool:
        return len(self.tokens) >= self.budget

    def child(
        self, parent: int, token: int, source: NodeSource, prob: float, softmax: float | None = None
    ) -> int | None:
        """The node for ``token`` under ``parent`` (an existing one is reused); None when the budget is spent."""
        found = self._index.get((parent, token))
        if found is not None:
            return found
        if self.full:
            return None
        self.tokens.append(token)
        self.parents.append(parent)
        self.sources.append(source)
        self.probs.append(prob)
        self.softmax.append(softmax)
        self._index[(parent, token)] = len(self.tokens) - 1
        return len(self.tokens) - 1

    def path(self, tokens: list[int], source: NodeSource, parent: int = -1) -> int:
        """Insert a continuation below ``parent``; returns how many of its tokens are in the tree."""
        placed = 0
        for token in tokens:
            node = self.child(parent, token, source, 1.0)
            if node is None:
                break
            parent = node
            placed += 1
        return placed

    def tree(self, device: torch.device, draft_forwards: int = 0) -> TokenTree:
        n = len(self.tokens)
        return TokenTree(
            tokens=torch.tensor(self.tokens, dtype=torch.long, device=device),
            parents=tuple(self.parents),
            sampled=(False,) * n,
            draft_probs=None,
            sources=tuple(self.sources),
            draft_token_probs=tuple(self.probs),
            draft_softmax=tuple(self.softmax) if any(s is not None for s in self.softmax) else (),
            draft_forwards=draft_forwards,
        )
