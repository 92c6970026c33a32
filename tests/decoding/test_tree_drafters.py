"""The tree drafters: worked examples, and the rank-order convention automatic budgets rely on."""

from __future__ import annotations

import pytest
import torch

from specviz.decoding.backends import TableLM
from specviz.decoding.drafters.hybrid import HybridTreeDrafter
from specviz.decoding.drafters.lookup_tree import LookupTreeDrafter
from specviz.decoding.drafters.model_tree import ModelTreeDrafter
from specviz.decoding.sampling import SamplingConfig
from specviz.decoding.tree import TokenTree

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GREEDY = SamplingConfig(temperature=0.0)


def _paths(tree: TokenTree) -> set[tuple[int, ...]]:
    """Every root-to-node token path of ``tree``."""
    tokens, out = tree.tokens.tolist(), set()
    for i in range(len(tree)):
        path, node = [], i
        while node >= 0:
            path.append(tokens[node])
            node = tree.parents[node]
        out.add(tuple(reversed(path)))
    return out


def test_lookup_tree_worked_example() -> None:
    """The docstring's example: two occurrences of the tail [1], two branches under the root."""
    tree = LookupTreeDrafter(max_ngram=1).propose_tree([1, 2, 9, 1, 3, 9, 1], 10, 3, torch.Generator())
    assert tree.tokens.tolist() == [3, 9, 1, 2, 9, 1]
    assert tree.parents == (-1, 0, 1, -1, 3, 4)
    assert set(tree.sources) == {"lookup"} and not any(tree.sampled)
    # A budget cuts the later branch first.
    cut = LookupTreeDrafter(max_ngram=1).propose_tree([1, 2, 9, 1, 3, 9, 1], 4, 3, torch.Generator())
    assert cut.tokens.tolist() == [3, 9, 1, 2] and cut.parents == (-1, 0, 1, -1)


@pytest.mark.parametrize("sampling", [GREEDY, SamplingConfig(temperature=0.8)], ids=["greedy", "t0.8"])
def test_the_first_b_nodes_are_the_tree_a_budget_of_b_draws(sampling: SamplingConfig) -> None:
    """ModelTreeDrafter lists nodes by rank, parents first: the tree drawn with a budget of b nodes
    is the first b nodes of a bigger budget's tree, for every b (what paced_tree.py credits)."""
    draft = TableLM(7, order=2, seed=3, sharpness=1.0)
    drafter = ModelTreeDrafter(draft, sampling, target_vocab_size=7, width=3, expand=3, min_path_prob=0.0)
    context = [1, 2, 3]
    drafter.prefill(context)
    full = drafter.propose_tree(context, 24, 4, torch.Generator())
    assert len(full) == 24 and max(full.depths()) >= 2
    for b in range(1, 25):
        small = drafter.propose_tree(context, b, 4, torch.Generator())
        assert small.tokens.tolist() == full.tokens.tolist()[:b]
        assert small.parents == full.parents[:b]
    assert all(p < i for i, p in enumerate(full.parents))


def test_hybrid_puts_lookup_first_and_merges_shared_prefixes() -> None:
    """Lookup branches first; the draft model's branches after them, a shared first token merged."""
    draft = TableLM(7, order=2, seed=5, sharpness=1.0)
    model = ModelTreeDrafter(draft, GREEDY, target_vocab_size=7, width=2, expand=2)
    context = [4, 5, 6, 4, 5]
    hybrid = HybridTreeDrafter(model, LookupTreeDrafter(max_ngram=2), repeat_depth=3)
    hybrid.prefill(context)
    tree = hybrid.propose_tree(context, 8, 3, torch.Generator())
    lookup = LookupTreeDrafter(max_ngram=2).propose_tree(context, 8, 3, torch.Generator())
    n_lookup = len(lookup)
    assert tree.tokens.tolist()[:n_lookup] == lookup.tokens.tolist()
    assert set(tree.sources[:n_lookup]) == {"lookup"} and "draft" in tree.sources[n_lookup:]
    model.prefill(context)
    alone = model.propose_tree(context, 8, 1, torch.Generator())  # its top candidates after the root
    assert _paths(alone) <= _paths(tree), "every model branch is in the hybrid tree (merged or added)"
    assert len(_paths(tree)) == len(tree), "no token path appears twice"
