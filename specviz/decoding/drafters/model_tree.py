"""Draft-model trees: expand the most probable nodes, one draft forward per depth (EAGLE-2 style)."""

from __future__ import annotations

import math

import torch

from specviz.decoding.drafters.model import ModelDrafter
from specviz.decoding.drafters.tree_build import TreeBuilder
from specviz.decoding.sampling import SamplingConfig
from specviz.decoding.tree import TokenTree, TreeLM


class ModelTreeDrafter(ModelDrafter):
    """Grows a tree with a small model that shares the target's tokenizer.

    Each depth costs one draft forward over the ``expand`` nodes with the highest path probability
    (the product of the draft's probabilities from the root: EAGLE-2's estimate of how likely the
    target is to reach a node); each expanded node offers its ``width`` most probable tokens. At
    the end the ``nodes`` most probable candidates of every depth form the tree (a path's
    probability never grows, so the chosen set contains each chosen node's ancestors).

    The candidates are *fixed* (top tokens, no randomness), so the target tests them with the
    residual rule of tree.py: lossless at any temperature. Greedy runs rank by the draft's
    temperature-1 probabilities (its one-hot rows cannot rank anything).
    """

    name = "tree"

    def __init__(
        self,
        backend: TreeLM,
        sampling: SamplingConfig,
        target_vocab_size: int,
        width: int = 2,
        expand: int = 2,
        max_depth: int = 16,
        min_path_prob: float = 0.3,
    ) -> None:
        super().__init__(backend, sampling, target_vocab_size)
        self.backend: TreeLM = backend
        self.width = width
        self.expand = expand
        # Each depth costs a draft forward: stop at ``max_depth``, or once no candidate of a depth
        # is likelier than ``min_path_prob`` to be reached (its subtree would rarely be used).
        # Defaults from the bench on the default pair, 2-core CPU, greedy, 48 tokens, 2026-12-02
        # (docs/benchmarks.md): narrow and deep beat wide and shallow there, e.g. 1.94x plain
        # for 2x2 at 0.3 against 1.74x for the chain in the same run; a draft forward costs ~50 ms.
        self.max_depth = max_depth
        self.min_path_prob = min_path_prob

    def _ranking(self, logits: torch.Tensor) -> torch.Tensor:
        """Draft probabilities ``[m, target_vocab]`` that rank candidates (see class doc)."""
        if self.sampling.greedy:
            return logits[:, : self.target_vocab_size].float().softmax(dim=-1)
        return self._target_space(logits)

    def propose_tree(
        self, context: list[int], nodes: int, depth: int, generator: torch.Generator
    ) -> TokenTree:
        builder = TreeBuilder(nodes)
        if nodes == 0 or depth == 0:
            return builder.tree(self.backend.device)
        root_logits = self._catch_up(context)  # [1, draft_vocab]
        base = self.backend.length
        # Candidates of all depths: (log path probability, depth, parent candidate, token, prob, rank
        # among its siblings: 0 is the draft's argmax).
        candidates: list[tuple[float, int, int, int, float, int]] = []
        frontier = [-1]  # candidates expanded at this depth (-1: the root)
        frontier_logits = root_logits  # [len(frontier), draft_vocab]
        forwarded: dict[int, int] = {}  # candidate -> its index in the draft's tree region
        forwards = 0
        depth = min(depth, self.max_depth, nodes)  # a path never has more nodes than the tree
        floor = math.log(self.min_path_prob) if self.min_path_prob > 0 else -math.inf
        for d in range(depth):
            probs = self._ranking(frontier_logits)  # [len(frontier), target_vocab]
            top_probs, top_ids = probs.topk(
                min(self.width, probs.shape[-1]), dim=-1
            )  # [len(frontier), width]
            level: list[int] = []
            for row, parent in enumerate(frontier):
                base_logp = candidates[parent][0] if parent >= 0 else 0.0
                ranked = zip(top_probs[row].tolist(), top_ids[row].tolist(), strict=True)
                for rank, (prob, token) in enumerate(ranked):
                    if prob <= 0:
                        break
                    candidates.append((base_logp + math.log(prob), d, parent, token, prob, rank))
                    level.append(len(candidates) - 1)
            if d == depth - 1 or not level:
                break
            # Expand the most probable candidates of this depth: one forward over all of them.
            frontier = [
                c
                for c in sorted(level, key=lambda c: -candidates[c][0])[: self.expand]
                if candidates[c][0] > floor
            ]
            if not frontier:
                break
            parents = [forwarded[candidates[c][2]] if candidates[c][2] >= 0 else -1 for c in frontier]
            tokens = torch.tensor([candidates[c][3] for c in frontier], device=self.backend.device)
            frontier_logits = self.backend.forward_tree(tokens, parents)  # [len(frontier), draft_vocab]
            forwards += 1
            for c in frontier:
                forwarded[c] = len(forwarded)
        self.backend.truncate(base)  # the draft's cache holds the context again

        # The most probable candidates, parents first; ties go to the shallower node.
        chosen = sorted(range(len(candidates)), key=lambda c: (-candidates[c][0], candidates[c][1]))[:nodes]
        node_of: dict[int, int] = {}
        # Nodes in rank order: parents still come first (a child is never likelier than its parent;
        # ties go to the shallower), siblings most likely first, and the first b nodes are the tree
        # a budget of b would have drawn (what automatic budgets read, see paced_tree.py).
        for c in chosen:
            _, _, parent, token, prob, rank = candidates[c]
            if parent >= 0 and parent not in node_of:
                continue  # cannot happen with exact products; kept safe under float rounding
            greedy = self.sampling.greedy
            # Greedy events follow the chain's convention: the draft's row is one-hot on its argmax.
            shown = (1.0 if rank == 0 else 0.0) if greedy else prob
            node = builder.child(node_of.get(parent, -1), token, "draft", shown, prob if greedy else None)
            if node is not None:
                node_of[c] = node
        return builder.tree(self.backend.device, draft_forwards=forwards + 1)

    def tree_feedback(self, tree: TokenTree, path: list[int]) -> None:
        pass
