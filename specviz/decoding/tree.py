"""Token trees: several drafted continuations, verified together in one target forward.

Terms (the chain's vocabulary, events.py, extended):

- **tree**: nodes numbered 0..n-1, parents first. ``parents[i]`` is node i's parent, or -1 when
  node i follows the **root**, the last committed token. The target scores the root and every node
  in one forward (``TreeLM.forward_tree``), giving ``target_probs`` ``[n + 1, vocab]``: row 0 is the
  distribution after the root, row ``i + 1`` the one after node i.
- **candidate** kinds, which decide how a child is tested:
  - **sampled**: a draw from a distribution the drafter reports (``draft_probs[i]``), independent of
    everything else tested. SpecInfer's multi-step speculative sampling (Miao et al. 2024): accept
    with ``min(1, target_probs[x] / draft_probs[x])``, else replace the target row by
    ``norm(max(0, target_probs - draft_probs))`` and try the next child.
  - **fixed**: chosen without randomness (the draft's top candidates, a lookup continuation):
    accept with the current row's probability of the token, else zero that entry, renormalise, and
    try the next child.
  Each test keeps the invariant "the token finally emitted here is distributed as the current row",
  so the walk is lossless for any mix and order of children; when every child fails, the emitted
  token is drawn from what is left of the row (**resampled**), and a node without children ends
  the walk with a **bonus** token from its own row.
- **path**: the accepted nodes, root first; the target's cache keeps exactly those
  (``TreeLM.keep_path``).
- Greedy: follow the child equal to the target's argmax; emit the argmax where none is.

This module is model-free, like acceptance.py: trees in, verdicts out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from specviz.decoding.acceptance import residual
from specviz.decoding.backends import TreeLM
from specviz.decoding.events import NodeSource
from specviz.decoding.sampling import sample


@dataclass(frozen=True)
class TokenTree:
    """What a tree drafter proposes."""

    tokens: torch.Tensor  # [n] int64
    parents: tuple[int, ...]  # [n]; -1: follows the root; parents[i] < i
    sampled: tuple[bool, ...]  # [n]; True: a draw from draft_probs[i] (else a fixed candidate)
    draft_probs: torch.Tensor | None  # [n, vocab]: rows of the sampled nodes (others unused); None if none
    sources: tuple[NodeSource, ...]  # [n]
    draft_token_probs: tuple[float, ...]  # [n]: the drafter's probability of each token, for the events
    draft_softmax: tuple[float | None, ...] = ()  # [n] greedy: temperature-1 probabilities, for the events
    draft_forwards: int = 0  # draft-model forwards spent building it
    # Convention of every tree drafter here: the first b nodes are the tree a budget of b nodes
    # would have drawn (so one verified tree tells what smaller budgets would have committed).

    def __post_init__(self) -> None:
        n = int(self.tokens.shape[0])
        if not (
            len(self.parents) == len(self.sampled) == len(self.sources) == len(self.draft_token_probs) == n
        ):
            raise ValueError("a TokenTree needs one parent, kind, source and probability per node")
        if any(not -1 <= p < i for i, p in enumerate(self.parents)):
            raise ValueError(f"parents must come before their children: {self.parents}")
        if any(self.sampled) and self.draft_probs is None:
            raise ValueError("sampled nodes need the draft rows they were drawn from")

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def children(self) -> list[list[int]]:
        """``children()[v + 1]``: the children of node v (v = -1: the root's), in test order."""
        kids: list[list[int]] = [[] for _ in range(len(self) + 1)]
        for i, p in enumerate(self.parents):
            kids[p + 1].append(i)
        return kids

    def depths(self) -> list[int]:
        """Depth of each node: 0 for a child of the root."""
        out: list[int] = []
        for p in self.parents:
            out.append(0 if p < 0 else out[p] + 1)
        return out


__all__ = ["TokenTree", "TreeLM", "TreeVerdict", "TreeVerifier", "verify_tree"]


@dataclass
class TreeVerdict:
    """The outcome of verifying one tree."""

    path: list[int]  # accepted nodes, root first
    next_token: int  # the resampled or bonus token
    next_kind: str  # "resampled" (children tested, none accepted), "bonus" (a leaf), "plain" (no tree)
    next_dist: torch.Tensor  # [vocab] the distribution next_token was drawn from
    uniforms: list[float | None]  # [n]: the draw each node was tested with (None: untested or greedy)
    tested: list[bool] = field(default_factory=list)  # [n]
    accept_probs: list[float | None] = field(default_factory=list)  # [n]: P(accept) when tested


class TreeVerifier(Protocol):
    def __call__(
        self, tree: TokenTree, target_probs: torch.Tensor, generator: torch.Generator, greedy: bool
    ) -> TreeVerdict: ...


def verify_tree(
    tree: TokenTree,
    target_probs: torch.Tensor,  # [n + 1, vocab]; row 0 after the root, row i + 1 after node i
    generator: torch.Generator,
    greedy: bool,
) -> TreeVerdict:
    """Walk down the tree from the root, testing each node's children in order (module doc)."""
    n = len(tree)
    if target_probs.shape[0] != n + 1:
        raise ValueError(f"target_probs must have n+1={n + 1} rows, got {target_probs.shape[0]}")
    kids = tree.children()
    tokens = tree.tokens.tolist()
    # One uniform per node, drawn up front (as the chain does) so the random stream does not
    # depend on which nodes the walk reaches.
    drawn: list[float | None] = (
        torch.rand(n, generator=generator, device=generator.device).tolist()
        if n and not greedy
        else [None] * n
    )
    uniforms: list[float | None] = [None] * n
    tested = [False] * n
    accept_probs: list[float | None] = [None] * n
    path: list[int] = []
    node = -1
    while True:
        row = target_probs[node + 1]  # [vocab]: the distribution of the token after ``node``
        children = kids[node + 1]
        accepted = None
        if greedy:
            best = int(row.argmax())
            for c in children:
                tested[c] = True
                if tokens[c] == best:
                    accepted = c
                    break
        else:
            for c in children:
                tested[c] = True
                x = tokens[c]
                if tree.sampled[c]:
                    assert tree.draft_probs is not None
                    draft_row = tree.draft_probs[c]  # [vocab]
                    q, p = float(draft_row[x]), float(row[x])
                    accept = 1.0 if p >= q else p / q
                else:
                    accept = float(row[x])
                accept_probs[c] = accept
                u = drawn[c]
                uniforms[c] = u
                if u < accept:  # type: ignore[operator]
                    accepted = c
                    break
                # Refused: what is left of the row is the distribution the rest must follow.
                if tree.sampled[c]:
                    row = residual(row, tree.draft_probs[c])  # type: ignore[index]
                else:
                    row = row.clone()
                    row[x] = 0.0
                    mass = float(row.sum())
                    row = row / mass if mass > 1e-12 else target_probs[node + 1]
        if accepted is None:
            kind = "resampled" if children else ("plain" if node == -1 else "bonus")
            token = int(row.argmax()) if greedy else int(sample(row.unsqueeze(0), generator)[0])
            return TreeVerdict(path, token, kind, row, uniforms, tested, accept_probs)
        path.append(accepted)
        node = accepted
