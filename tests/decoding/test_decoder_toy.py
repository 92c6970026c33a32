"""The whole loop on exact toy models: plain sampling's distribution, greedy equality, budgets (the
speculative loop's output distribution on every drafter path: tests/decoding/test_lossless.py)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from scipy.stats import chisquare

from specviz.decoding.backends import TableLM
from specviz.decoding.decoder import (
    DecodeConfig,
    PromptTooLongError,
    autoregressive_decode,
    speculative_decode,
)
from specviz.decoding.drafters import Draft, ModelDrafter, NgramDrafter
from specviz.decoding.events import Iteration, RunFinished, RunStarted
from specviz.decoding.lossy import exact_target_distribution
from specviz.decoding.sampling import SamplingConfig


def _finished(events) -> RunFinished:
    events = list(events)
    assert isinstance(events[0], RunStarted)
    assert isinstance(events[-1], RunFinished)
    return events[-1]


def test_plain_sampling_matches_target_distribution(codec) -> None:
    vocab, n_tokens, prompt, runs = 4, 2, [2], 3000
    sampling = SamplingConfig(temperature=1.0)
    target = TableLM(vocab, order=2, seed=5, sharpness=1.0)
    counts = Counter(
        _finished(
            autoregressive_decode(
                target, prompt, DecodeConfig(max_new_tokens=n_tokens, sampling=sampling, seed=s), codec
            )
        ).token_ids
        for s in range(runs)
    )
    exact = exact_target_distribution(target, prompt, n_tokens, sampling)
    seqs = sorted(exact)
    total = sum(exact.values())
    assert chisquare([counts[s] for s in seqs], [exact[s] / total * runs for s in seqs]).pvalue > 1e-3


class OracleDrafter:
    """Drafts the target's greedy continuation for its first ``correct`` tokens, then wrong ones."""

    name = "oracle"

    def __init__(self, target: TableLM, correct: int) -> None:
        self.target = target
        self.correct = correct

    def prefill(self, context: list[int]) -> None:
        pass

    def propose(self, context, k, generator) -> Draft:
        ctx, out = list(context), []
        for i in range(k):
            best = int(self.target.logits_for(ctx).argmax())
            tok = best if i < self.correct else (best + 1) % self.target.vocab_size
            out.append(tok)
            ctx.append(tok)
        return Draft(torch.tensor(out, dtype=torch.long), None)

    def feedback(self, n_accepted: int, n_drafted: int) -> None:
        pass

    def synchronize(self) -> None:
        pass


@pytest.mark.parametrize("correct", range(0, 6))
def test_greedy_equality_with_oracle_drafter_correct_for_first_j(correct: int, codec) -> None:
    gamma = 5
    target = TableLM(vocab_size=7, order=3, seed=3)
    config = DecodeConfig(max_new_tokens=20, gamma=gamma, sampling=SamplingConfig(temperature=0))
    plain = _finished(autoregressive_decode(target, [1, 2], config, codec))
    events = list(speculative_decode(target, OracleDrafter(target, correct), [1, 2], config, codec))
    spec = _finished(events)
    assert spec.token_ids == plain.token_ids
    first = next(e for e in events if isinstance(e, Iteration))
    assert first.n_accepted == min(correct, gamma)
    assert first.correction.kind == ("bonus" if correct >= gamma else "resampled")
    verdicts = [d.verdict for d in first.drafted]
    if correct < gamma:
        assert verdicts[correct] == "rejected"
        assert all(v == "discarded" for v in verdicts[correct + 1 :])


@pytest.mark.parametrize("drafter_kind", ["model", "ngram"])
def test_greedy_speculative_equals_plain_greedy(drafter_kind: str, codec) -> None:
    greedy = SamplingConfig(temperature=0)
    target = TableLM(vocab_size=5, order=2, seed=21, sharpness=3.0)
    drafter = (
        ModelDrafter(TableLM(vocab_size=5, order=1, seed=22), greedy, target_vocab_size=5)
        if drafter_kind == "model"
        else NgramDrafter(max_ngram=2)
    )
    for gamma in (1, 3, 6):
        config = DecodeConfig(max_new_tokens=40, gamma=gamma, sampling=greedy)
        plain = _finished(autoregressive_decode(target, [0, 1, 2], config, codec))
        spec = _finished(speculative_decode(target, drafter, [0, 1, 2], config, codec))
        assert spec.token_ids == plain.token_ids
        assert len(spec.token_ids) == 40


def test_budget_eos_and_counts(codec) -> None:
    target = TableLM(vocab_size=5, order=2, seed=4)
    greedy = SamplingConfig(temperature=0)
    drafter = ModelDrafter(
        TableLM(vocab_size=5, order=2, seed=4), greedy, target_vocab_size=5
    )  # a perfect drafter
    events = list(
        speculative_decode(
            target, drafter, [0], DecodeConfig(max_new_tokens=7, gamma=4, sampling=greedy), codec
        )
    )
    iterations = [e for e in events if isinstance(e, Iteration)]
    done = _finished(events)
    assert len(done.token_ids) == 7 and done.reason == "max_new_tokens"
    assert sum(len(e.new_token_ids) for e in iterations) == 7
    assert iterations[-1].total_tokens == 7
    assert all(e.n_accepted == len(e.drafted) for e in iterations)  # identical models: all accepted

    eos = done.token_ids[2]
    config = DecodeConfig(max_new_tokens=7, gamma=4, sampling=greedy, eos_token_ids=frozenset({eos}))
    stopped = _finished(speculative_decode(target, drafter, [0], config, codec))
    assert stopped.reason == "eos"
    assert stopped.token_ids == done.token_ids[: done.token_ids.index(eos) + 1]


def test_prompt_longer_than_context_is_refused(codec) -> None:
    target = TableLM(vocab_size=5, order=2, seed=4)
    config = DecodeConfig(max_new_tokens=4, context_length=3)
    with pytest.raises(PromptTooLongError, match="context window is 3"):
        list(autoregressive_decode(target, [1, 2, 3], config, codec))
    done = _finished(autoregressive_decode(target, [1, 2], config, codec))
    assert done.reason == "context_full" and len(done.token_ids) == 1


def test_ngram_worked_examples() -> None:
    ngram = NgramDrafter(max_ngram=2)
    assert ngram.lookup([5, 6, 7, 1, 5, 6], 3) == [7, 1, 5]
    assert ngram.lookup([1, 2, 3, 4], 2) == []  # no earlier occurrence of any tail
    assert ngram.lookup([9, 1, 2, 9, 3, 9], 2) == [3, 9]  # unigram fallback, latest match wins
    assert ngram.lookup([4, 4, 4], 5) == [4]  # follow text cannot run past the context


def test_eos_inside_accepted_drafts_is_not_reported_as_accepted(codec) -> None:
    target = TableLM(vocab_size=5, order=2, seed=4)
    greedy = SamplingConfig(temperature=0)
    perfect = ModelDrafter(TableLM(vocab_size=5, order=2, seed=4), greedy, target_vocab_size=5)
    full = _finished(
        speculative_decode(
            target, perfect, [0], DecodeConfig(max_new_tokens=5, gamma=4, sampling=greedy), codec
        )
    )
    eos = full.token_ids[1]  # the second drafted token of the first iteration
    config = DecodeConfig(max_new_tokens=20, gamma=4, sampling=greedy, eos_token_ids=frozenset({eos}))
    events = list(speculative_decode(target, perfect, [0], config, codec))
    first = next(e for e in events if isinstance(e, Iteration))
    assert first.new_token_ids == full.token_ids[:2]
    assert [d.verdict for d in first.drafted] == ["accepted", "accepted", "discarded", "discarded"]
    assert first.correction.committed is False
    assert _finished(events).reason == "eos"


class ByteCodec:
    """Token ids are UTF-8 bytes: a character can straddle two iterations."""

    def token_text(self, token_id: int) -> str:
        return bytes([token_id]).decode("utf-8", errors="replace")

    def decode(self, token_ids: list[int]) -> str:
        return bytes(token_ids).decode("utf-8", errors="replace")


def test_streamed_text_never_splits_a_multibyte_character() -> None:
    text = "é🙂 ok"
    data = list(text.encode())

    class Script(OracleDrafter):
        def propose(self, context, k, generator) -> Draft:
            done = len(context) - 1
            return Draft(torch.tensor(data[done : done + k], dtype=torch.long), None)

    class ScriptLM(TableLM):
        def logits_for(self, context: list[int]) -> torch.Tensor:
            nxt = data[len(context) - 1] if len(context) - 1 < len(data) else 32
            return torch.nn.functional.one_hot(torch.tensor(nxt), 256).float() * 10

    target = ScriptLM(vocab_size=256, order=1, seed=0)
    config = DecodeConfig(max_new_tokens=len(data), gamma=1, sampling=SamplingConfig(temperature=0))
    events = list(speculative_decode(target, Script(target, 0), [0], config, ByteCodec()))
    pieces = [e.new_text for e in events if isinstance(e, Iteration)]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
