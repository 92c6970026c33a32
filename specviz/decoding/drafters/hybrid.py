"""The hybrid drafter: lookup branches where the context repeats, draft-model branches where it does not."""

from __future__ import annotations

import torch

from specviz.decoding.drafters.lookup_tree import LookupTreeDrafter
from specviz.decoding.drafters.model_tree import ModelTreeDrafter
from specviz.decoding.drafters.tree_build import TreeBuilder
from specviz.decoding.tree import TokenTree


class HybridTreeDrafter:
    """One tree from both sources: lookup continuations first (free), then the draft model's.

    Code editing and summarisation repeat their input: there a lookup continuation of several
    tokens is likely right, and growing a deep model tree beside it costs draft forwards for little.
    So when the lookup places a continuation of at least ``repeat_depth`` tokens *and* lookup
    branches have been paying lately (the accepted path started with one in a decayed majority of
    recent iterations), the draft model only adds its top candidates after the root (depth 1, no
    forward beyond catching up); otherwise it grows its full tree. A long lookup match alone is not
    enough: a chat prompt always repeats its template tokens, which the answer seldom does (on the
    default pair the first iteration of a code-edit prompt refused three template branches).
    Shared prefixes are merged (the lookup's node is kept).
    """

    name = "hybrid"

    def __init__(self, model: ModelTreeDrafter, lookup: LookupTreeDrafter, repeat_depth: int = 3) -> None:
        self.model = model
        self.lookup = lookup
        self.repeat_depth = repeat_depth
        self.lookup_paying = 0.0  # decayed share of recent paths that began with a lookup node

    def prefill(self, context: list[int]) -> None:
        self.lookup_paying = 0.0
        self.model.prefill(context)
        self.lookup.prefill(context)

    def propose_tree(
        self, context: list[int], nodes: int, depth: int, generator: torch.Generator
    ) -> TokenTree:
        # The lookup may fill all but one node: the draft model always gets a say (within budget).
        builder = TreeBuilder(max(1, nodes - 1))
        if nodes == 0 or depth == 0:
            return builder.tree(self.model.backend.device)
        longest = self.lookup.build(builder, context, depth)
        builder.budget = nodes
        room = nodes - len(builder)
        if room == 0:
            return builder.tree(self.model.backend.device)
        model_depth = 1 if longest >= self.repeat_depth and self.lookup_paying > 0.5 else depth
        model_tree = self.model.propose_tree(context, room, model_depth, generator)
        node_of: dict[int, int] = {}
        tokens = model_tree.tokens.tolist()
        for i, token in enumerate(tokens):
            parent = model_tree.parents[i]
            if parent >= 0 and parent not in node_of:
                continue  # its parent did not fit
            node = builder.child(
                node_of[parent] if parent >= 0 else -1,
                token,
                "draft",
                model_tree.draft_token_probs[i],
                model_tree.draft_softmax[i] if model_tree.draft_softmax else None,
            )
            if node is not None:
                node_of[i] = node
        return builder.tree(self.model.backend.device, draft_forwards=model_tree.draft_forwards)

    def tree_feedback(self, tree: TokenTree, path: list[int]) -> None:
        from_lookup = bool(path) and tree.sources[path[0]] == "lookup"
        self.lookup_paying = 0.7 * self.lookup_paying + 0.3 * from_lookup

    def synchronize(self) -> None:
        self.model.synchronize()
