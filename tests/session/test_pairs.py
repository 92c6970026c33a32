"""Pairs whose tokenizers agree but whose embedding tables do not: bridged or refused up front."""

from __future__ import annotations

import pytest

from specviz.models import ModelError
from specviz.session import ModelOptions, RunSettings, Session
from tests.support.tiny_models import save_tiny_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _options(target: str, draft: str) -> ModelOptions:
    return ModelOptions(
        target=target, draft=draft, device="cpu", dtype="float32", draft_quant="none", pack="none"
    )


def test_a_draft_with_fewer_rows_than_the_targets_logits_is_bridged_not_crashed(tmp_path) -> None:
    """The target (300 rows, padded past the 257-token tokenizer) can emit ids the draft (257 rows)
    cannot embed; feeding them straight through crashed with an IndexError. Bridged through the
    tokenizers instead, greedy output still equals the target's own."""
    target = save_tiny_checkpoint(tmp_path / "target", seed=1, vocab_size=300)
    draft = save_tiny_checkpoint(tmp_path / "draft", seed=2)
    session = Session(_options(target, draft))
    assert not session.same_vocab
    settings = RunSettings(prompt="hello world", max_new_tokens=24, temperature=0.0)
    speculative = [e for e in session.speculative(settings)][-1]
    plain = [e for e in session.plain(settings)][-1]
    assert speculative.reason == plain.reason
    assert speculative.token_ids == plain.token_ids


def test_equal_tables_pass_ids_straight_through(tmp_path) -> None:
    target = save_tiny_checkpoint(tmp_path / "target", seed=1)
    draft = save_tiny_checkpoint(tmp_path / "draft", seed=2)
    assert Session(_options(target, draft)).same_vocab


def test_a_draft_that_cannot_embed_its_own_tokenizer_is_refused_at_load(tmp_path) -> None:
    target = save_tiny_checkpoint(tmp_path / "target", seed=1)
    draft = save_tiny_checkpoint(tmp_path / "draft", seed=2, vocab_size=200)
    with pytest.raises(ModelError, match="200 embedding rows"):
        Session(_options(target, draft))
