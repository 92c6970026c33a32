"""Automatic node budgets for trees: the arithmetic, the choice, the prefix claim, and losslessness."""

from __future__ import annotations

import pytest
import torch

from specviz.decoding.backends import TableLM
from specviz.decoding.costs import CostTable
from specviz.decoding.decoder import DecodeConfig
from specviz.decoding.drafters.model_tree import ModelTreeDrafter
from specviz.decoding.drafters.paced_tree import PacedTreeDrafter
from specviz.decoding.sampling import SamplingConfig
from specviz.decoding.tree import TokenTree, verify_tree
from tests.decoding.test_lossless import assert_lossless, assert_rejected
from tests.decoding.test_tree_lossless import siblings_see_the_whole_row
from tests.support.lossless import TreeCoverage, plain_distribution, tree_distribution

pytestmark = pytest.mark.usefixtures("one_torch_thread")

T1 = SamplingConfig(temperature=1.0)


def _tree(parents: tuple[int, ...], sources: tuple[str, ...] | None = None) -> TokenTree:
    n = len(parents)
    return TokenTree(
        tokens=torch.arange(n),
        parents=parents,
        sampled=(False,) * n,
        draft_probs=None,
        sources=sources or ("draft",) * n,  # type: ignore[arg-type]
        draft_token_probs=(1.0,) * n,
    )


class Fixed:
    """A tree drafter that always proposes the same tree (cut to the budget asked)."""

    name = "fixed"

    def __init__(self, tree: TokenTree) -> None:
        self.tree = tree
        self.asked: list[int] = []

    def prefill(self, context: list[int]) -> None:
        pass

    def propose_tree(self, context, nodes, depth, generator) -> TokenTree:
        self.asked.append(nodes)
        n = min(nodes, len(self.tree))
        t = self.tree
        return TokenTree(
            t.tokens[:n], t.parents[:n], t.sampled[:n], None, t.sources[:n], t.draft_token_probs[:n]
        )

    def tree_feedback(self, tree, path) -> None:
        pass

    def synchronize(self) -> None:
        pass


def test_every_budget_is_credited_with_its_prefix_of_the_tree() -> None:
    """A 6-node tree whose accepted path is nodes 0 → 2 → 4 (depths 1, 2, 3): budget 1 keeps node 0
    (2 tokens, 1 draft forward), 2 keeps nodes 0-1 (still 2 tokens), 4 keeps 0-3 (3 tokens, depth
    2), 6 keeps all (4 tokens, depth 3). Rates by hand from the cost table."""
    tree = _tree((-1, -1, 0, 0, 2, 3))
    costs = CostTable(draft_step_s=0.01, verify_s=(0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16))
    paced = PacedTreeDrafter(Fixed(tree), costs)
    paced.prefill([1])
    got = paced.propose_tree([1], 6, 10, torch.Generator())
    assert len(got) == 6 and paced.budgets(6) == [1, 2, 4, 6]
    paced.tree_feedback(got, [0, 2, 4])
    assert paced.rate(1) == pytest.approx(2 / (1 * 0.01 + 0.11))
    assert paced.rate(2) == pytest.approx(2 / (1 * 0.01 + 0.12))
    assert paced.rate(4) == pytest.approx(3 / (2 * 0.01 + 0.14))
    assert paced.rate(6) == pytest.approx(4 / (3 * 0.01 + 0.16))


def test_the_budget_follows_costs_and_falls_back_to_plain_steps() -> None:
    """Flat verification and long paths: the whole cap. Steep verification and short paths: plain
    steps (budget 0), with the full cap drafted every 4th iteration as a probe."""
    chain = _tree((-1, 0, 1, 2, 3, 4, 5, 6))
    flat = CostTable(draft_step_s=0.001, verify_s=(0.1,) * 9)
    paced = PacedTreeDrafter(Fixed(chain), flat)
    paced.prefill([1])
    for _ in range(6):
        tree = paced.propose_tree([1], 8, 10, torch.Generator())
        paced.tree_feedback(tree, list(range(len(tree))))  # everything accepted
    assert paced.inner.asked == [8] * 6  # type: ignore[attr-defined]

    steep = CostTable(draft_step_s=0.05, verify_s=tuple(0.1 * (1 + k) for k in range(9)))
    paced = PacedTreeDrafter(Fixed(chain), steep)
    paced.prefill([1])
    for _ in range(9):
        tree = paced.propose_tree([1], 8, 10, torch.Generator())
        paced.tree_feedback(tree, [])  # nothing accepted
    assert paced.inner.asked == [8, 0, 0, 0, 8, 0, 0, 0, 8]  # type: ignore[attr-defined]


def test_a_prefix_of_a_greedy_tree_accepts_the_prefix_of_its_path() -> None:
    """The claim automatic budgets rest on: in greedy runs, verifying the first b nodes of a tree
    accepts exactly the part of the full tree's path made of nodes below b. Random trees in rank
    order (parents first) and random one-hot target rows, every b."""
    gen = torch.Generator().manual_seed(0)
    checked = 0
    for _ in range(200):
        n = int(torch.randint(1, 12, (1,), generator=gen))
        parents = tuple(int(torch.randint(-1, i, (1,), generator=gen)) if i else -1 for i in range(n))
        tokens = torch.randint(0, 3, (n,), generator=gen)
        tree = TokenTree(tokens, parents, (False,) * n, None, ("draft",) * n, (1.0,) * n)
        rows = torch.zeros(n + 1, 3)
        rows[torch.arange(n + 1), torch.randint(0, 3, (n + 1,), generator=gen)] = 1.0
        full = verify_tree(tree, rows, gen, greedy=True).path
        for b in range(n + 1):
            cut = TokenTree(tokens[:b], parents[:b], (False,) * b, None, ("draft",) * b, (1.0,) * b)
            prefix = full[: next((i for i, node in enumerate(full) if node >= b), len(full))]
            assert verify_tree(cut, rows[: b + 1], gen, greedy=True).path == prefix
            checked += 1
    assert checked > 1000


def test_automatic_budgets_are_lossless(codec) -> None:
    """PacedTreeDrafter around the model tree, cap 4 nodes, a cost table on which budgets change
    and plain steps happen, 4 new tokens over a 3-token vocabulary (81 sequences). Detects any TV
    above 1e-6.

    Broken twin, siblings tested against the whole target row."""
    target = TableLM(3, order=2, seed=61, sharpness=1.0)
    draft = TableLM(3, order=2, seed=62, sharpness=1.0)
    config = DecodeConfig(max_new_tokens=4, gamma=4, sampling=T1)
    costs = CostTable(draft_step_s=0.02, verify_s=(0.1, 0.13, 0.16, 0.19, 0.22))
    reference = plain_distribution(target, [1], config, codec)
    drafter = PacedTreeDrafter(
        ModelTreeDrafter(draft, T1, 3, width=2, expand=2), costs, probe_every=2, decay=0.5
    )
    seen = TreeCoverage()
    assert_lossless(tree_distribution(target, drafter, [1], config, codec, seen), reference)
    sizes = {nodes for nodes, _, _, _ in seen.iterations}
    assert 0 in sizes and len(sizes - {0}) >= 2, f"budgets seen: {sizes}"

    broken = tree_distribution(target, drafter, [1], config, codec, verifier=siblings_see_the_whole_row)
    assert_rejected(broken, reference)
