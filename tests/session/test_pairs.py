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


def test_with_draft_shares_the_loaded_target(tmp_path) -> None:
    target = save_tiny_checkpoint(tmp_path / "target", seed=1)
    first = Session(_options(target, save_tiny_checkpoint(tmp_path / "a", seed=2)))
    second = first.with_draft(save_tiny_checkpoint(tmp_path / "b", seed=3))
    assert second.target is first.target and second.draft is not first.draft
    assert second.target_backend is not first.target_backend  # each session keeps its own cache
    settings = RunSettings(prompt="hello", max_new_tokens=12)
    plain = list(first.plain(settings))[-1]
    assert list(second.speculative(settings))[-1].token_ids == plain.token_ids
    assert first.with_draft(None).draft is None


def test_the_ui_loader_keeps_the_target_when_only_the_draft_changes(tmp_path) -> None:
    from specviz.commands.ui import SessionLoader
    from specviz.tui.model_loading import ModelChoice

    target = save_tiny_checkpoint(tmp_path / "target", seed=1)
    drafts = [save_tiny_checkpoint(tmp_path / name, seed=seed) for name, seed in (("a", 2), ("b", 3))]
    loader = SessionLoader(_options(target, drafts[0]), RunSettings(prompt="x"))
    stages: list[list[str]] = []
    for draft in drafts:
        seen: list[str] = []
        loader.load(ModelChoice(target, draft), lambda stage, done, total, seen=seen: seen.append(stage))
        stages.append(seen)
    # load_model names each checkpoint it loads: the target the first time only.
    assert stages[0].count(f"loading {target}") == 2 and stages[1].count(f"loading {target}") == 1
    assert f"loading {drafts[1]}" in stages[1]


@pytest.mark.parametrize("drafter", ["tree", "hybrid", "lookup-tree"])
def test_tree_drafters_through_the_session_equal_plain_greedy(tmp_path, drafter: str) -> None:
    """The session's tree path end to end on tiny models: settings → drafter → tree_decode over
    HFBackend's tree attention, with a fixed node budget and with the automatic one (which measures
    T(k) into the session's cost table first)."""
    from specviz.decoding.events import Iteration, RunFinished
    from specviz.session import RunSettings

    target = save_tiny_checkpoint(tmp_path / "target", seed=1)
    session = Session(_options(target, save_tiny_checkpoint(tmp_path / "draft", seed=2)))
    prompt = "the cat sat on the mat and the cat sat on the"
    plain = [
        e for e in session.plain(RunSettings(prompt=prompt, max_new_tokens=12)) if isinstance(e, RunFinished)
    ]
    for auto in (False, True):
        settings = RunSettings(prompt=prompt, drafter=drafter, gamma=6, auto_gamma=auto, max_new_tokens=12)  # type: ignore[arg-type]
        events = list(session.speculative(settings))
        assert events[-1].token_ids == plain[0].token_ids  # type: ignore[union-attr]
        iterations = [e for e in events if isinstance(e, Iteration)]
        assert all(e.tree is not None and len(e.tree) <= 6 for e in iterations)
        assert events[0].drafter == drafter  # type: ignore[union-attr]
