"""Greedy speculative decoding reproduces plain greedy decoding on the real packaged models.

setup.sh provisions them; without them these tests skip locally but fail under CI=true.
"""

from __future__ import annotations

import pytest

from specviz.decoding.events import Iteration, RunFinished
from specviz.session import ModelOptions, RunSettings, Session
from tests.session.conftest import need

pytestmark = pytest.mark.real_models


def _run(events):
    iterations, finished = [], None
    for e in events:
        if isinstance(e, Iteration):
            iterations.append(e)
        elif isinstance(e, RunFinished):
            finished = e
    assert finished is not None
    return iterations, finished


PROMPTS = [
    ("Write a Python function that returns the n-th Fibonacci number.", True),
    ("def quicksort(items):\n    ", False),
    (
        "Repeat this code, renaming total to result:\ndef f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n",
        True,
    ),
]


@pytest.mark.parametrize(("prompt", "chat"), PROMPTS)
@pytest.mark.parametrize("drafter", ["model", "ngram"])
def test_default_pair_greedy_equals_plain(
    default_pair: Session, plain_greedy, prompt: str, chat: bool, drafter: str
) -> None:
    settings = RunSettings(prompt=prompt, chat=chat, drafter=drafter, gamma=4, max_new_tokens=20)
    spec_iters, spec = _run(default_pair.speculative(settings))
    assert spec.token_ids == plain_greedy(prompt, chat, 20)
    assert len(spec.token_ids) > 0
    if drafter == "model":
        # A 0.5B draft of the same family agrees with the 1.5B target most of the time.
        accepted = sum(e.n_accepted for e in spec_iters)
        drafted = sum(len(e.drafted) for e in spec_iters)
        assert accepted / drafted > 0.3


def test_smollm2_ngram_greedy_equals_plain() -> None:
    need("smollm2-135m")
    session = Session(ModelOptions("smollm2-135m", None, device="cpu", dtype="float32"))
    for prompt in PROMPTS:
        settings = RunSettings(prompt=prompt[0], chat=True, drafter="ngram", gamma=5, max_new_tokens=32)
        _, spec = _run(session.speculative(settings))
        _, plain = _run(session.plain(settings))
        assert spec.token_ids == plain.token_ids
