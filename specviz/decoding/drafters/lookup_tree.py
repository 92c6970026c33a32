"""Lookup trees: every earlier occurrence of the context's tail proposes its own continuation."""

from __future__ import annotations

import torch

from specviz.decoding.drafters.ngram import NgramDrafter
from specviz.decoding.drafters.tree_build import TreeBuilder
from specviz.decoding.tree import TokenTree


class LookupTreeDrafter(NgramDrafter):
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

    def build(self, builder: TreeBuilder, context: list[int], depth: int) -> int:
        """Add the lookup branches to ``builder``; returns the longest continuation placed."""
        longest = 0
        for follow in self.continuations(context, depth):
            if builder.full:
                break
            longest = max(longest, builder.path(follow, "lookup"))
        return longest

    def propose_tree(
        self, context: list[int], nodes: int, depth: int, generator: torch.Generator
    ) -> TokenTree:
        builder = TreeBuilder(nodes)
        if nodes and depth:
            self.build(builder, context, depth)
        return builder.tree(self.device)

    def tree_feedback(self, tree: TokenTree, path: list[int]) -> None:
        pass
