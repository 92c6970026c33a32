"""SmolLM2-135M (its own tokenizer) drafting for Qwen2.5-Coder-1.5B: greedy output is the target's own.

It reuses the default pair's loaded target (``Session.with_draft``): the 1.5B model loads once per test session.
"""

from __future__ import annotations

import pytest

from specviz.decoding.events import Iteration, RunFinished
from specviz.session import RunSettings, Session
from tests.session.conftest import need

pytestmark = pytest.mark.real_models


def test_smollm2_drafts_for_qwen_greedy_identical(default_pair: Session) -> None:
    need("smollm2-135m")
    session = default_pair.with_draft("smollm2-135m")
    assert session.target is default_pair.target
    assert not session.same_vocab
    settings = RunSettings(
        prompt="Write a Python function that reverses a list.", chat=True, gamma=4, max_new_tokens=20
    )
    events = list(session.speculative(settings))
    spec = next(e for e in events if isinstance(e, RunFinished))
    plain = next(e for e in session.plain(settings) if isinstance(e, RunFinished))
    assert spec.token_ids == plain.token_ids
    iterations = [e for e in events if isinstance(e, Iteration)]
    assert sum(e.n_accepted for e in iterations) > 0  # the bridge really proposes usable tokens
    assert any(d.draft_pieces for e in iterations for d in e.drafted)
