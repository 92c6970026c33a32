"""Lookup trees: every earlier occurrence of the context's tail proposes its own continuation."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from specviz.decoding.drafters.tree_build import TreeBuilder
from specviz.decoding.tree import TokenTree


class LookupTreeDrafter:
    """Prompt lookup as a tree, at no model cost.

    The chain's n-gram drafter copies what followed the *latest* occurrence of the tail; when the
    text repeats with variations (code edited line by line, a summary quoting its source) the
    other occurrences disagree, and each is a branch here. Longer matches first, then the latest
    occurrence first; continuations that share a prefix share nodes.

    Worked example (``max_ngram=1``): context ``[1, 2, 9, 1, 3, 9, 1]`` ends with ``[1]``, seen at
    positions 3 and 0, followed by ``[3, 9, 1]`` and ``[2, 9, 1]``: the tree has two branches
    under the root, ``3 → 9 → 1`` and ``2 → 9 → 1`` (depth 3).
    """

    name = "lookup-tree"

    def __init__(self, max_ngram: int = 3, min_ngram: int = 1, device: torch.device | None = None) -> None:
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError("need 1 <= min_ngram <= max_ngram")
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram
        self.device = device or torch.device("cpu")

    def continuations(self, context: list[int], depth: int) -> Iterator[tuple[int, list[int]]]:
        """``(match length, continuation)`` for every earlier occurrence of the tail, best first
        (lazily: the caller stops once its tree is full)."""
        for n in range(min(self.max_ngram, len(context) - 1), self.min_ngram - 1, -1):
            tail = context[-n:]
            for start in range(len(context) - n - 1, -1, -1):
                if context[start : start + n] == tail:
                    follow = context[start + n : start + n + depth]
                    if follow:
                        yield n, follow

    def build(self, builder: TreeBuilder, context: list[int], depth: int) -> int:
        """Add the lookup branches to ``builder``; returns the longest continuation placed."""
        longest = 0
        for _, follow in self.continuations(context, depth):
            if builder.full:
                break
            longest = max(longest, builder.path(follow, "lookup"))
        return longest

    def prefill(self, context: list[int]) -> None:
        pass

    def propose_tree(
        self, context: list[int], nodes: int, depth: int, generator: torch.Generator
    ) -> TokenTree:
        builder = TreeBuilder(nodes)
        if nodes and depth:
            self.build(builder, context, depth)
        return builder.tree(self.device)

    def tree_feedback(self, tree: TokenTree, path: list[int]) -> None:
        pass

    def synchronize(self) -> None:
        pass
