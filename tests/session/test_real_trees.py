"""Greedy token-tree decoding reproduces plain greedy decoding on the real default pair."""

from __future__ import annotations

import pytest

from specviz.session import RunSettings, Session
from tests.session.test_real_models import PROMPTS, _run

pytestmark = pytest.mark.real_models


# Each drafter on the prompts that exercise it (the full cross product costs a minute more): the
# draft-model tree on the chat and the raw code prompt, the hybrid and the lookup tree where the
# prompt's code is repeated.
CASES = [("tree", 0), ("tree", 1), ("hybrid", 0), ("hybrid", 2), ("lookup-tree", 2)]


@pytest.mark.parametrize(("drafter", "case"), CASES, ids=[f"{d}-{i}" for d, i in CASES])
def test_default_pair_greedy_trees_equal_plain(
    default_pair: Session, plain_greedy, drafter: str, case: int
) -> None:
    prompt, chat = PROMPTS[case]
    settings = RunSettings(prompt=prompt, chat=chat, drafter=drafter, gamma=12, max_new_tokens=20)
    iterations, tree = _run(default_pair.speculative(settings))
    assert tree.token_ids == plain_greedy(prompt, chat, 20)
    assert len(tree.token_ids) > 0
    assert all(e.tree is not None for e in iterations)
    if drafter != "lookup-tree":
        # More than one token per target forward: the tree's accepted paths are long.
        assert len(tree.token_ids) / len(iterations) > 1.5
