"""Token trees change nothing but speed: exact output distributions, each with a broken twin.

The method is tests/decoding/test_lossless.py's (read its docstring): the real tree loop, drafters,
verifier and backends, with every random draw enumerated, against plain decoding enumerated the
same way; TV above ``TOLERANCE`` fails. Trees add three things to prove:

- fixed candidates (draft top-k, lookup branches): sibling after sibling, each tested against what
  is left of the target row once the earlier ones were refused;
- sampled candidates (SpecInfer's multi-step speculative sampling): the residual after each refusal;
- the target's cache keeping exactly the accepted path of a tree-masked forward.

Each broken twin is built here, never by changing the product code.
"""

from __future__ import annotations

import pytest
import torch

from specviz.decoding.backends import TableLM
from specviz.decoding.decoder import DecodeConfig
from specviz.decoding.drafters.hybrid import HybridTreeDrafter
from specviz.decoding.drafters.lookup_tree import LookupTreeDrafter
from specviz.decoding.drafters.model_tree import ModelTreeDrafter
from specviz.decoding.lossy import total_variation
from specviz.decoding.sampling import SamplingConfig, sample, to_probs
from specviz.decoding.tree import TokenTree, TreeVerdict, verify_tree
from tests.decoding.test_lossless import assert_lossless, assert_rejected
from tests.support.lossless import TreeCoverage, plain_distribution, tree_distribution

pytestmark = pytest.mark.usefixtures("one_torch_thread")

T1 = SamplingConfig(temperature=1.0)
TRUNCATED = SamplingConfig(temperature=0.7, top_k=3, top_p=0.9)


# -- broken variants -------------------------------------------------------------------------------


def siblings_see_the_whole_row(
    tree: TokenTree, target_probs: torch.Tensor, generator: torch.Generator, greedy: bool
) -> TreeVerdict:
    """BROKEN: the naive "try every branch" walk. Each child is accepted with its probability under
    the target's *original* row, as if the siblings refused before it had not been tried, and when
    all fail the token is drawn from that original row: tokens with several chances come out too
    often. (Sampling runs only; written out here because the product has no such branch.)"""
    n = len(tree)
    kids = tree.children()
    tokens = tree.tokens.tolist()
    drawn = torch.rand(n, generator=generator).tolist() if n else []
    path: list[int] = []
    node = -1
    while True:
        row = target_probs[node + 1]  # [vocab]
        accepted = next((c for c in kids[node + 1] if drawn[c] < float(row[tokens[c]])), None)
        if accepted is None:
            token = int(sample(row.unsqueeze(0), generator)[0])
            return TreeVerdict(path, token, "resampled", row, [None] * n, [True] * n, [None] * n)
        path.append(accepted)
        node = accepted


class NoResidualForSamples:
    """BROKEN: a refused *sampled* child leaves the target row as it was (no ``norm(max(0, target -
    draft))``), so the next sample is tested against the full row."""

    def __call__(
        self, tree: TokenTree, target_probs: torch.Tensor, generator: torch.Generator, greedy: bool
    ) -> TreeVerdict:
        import specviz.decoding.tree as tree_module

        saved = tree_module.residual
        tree_module.residual = lambda target_row, draft_row: target_row  # type: ignore[assignment]
        try:
            return verify_tree(tree, target_probs, generator, greedy)
        finally:
            tree_module.residual = saved


# -- a drafter with sampled children (multi-step speculative sampling) -----------------------------


class SampledTreeDrafter:
    """Draws ``width`` independent samples from the draft's row after the root, and one sample after
    the first of them: a depth-2 tree of sampled candidates, exactly what SpecInfer verifies with
    multi-step speculative sampling. Test-only: the product's model tree uses fixed candidates."""

    name = "sampled-tree"

    def __init__(self, draft: TableLM, sampling: SamplingConfig, width: int) -> None:
        self.draft = draft
        self.sampling = sampling
        self.width = width

    def _row(self, context: list[int]) -> torch.Tensor:
        return to_probs(self.draft.logits_for(context).unsqueeze(0), self.sampling)  # [1, vocab]

    def prefill(self, context: list[int]) -> None:
        pass

    def propose_tree(
        self, context: list[int], nodes: int, depth: int, generator: torch.Generator
    ) -> TokenTree:
        if not nodes or not depth:
            return TokenTree(torch.empty(0, dtype=torch.long), (), (), None, (), ())
        root_row = self._row(context)  # [1, vocab]
        tokens = [int(sample(root_row, generator)[0]) for _ in range(self.width)]
        rows = [root_row[0]] * self.width
        parents = [-1] * self.width
        if depth > 1:
            deeper = self._row([*context, tokens[0]])
            tokens.append(int(sample(deeper, generator)[0]))
            rows.append(deeper[0])
            parents.append(0)
        n = len(tokens)
        return TokenTree(
            tokens=torch.tensor(tokens),
            parents=tuple(parents),
            sampled=(True,) * n,
            draft_probs=torch.stack(rows),
            sources=("draft",) * n,
            draft_token_probs=tuple(float(rows[i][t]) for i, t in enumerate(tokens)),
        )

    def tree_feedback(self, tree: TokenTree, path: list[int]) -> None:
        pass

    def synchronize(self) -> None:
        pass


# -- the tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", [T1, TRUNCATED], ids=["t1", "t0.7-topk3-topp0.9"])
def test_draft_model_tree(sampling: SamplingConfig, codec) -> None:
    """ModelTreeDrafter: top-2 candidates per node, 2 nodes expanded per depth, at most 4 nodes, 3
    new tokens over a 4-token vocabulary (64 sequences). Siblings refused one after another, paths
    of length 0 to 2, bonus and resampled tokens, the draft's tree forward and the target's
    keep_path. Detects any TV above 1e-6 (measured: 2.3e-8 at T=1, 1.8e-8 truncated).

    Broken twin, siblings tested against the whole target row: TV 0.203 and 0.179."""
    target = TableLM(4, order=2, seed=11, sharpness=1.0)
    draft = TableLM(4, order=2, seed=12, sharpness=1.0)
    config = DecodeConfig(max_new_tokens=3, gamma=4, sampling=sampling)
    reference = plain_distribution(target, [1], config, codec)
    seen = TreeCoverage()
    drafter = ModelTreeDrafter(draft, sampling, target_vocab_size=4, width=2, expand=2)
    assert_lossless(tree_distribution(target, drafter, [1], config, codec, seen), reference)
    kinds = {kind for _, _, _, kind in seen.iterations}
    assert {"resampled", "bonus"} <= kinds
    assert any(tested >= 2 and path == 0 for _, path, tested, _ in seen.iterations), "two siblings refused"
    assert {path for _, path, _, _ in seen.iterations} >= ({0, 1, 2} if sampling is T1 else {0, 1})

    broken = tree_distribution(target, drafter, [1], config, codec, verifier=siblings_see_the_whole_row)
    assert_rejected(broken, reference)


def test_sampled_candidates(codec) -> None:
    """Multi-step speculative sampling: 2 independent draft samples after the root and one after
    the first, 3 new tokens over a 3-token vocabulary (27 sequences). Duplicate samples, a refused
    sample followed by an accepted one, and the final residual. Detects any TV above 1e-6
    (measured: 5.4e-8).

    Broken twin, no residual after a refused sample: TV 0.212."""
    target = TableLM(3, order=2, seed=41, sharpness=1.0)
    draft = TableLM(3, order=2, seed=42, sharpness=1.0)
    config = DecodeConfig(max_new_tokens=3, gamma=3, sampling=T1)
    reference = plain_distribution(target, [1], config, codec)
    seen = TreeCoverage()
    drafter = SampledTreeDrafter(draft, T1, width=2)
    assert_lossless(tree_distribution(target, drafter, [1], config, codec, seen), reference)
    assert any(tested >= 2 and path >= 1 for _, path, tested, _ in seen.iterations)
    assert "resampled" in {kind for _, _, _, kind in seen.iterations}

    broken = tree_distribution(target, drafter, [1], config, codec, verifier=NoResidualForSamples())
    assert_rejected(broken, reference)


def test_lookup_tree(codec) -> None:
    """LookupTreeDrafter on a prompt where the tail recurs with different continuations, 4 new tokens
    over a 3-token vocabulary (81 sequences): several branches under the root, fixed candidates.
    Measured TV 4.0e-8.

    Broken twin, siblings tested against the whole target row: TV 0.231."""
    target = TableLM(3, order=2, seed=21, sharpness=1.0)
    prompt = [0, 1, 2, 0, 2, 1, 0, 1, 1, 0]
    config = DecodeConfig(max_new_tokens=4, gamma=6, sampling=T1)
    reference = plain_distribution(target, prompt, config, codec)
    seen = TreeCoverage()
    drafter = LookupTreeDrafter(max_ngram=2)
    assert_lossless(tree_distribution(target, drafter, prompt, config, codec, seen), reference)
    assert seen.accepted_sources == {"lookup"}
    assert any(tested >= 2 for _, _, tested, _ in seen.iterations)

    broken = tree_distribution(target, drafter, prompt, config, codec, verifier=siblings_see_the_whole_row)
    assert_rejected(broken, reference)


def test_hybrid(codec) -> None:
    """HybridTreeDrafter: lookup branches and draft-model branches in one tree (accepted nodes from
    both sources), 4 new tokens over a 3-token vocabulary. Measured TV 1.5e-8.

    Broken twin, siblings tested against the whole target row: TV 0.227."""
    target = TableLM(3, order=2, seed=21, sharpness=1.0)
    prompt = [0, 1, 2, 0, 2, 1, 0, 1]
    config = DecodeConfig(max_new_tokens=4, gamma=5, sampling=T1)
    reference = plain_distribution(target, prompt, config, codec)
    seen = TreeCoverage()
    model = ModelTreeDrafter(
        TableLM(3, order=2, seed=22, sharpness=1.0), T1, target_vocab_size=3, width=2, expand=2
    )
    drafter = HybridTreeDrafter(model, LookupTreeDrafter(max_ngram=2), repeat_depth=2)
    assert_lossless(tree_distribution(target, drafter, prompt, config, codec, seen), reference)
    assert seen.accepted_sources == {"lookup", "draft"}

    broken = tree_distribution(target, drafter, prompt, config, codec, verifier=siblings_see_the_whole_row)
    assert_rejected(broken, reference)


def test_the_enumeration_sees_tree_runs_whole(codec) -> None:
    """The enumerated distribution sums to 1 over distinct sequences and differs from a draft-only
    model: a sanity check that the tree loop's draws all go through the enumerator."""
    target = TableLM(3, order=2, seed=51, sharpness=1.0)
    config = DecodeConfig(max_new_tokens=2, gamma=3, sampling=T1)
    drafter = ModelTreeDrafter(TableLM(3, order=2, seed=52, sharpness=1.0), T1, target_vocab_size=3, width=2)
    got = tree_distribution(target, drafter, [1], config, codec)
    assert len(got) == 9 and abs(sum(got.values()) - 1) < 1e-12
    draft_only = plain_distribution(TableLM(3, order=2, seed=52, sharpness=1.0), [1], config, codec)
    assert total_variation(got, draft_only) > 0.05


class ReseedingTree:
    """BROKEN: re-seeds the run's generator at every proposal (invisible to the enumeration)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name

    def prefill(self, context: list[int]) -> None:
        self.inner.prefill(context)

    def propose_tree(self, context, nodes, depth, generator):
        generator.manual_seed(0)
        return self.inner.propose_tree(context, nodes, depth, generator)

    def tree_feedback(self, tree, path) -> None:
        self.inner.tree_feedback(tree, path)

    def synchronize(self) -> None:
        pass


def test_real_generator_draws_in_trees(codec) -> None:
    """The real tree loop with its real generator (sampled candidates, so the drafter draws too):
    3000 seeded runs, 3 new tokens over a 3-token vocabulary (27 sequences), chi-square against the
    exact distribution at α = 1e-3: detects TV ≥ 0.063 with power 0.9, as the chain's test.

    Broken twin, the generator re-seeded at every proposal: p below α, empirical TV above 0.5."""
    from collections import Counter

    from scipy.stats import chisquare

    from specviz.decoding.lossy import exact_target_distribution
    from specviz.decoding.tree_decoder import tree_decode
    from tests.decoding.test_lossless import detectable_tv

    runs, alpha = 3000, 1e-3
    target = TableLM(3, order=2, seed=41, sharpness=1.0)
    drafter = SampledTreeDrafter(TableLM(3, order=2, seed=42, sharpness=1.0), T1, width=2)
    exact = exact_target_distribution(target, [1], 3, T1)
    assert len(exact) == 27 and detectable_tv(len(exact), runs, alpha, 0.9) < 0.064

    def sampled(tree_drafter) -> tuple[float, float]:
        counts: Counter = Counter()
        for seed in range(runs):
            config = DecodeConfig(max_new_tokens=3, gamma=3, sampling=T1, seed=seed)
            counts[list(tree_decode(target, tree_drafter, [1], config, codec))[-1].token_ids] += 1
        seqs = sorted(exact)
        total = sum(exact.values())
        p = chisquare([counts[s] for s in seqs], [exact[s] / total * runs for s in seqs]).pvalue
        return p, total_variation({s: c / runs for s, c in counts.items()}, exact)

    p, _ = sampled(drafter)
    assert p > alpha, f"the sampled output differs from the target (p = {p:.2e})"
    p_broken, tv_broken = sampled(ReseedingTree(drafter))
    assert p_broken < alpha and tv_broken > 0.5
