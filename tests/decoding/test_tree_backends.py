"""Token trees in the backends: one forward over a tree equals each node's own path fed plainly.

The reference for every check is the plain ``forward`` on a fresh cache, which
tests/decoding/test_backends.py already ties to a one-shot forward. A tree node's logits must
equal the last row of feeding prefix + its path; after ``keep_path`` the cache must behave as if
only the kept path had been fed. The negative controls break the mask or the positions the
backend builds and show the same comparison then fails.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from specviz.decoding import backends
from specviz.decoding.backends import HFBackend, TableLM, TreeLM
from tests.support.tiny_models import tiny_llama, tiny_qwen2

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VOCAB = 50  # token ids drawn below this fit every model here
ATOL = 1e-4

# Branching at depths 0, 1 and 2; breadth-first, so each depth is a contiguous block of nodes.
#   depth 0: 0 1          (two children of the prefix)
#   depth 1: 2 3 <- 0, 4 <- 1
#   depth 2: 5 6 <- 2, 7 <- 3
#   depth 3: 8 <- 5, 9 10 <- 6
PARENTS = [-1, -1, 0, 0, 1, 2, 2, 3, 5, 6, 6]
DEPTH_BLOCKS = [(0, 2), (2, 5), (5, 8), (8, 11)]


def _make(name: str) -> Callable[[], TreeLM]:
    def eager_qwen2() -> HFBackend:
        model = tiny_qwen2(seed=0)
        model.set_attn_implementation("eager")
        return HFBackend(model)

    return {
        "qwen2": lambda: HFBackend(tiny_qwen2(seed=0)),  # sdpa, the default: boolean mask
        "qwen2-eager": eager_qwen2,  # additive float mask
        "llama": lambda: HFBackend(tiny_llama(seed=1)),
        "table": lambda: TableLM(vocab_size=VOCAB, order=3, seed=2),
    }[name]


NAMES = ["qwen2", "qwen2-eager", "llama", "table"]


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A committed prefix, the tree's tokens and a continuation, seeded."""
    gen = torch.Generator().manual_seed(7)
    prefix = torch.randint(0, VOCAB, (6,), generator=gen)
    tokens = torch.randint(0, VOCAB, (len(PARENTS),), generator=gen)
    tokens[1] = tokens[0]  # twin roots: only the branches below them tell them apart
    nxt = torch.randint(0, VOCAB, (3,), generator=gen)
    return prefix, tokens, nxt


def _path(node: int) -> list[int]:
    out = []
    while node >= 0:
        out.append(node)
        node = PARENTS[node]
    return out[::-1]


def _reference_rows(make: Callable[[], TreeLM], prefix: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Logits ``[n, vocab]``: row i from feeding prefix + node i's path plainly on a fresh cache."""
    rows = []
    for node in range(len(PARENTS)):
        fresh = make()
        rows.append(fresh.forward(torch.cat([prefix, tokens[_path(node)]]))[-1])
    return torch.stack(rows)


def _tree_rows(backend: TreeLM, tokens: torch.Tensor, by_depth: bool) -> torch.Tensor:
    if not by_depth:
        return backend.forward_tree(tokens, PARENTS)
    return torch.cat([backend.forward_tree(tokens[a:b], PARENTS[a:b]) for a, b in DEPTH_BLOCKS])


@pytest.fixture(scope="module")
def references() -> dict[str, torch.Tensor]:
    """Per-path plain-forward logits for every backend (11 fresh runs each, computed once)."""
    threads = torch.get_num_threads()  # module-scoped: the function-scoped thread fixture is not active
    torch.set_num_threads(1)
    try:
        prefix, tokens, _ = _data()
        return {name: _reference_rows(_make(name), prefix, tokens) for name in NAMES}
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("by_depth", [False, True], ids=["one-call", "one-depth-per-call"])
@pytest.mark.parametrize("name", NAMES)
def test_every_node_scores_as_its_own_path(name: str, by_depth: bool, references) -> None:
    prefix, tokens, _ = _data()
    backend = _make(name)()
    backend.forward(prefix)
    got = _tree_rows(backend, tokens, by_depth)  # [n, vocab]
    assert backend.length == len(prefix) + len(PARENTS)
    torch.testing.assert_close(got, references[name], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_keep_returns_the_last_rows(name: str, references) -> None:
    prefix, tokens, _ = _data()
    backend = _make(name)()
    backend.forward(prefix)
    got = backend.forward_tree(tokens, PARENTS, keep=3)
    torch.testing.assert_close(got, references[name][-3:], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_a_chain_tree_equals_a_plain_forward(name: str) -> None:
    prefix, tokens, _ = _data()
    backend, plain = _make(name)(), _make(name)()
    backend.forward(prefix)
    plain.forward(prefix)
    got = backend.forward_tree(tokens[:5], [-1, 0, 1, 2, 3])
    torch.testing.assert_close(got, plain.forward(tokens[:5]), atol=ATOL, rtol=0)


# [0] is already in place (nothing moves); the others gather rows from further down the region.
PATHS = [[0], [1, 4], [0, 3, 7], [0, 2, 6, 10], [0, 2, 5, 8]]


@pytest.mark.parametrize("by_depth", [False, True], ids=["one-call", "one-depth-per-call"])
@pytest.mark.parametrize("path", PATHS, ids=lambda p: "-".join(map(str, p)))
@pytest.mark.parametrize("name", NAMES)
def test_keep_path_then_forward_equals_feeding_the_path(name: str, path: list[int], by_depth: bool) -> None:
    prefix, tokens, nxt = _data()
    make = _make(name)
    backend = make()
    backend.forward(prefix)
    _tree_rows(backend, tokens, by_depth)
    backend.keep_path(path)
    assert backend.length == len(prefix) + len(path)
    got = backend.forward(nxt)

    expected = make().forward(torch.cat([prefix, tokens[path], nxt]))[-len(nxt) :]
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("drop", ["keep_path([])", "truncate(base)"])
@pytest.mark.parametrize("name", NAMES)
def test_dropping_the_whole_tree_restores_the_prefix(name: str, drop: str) -> None:
    prefix, tokens, nxt = _data()
    make = _make(name)
    backend = make()
    backend.forward(prefix)
    backend.forward_tree(tokens, PARENTS)
    if drop == "keep_path([])":
        backend.keep_path([])
    else:
        backend.truncate(len(prefix))
    assert backend.length == len(prefix)
    got = backend.forward(nxt)
    torch.testing.assert_close(got, make().forward(torch.cat([prefix, nxt]))[-len(nxt) :], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_truncate_into_a_chain_keeps_its_first_nodes(name: str) -> None:
    prefix, tokens, nxt = _data()
    make = _make(name)
    backend = make()
    backend.forward(prefix)
    backend.forward_tree(tokens[:4], [-1, 0, 1, 1])  # a chain 0-1, then siblings 2 and 3
    backend.truncate(len(prefix) + 2)
    got = backend.forward(nxt)
    expected = make().forward(torch.cat([prefix, tokens[:2], nxt]))[-len(nxt) :]
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_a_second_tree_after_keep_path_starts_at_the_new_length(name: str) -> None:
    prefix, tokens, _ = _data()
    make = _make(name)
    backend = make()
    backend.forward(prefix)
    backend.forward_tree(tokens, PARENTS)
    backend.keep_path([0, 3, 7])
    second = tokens[:3].flip(0)
    got = backend.forward_tree(second, [-1, -1, 0])  # region indices restart at 0
    committed = torch.cat([prefix, tokens[[0, 3, 7]]])
    expected = torch.stack(
        [
            make().forward(torch.cat([committed, second[:1]]))[-1],
            make().forward(torch.cat([committed, second[1:2]]))[-1],
            make().forward(torch.cat([committed, second[[0, 2]]]))[-1],
        ]
    )
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    assert backend.length == len(committed) + 3


@pytest.mark.parametrize("name", NAMES)
def test_a_chain_that_branches_later_and_an_empty_prefix(name: str) -> None:
    # One node, then a chain step, then siblings: the first two calls are plain causal (the
    # backend may skip its own mask there), the third needs the tree mask. No committed prefix.
    _, tokens, _ = _data()
    make = _make(name)
    parents = [-1, 0, 1, 1, 0]
    backend = make()
    got = torch.cat(
        [
            backend.forward_tree(tokens[:1], parents[:1]),
            backend.forward_tree(tokens[1:2], parents[1:2]),
            backend.forward_tree(tokens[2:5], parents[2:5]),
        ]
    )
    paths = [[0], [0, 1], [0, 1, 2], [0, 1, 3], [0, 4]]
    expected = torch.stack([make().forward(tokens[path])[-1] for path in paths])
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    backend.keep_path([0, 4])
    assert backend.length == 2


# --- negative controls: the comparisons above notice a broken mask or broken positions -----------


def _max_error(name: str, references) -> float:
    prefix, tokens, _ = _data()
    backend = _make(name)()
    backend.forward(prefix)
    return float((backend.forward_tree(tokens, PARENTS) - references[name]).abs().max())


@pytest.mark.parametrize("name", NAMES)
def test_control_siblings_seeing_each_other_changes_the_logits(name: str, references, monkeypatch) -> None:
    # A causal mask over the region in append order: every node also sees its siblings and cousins.
    monkeypatch.setattr(backends._TreeRegion, "path_to", lambda self, node: list(range(node + 1)))
    # Measured: 0.053 (qwen2, sdpa and eager), 0.057 (llama), 9.3 (table); correct rows are within 1e-7.
    assert _max_error(name, references) > 100 * ATOL


@pytest.mark.parametrize("name", ["qwen2", "qwen2-eager", "llama"])
def test_control_positions_without_depth_change_the_logits(name: str, references, monkeypatch) -> None:
    # Right mask, but each node at base + its region index (where a flattened tree would put it).
    grow = backends._TreeRegion.grow

    def flat_positions(self, parents, n):
        new = grow(self, parents, n)
        self.depths[new.start :] = list(new)
        return new

    monkeypatch.setattr(backends._TreeRegion, "grow", flat_positions)
    # Measured: 1.2e-3 (qwen2), 1.0e-3 (llama): tiny random weights barely rotate attention, yet
    # still 10x the tolerance the tests above use (correct rows are within 1e-7).
    assert _max_error(name, references) > 5 * ATOL


def test_control_keep_path_without_moving_rows_changes_the_next_logits(monkeypatch) -> None:
    # Crop without the gather: the cache keeps region rows 0..k-1 instead of the path's rows.
    prefix, tokens, nxt = _data()
    monkeypatch.setattr(backends._TreeRegion, "check_path", lambda self, nodes: list(range(len(nodes))))
    backend = HFBackend(tiny_qwen2(seed=0))
    backend.forward(prefix)
    backend.forward_tree(tokens, PARENTS)
    backend.keep_path([0, 3, 7])
    got = backend.forward(nxt)
    expected = HFBackend(tiny_qwen2(seed=0)).forward(torch.cat([prefix, tokens[[0, 3, 7]], nxt]))[-len(nxt) :]
    assert float((got - expected).abs().max()) > 100 * ATOL


# --- misuse gets a clear error ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["qwen2", "table"])
def test_misuse_is_refused_with_a_message(name: str) -> None:
    prefix, tokens, _ = _data()
    backend = _make(name)()
    backend.forward(prefix)
    with pytest.raises(ValueError, match="earlier node"):
        backend.forward_tree(tokens[:2], [-1, 1])  # a node cannot be its own parent
    with pytest.raises(ValueError, match="one parent per token"):
        backend.forward_tree(tokens[:2], [-1])
    with pytest.raises(ValueError, match="at least one token"):
        backend.forward_tree(tokens[:0], [])
    assert backend.length == len(prefix)  # nothing was appended by the refused calls
    with pytest.raises(ValueError, match="no token tree is open"):
        backend.keep_path([0])

    backend.forward_tree(tokens[:4], [-1, 0, 0, 1])
    with pytest.raises(ValueError, match="a token tree is open"):
        backend.forward(tokens[:1])
    with pytest.raises(ValueError, match="parent of the next"):
        backend.keep_path([0, 3])  # 3's parent is 1, not 0
    with pytest.raises(ValueError, match="parent of the next"):
        backend.keep_path([1])  # does not start at the top
    with pytest.raises(ValueError, match="not in the tree"):
        backend.keep_path([0, 9])
    with pytest.raises(ValueError, match="not one path"):
        backend.truncate(len(prefix) + 3)  # nodes 0, 1, 2: 2 is 1's sibling
    backend.keep_path([0, 1, 3])
    assert backend.length == len(prefix) + 3


def test_attention_without_a_dense_mask_is_refused() -> None:
    model = tiny_qwen2(seed=0)
    model.config._attn_implementation = "flash_attention_2"  # never run: refused before the forward
    backend = HFBackend(model)
    with pytest.raises(ValueError, match="attn_implementation='sdpa'"):
        backend.forward_tree(torch.tensor([1, 2]), [-1, 0])
    assert backend.length == 0


def test_the_backends_are_tree_models() -> None:
    assert isinstance(HFBackend(tiny_qwen2(seed=0)), TreeLM)
    assert isinstance(TableLM(vocab_size=4, order=1, seed=0), TreeLM)
