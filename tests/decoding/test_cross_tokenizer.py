"""Cross-tokenizer drafting: greedy equality, TLI draft rows, and the text/boundary plumbing (TLI
losslessness: tests/decoding/test_lossless.py)."""

from __future__ import annotations

import random

import pytest
import torch

from specviz.decoding.backends import HFBackend, TableLM
from specviz.decoding.decoder import DecodeConfig, autoregressive_decode, speculative_decode
from specviz.decoding.drafters.cross_tokenizer import (
    CrossDraft,
    CrossTokenizerDrafter,
    HFTextTokenizer,
    retokenize_continuation,
    text_after,
    vocab_intersection,
)
from specviz.decoding.events import Iteration, RunFinished
from specviz.decoding.sampling import SamplingConfig, to_probs
from tests.support.tiny_models import tiny_llama, tiny_qwen2

GREEDY = SamplingConfig(temperature=0)


class ToyTokenizer:
    """Longest-match tokenizer over a fixed list of strings, so exact toy models can have text.

    >>> ToyTokenizer(["a", "b", "ab"]).encode("abba")
    [2, 1, 0]
    """

    prefix_ids: list[int] = []  # noqa: RUF012 - never mutated

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def __len__(self) -> int:
        return len(self.pieces)

    def encode(self, text: str) -> list[int]:
        out, i = [], 0
        while i < len(text):
            best = max(
                (j for j, p in enumerate(self.pieces) if text.startswith(p, i)),
                key=lambda j: len(self.pieces[j]),
            )
            out.append(best)
            i += len(self.pieces[best])
        return out

    def decode(self, token_ids: list[int]) -> str:
        return "".join(self.pieces[i] for i in token_ids)

    def token_bytes(self) -> list[bytes | None]:
        return [p.encode() for p in self.pieces]


class ToyCodec:
    def __init__(self, tokenizer: ToyTokenizer) -> None:
        self.tokenizer = tokenizer

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.pieces[token_id]

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids)


class HFCodec:
    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(list(token_ids))


class Recorder:
    """Wraps a drafter; keeps every draft and checks the draft's context spells the committed text."""

    def __init__(self, inner: CrossTokenizerDrafter) -> None:
        self.inner = inner
        self.name = inner.name
        self.drafts: list[CrossDraft] = []
        self.in_sync = 0

    def prefill(self, context: list[int]) -> None:
        self.inner.prefill(context)

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> CrossDraft:
        draft = self.inner.propose(context, k, generator)
        self.drafts.append(draft)
        target_text = self.inner.target_tokenizer.decode(context)
        if "\ufffd" not in target_text and k > 0:
            assert self.inner.draft_tokenizer.decode(self.inner.draft_context) == target_text
            self.in_sync += 1
        return draft

    def feedback(self, n_accepted: int, n_drafted: int) -> None:
        self.inner.feedback(n_accepted, n_drafted)

    def synchronize(self) -> None:
        self.inner.synchronize()


# Target-only pieces "ba", draft-only "aba" and "bb"; shared "a", "b", "ab" (at other ids).
TARGET_PIECES = ["a", "b", "ab", "ba"]
DRAFT_PIECES = ["b", "a", "aba", "bb", "ab"]


def _finished(events) -> RunFinished:
    last = list(events)[-1]
    assert isinstance(last, RunFinished)
    return last


def test_vocab_intersection_maps_equal_bytes() -> None:
    mapping = vocab_intersection(ToyTokenizer(DRAFT_PIECES), ToyTokenizer(TARGET_PIECES), 6, 4)
    # draft "b"->1, "a"->0, "aba" and "bb" have no target token, "ab"->2; id 5 is an untexted pad row
    assert mapping.tolist() == [1, 0, -1, -1, 2, -1]


@pytest.mark.parametrize("gamma", [1, 3, 5])
def test_toy_greedy_cross_tokenizer_equals_plain_greedy(gamma: int) -> None:
    target_tok, draft_tok = ToyTokenizer(TARGET_PIECES), ToyTokenizer(DRAFT_PIECES)
    target = TableLM(len(TARGET_PIECES), order=3, seed=3, sharpness=3.0)
    draft = TableLM(len(DRAFT_PIECES), order=2, seed=4, sharpness=3.0)
    codec = ToyCodec(target_tok)
    for prompt in ([0], [2, 3], [1, 1, 0, 3]):
        config = DecodeConfig(max_new_tokens=25, gamma=gamma, sampling=GREEDY)
        drafter = Recorder(CrossTokenizerDrafter(draft, draft_tok, target_tok, GREEDY, len(TARGET_PIECES)))
        assert drafter.name == "cross-text"
        spec = _finished(speculative_decode(target, drafter, prompt, config, codec))
        plain = _finished(autoregressive_decode(target, prompt, config, codec))
        assert spec.token_ids == plain.token_ids
        assert drafter.in_sync > 0


def test_tli_draft_rows_are_the_distribution_the_tokens_came_from() -> None:
    sampling = SamplingConfig(temperature=0.8, top_k=3)
    target_tok, draft_tok = ToyTokenizer(TARGET_PIECES), ToyTokenizer(DRAFT_PIECES)
    draft = TableLM(len(DRAFT_PIECES), order=2, seed=12, sharpness=1.0)
    drafter = CrossTokenizerDrafter(draft, draft_tok, target_tok, sampling, len(TARGET_PIECES))
    drafter.prefill([0, 2])
    draft_out = drafter.propose([0, 2], 4, torch.Generator().manual_seed(0))
    assert draft_out.probs is not None and draft_out.probs.shape == (4, 4)  # [k, target_vocab]
    torch.testing.assert_close(draft_out.probs.sum(-1), torch.ones(4))
    assert torch.all(draft_out.probs[:, 3] == 0), "no mass outside the intersection"
    assert torch.all(draft_out.probs[torch.arange(4), draft_out.tokens] > 0)
    assert [p[0] for p in draft_out.pieces] == [TARGET_PIECES[t] for t in draft_out.tokens.tolist()]
    # Mass is the draft's restricted to the intersection and renormalised, then top-k'd at T=0.8.
    draft_ids = [1, 4]  # "a", "ab" in the draft's vocabulary
    logits = draft.logits_for(draft_ids).clone()
    logits[[2, 3]] = float("-inf")  # "aba", "bb": no target token
    expected = to_probs(logits.unsqueeze(0), sampling)[0]  # [draft_vocab]
    torch.testing.assert_close(
        draft_out.probs[0], expected[[1, 0, 4, 2]].index_fill(0, torch.tensor([3]), 0.0)
    )


def test_configurations_that_cannot_be_lossless_are_refused() -> None:
    target_tok, draft_tok = ToyTokenizer(TARGET_PIECES), ToyTokenizer(DRAFT_PIECES)
    draft = TableLM(len(DRAFT_PIECES), order=2, seed=12)
    with pytest.raises(ValueError, match="only lossless for greedy"):
        CrossTokenizerDrafter(draft, draft_tok, target_tok, SamplingConfig(temperature=1.0), 4, method="text")
    with pytest.raises(ValueError, match="share none"):
        CrossTokenizerDrafter(
            draft, ToyTokenizer(["x", "y", "z", "xy", "yz"]), target_tok, SamplingConfig(1.0), 4
        )


# -- byte-level BPE tokenizers with genuinely different merges ---------------------------------------

TARGET_MERGES = [
    ("t", "h"), ("th", "e"), ("Ġ", "the"), ("a", "t"), ("Ġ", "c"), ("Ġc", "at"), ("Ġ", "m"),
    ("Ġ", "s"), ("Ġs", "at"), ("o", "n"), ("Ġ", "on"), ("Ġ", "h"), ("Ġh", "at"),
]  # fmt: skip
DRAFT_MERGES = [
    ("Ġ", "t"), ("Ġt", "h"), ("Ġth", "e"), ("c", "a"), ("ca", "t"), ("a", "t"), ("Ġ", "m"),
    ("Ġm", "at"), ("s", "at"), ("Ġ", "o"), ("Ġo", "n"), ("h", "at"),
]  # fmt: skip
TEXT = "the cat sat on the mat. the cat ate the hat; that cat sat at the mat on the hat. " * 2


def bpe_tokenizer(merges: list[tuple[str, str]], shuffle_seed: int | None = None):
    """Byte-level BPE with the given merges (in GPT-2's byte alphabet: "Ġ" is a space)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    symbols = sorted(ByteLevel.alphabet())
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(symbols)
    vocab = {"<|endoftext|>": 0, **{ch: i + 1 for i, ch in enumerate(symbols)}}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def bpe_pair():
    return bpe_tokenizer(TARGET_MERGES), bpe_tokenizer(DRAFT_MERGES, shuffle_seed=7)


class CountingTokenizer(HFTextTokenizer):
    """Records the length of every text the drafter re-encodes."""

    def __init__(self, tokenizer) -> None:
        super().__init__(tokenizer)
        self.lengths: list[int] = []

    def encode(self, text: str) -> list[int]:
        self.lengths.append(len(text))
        return super().encode(text)


class TextOracleLM:
    """A CausalLM that writes a fixed text: its argmax is the longest token the text continues with.

    Its position in the text is the length of the decoded context, so a drafter fed a corrupted copy
    of the text is wrong exactly where the copy differs.
    """

    def __init__(self, tokenizer, text: str) -> None:
        self.vocab_size = len(tokenizer)
        self.device = torch.device("cpu")
        self.text = text
        self._tok = HFTextTokenizer(tokenizer)
        self._strings = [tokenizer.decode([i]) for i in range(self.vocab_size)]
        self._tokens: list[int] = []

    @property
    def length(self) -> int:
        return len(self._tokens)

    def logits_for(self, context: list[int]) -> torch.Tensor:
        rest = self.text[len(self._tok.decode(context)) :]
        matches = [i for i, s in enumerate(self._strings) if i > 0 and s and rest.startswith(s)]
        best = max(matches, key=lambda i: len(self._strings[i])) if matches else 0
        logits = torch.zeros(self.vocab_size)
        logits[best] = 10.0
        return logits

    def forward(self, tokens: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        rows = []
        for t in tokens.tolist():
            self._tokens.append(int(t))
            rows.append(self.logits_for(self._tokens))
        out = torch.stack(rows)  # [n, vocab]
        return out if keep is None else out[-keep:]

    def truncate(self, length: int) -> None:
        del self._tokens[length:]

    def reset(self) -> None:
        self._tokens = []

    def synchronize(self) -> None:
        pass


def test_retokenize_continuation_uses_look_behind(bpe_pair) -> None:
    target_tok, _ = bpe_pair
    tok = HFTextTokenizer(target_tok)
    pieces = target_tok.convert_ids_to_tokens
    committed = tok.encode("the")
    assert pieces(retokenize_continuation(tok, committed, " cat sat", 4)) == ["Ġcat", "Ġsat"]
    # Committed " c" cannot merge with "at" any more: the continuation is spelled on its own.
    committed = tok.encode("the") + tok.encode(" c")
    assert pieces(retokenize_continuation(tok, committed, "at on", 4)) == ["at", "Ġon"]
    # "t" + "he" re-encodes as "the": look-behind cannot keep the window, so "he" stands alone.
    assert pieces(retokenize_continuation(tok, tok.encode("t"), "he", 4)) == ["h", "e"]


def test_text_after_and_token_bytes_on_multibyte_text(bpe_pair) -> None:
    target_tok, _ = bpe_pair
    tok = HFTextTokenizer(target_tok)
    ids = tok.encode("é🙂 the")
    assert len(ids) == 7  # "é" is 2 byte tokens, "🙂" 4, then "Ġthe"
    assert text_after(tok, ids, 2) == "🙂 the"
    assert text_after(tok, ids, 2, 4).endswith("\ufffd")  # half a character
    table = tok.token_bytes()
    assert b"".join(table[i] for i in ids) == "é🙂 the".encode()
    assert table[0] == b"<|endoftext|>"


def test_greedy_text_drafting_across_straddling_boundaries(bpe_pair) -> None:
    """Target and draft write the same text (the draft with a few typos) in different tokenisations."""
    target_tok, draft_tok = bpe_pair
    draft_text = TEXT.replace("ate", "ape").replace("hat;", "hat,")
    target, draft = TextOracleLM(target_tok, TEXT), TextOracleLM(draft_tok, draft_text)
    codec = HFCodec(target_tok)
    prompt = HFTextTokenizer(target_tok).encode("the cat")
    config = DecodeConfig(max_new_tokens=200, gamma=4, sampling=GREEDY, eos_token_ids=frozenset({0}))
    encoded = CountingTokenizer(draft_tok)
    drafter = Recorder(CrossTokenizerDrafter(draft, encoded, target_tok, GREEDY, target.vocab_size))
    events = list(speculative_decode(target, drafter, prompt, config, codec))
    plain = _finished(autoregressive_decode(target, prompt, config, codec))
    assert _finished(events).token_ids == plain.token_ids
    # The look-behind stays short: after the prompt, only the tail of the text is re-encoded.
    assert max(encoded.lengths[1:]) <= 40, encoded.lengths
    assert plain.reason == "eos" and "the cat" + codec.decode(list(plain.token_ids[:-1])) == TEXT

    iterations = [e for e in events if isinstance(e, Iteration)]
    drafted = sum(1 for e in iterations for d in e.drafted if d.verdict != "discarded")
    accepted = sum(e.n_accepted for e in iterations)
    assert accepted / drafted > 0.6, f"acceptance {accepted}/{drafted}: the text translation is off"
    assert any(e.correction.kind == "resampled" for e in iterations), "the typos must cause rejections"
    # Accepted target tokens built from two draft pieces (" "+"cat" -> " cat") and draft pieces split
    # over two target tokens (" mat" -> " m"+"at") show both directions of straddling.
    joined = split = 0
    for it, draft in zip(iterations, drafter.drafts, strict=True):
        for d, pieces in zip(it.drafted, draft.pieces, strict=True):
            if d.verdict == "accepted":
                joined += len(pieces) > 1
                split += len(pieces) == 1 and pieces[0] != d.text
    assert joined > 0 and split > 0
    assert drafter.in_sync == len(iterations)


@pytest.mark.parametrize("prompt", ["Hello", "the cat é"])
def test_tiny_random_models_greedy_equality(bpe_pair, prompt: str) -> None:
    """Real HF backends with KV-cache rollback on both sides; random weights emit arbitrary bytes."""
    target_tok, draft_tok = bpe_pair
    target = HFBackend(tiny_qwen2(seed=0, vocab_size=len(target_tok)))
    draft = HFBackend(tiny_llama(seed=1, vocab_size=len(draft_tok)))
    codec = HFCodec(target_tok)
    ids = HFTextTokenizer(target_tok).encode(prompt)
    config = DecodeConfig(max_new_tokens=16, gamma=3, sampling=GREEDY)
    drafter = CrossTokenizerDrafter(draft, draft_tok, target_tok, GREEDY, target.vocab_size)
    spec = _finished(speculative_decode(target, drafter, ids, config, codec))
    plain = _finished(autoregressive_decode(target, ids, config, codec))
    assert spec.token_ids == plain.token_ids


def test_tiny_random_models_tli_rows(bpe_pair) -> None:
    target_tok, draft_tok = bpe_pair
    sampling = SamplingConfig(temperature=1.0, top_p=0.9)
    target = HFBackend(tiny_qwen2(seed=0, vocab_size=len(target_tok)))
    draft = HFBackend(tiny_llama(seed=1, vocab_size=len(draft_tok)))
    drafter = Recorder(CrossTokenizerDrafter(draft, draft_tok, target_tok, sampling, target.vocab_size))
    ids = HFTextTokenizer(target_tok).encode("the cat")
    config = DecodeConfig(max_new_tokens=12, gamma=3, sampling=sampling, seed=3)
    done = _finished(speculative_decode(target, drafter, ids, config, HFCodec(target_tok)))
    assert len(done.token_ids) == 12
    table_t = HFTextTokenizer(target_tok).token_bytes()
    for draft_out in drafter.drafts:
        if draft_out.tokens.numel():
            assert draft_out.probs is not None
            torch.testing.assert_close(draft_out.probs.sum(-1), torch.ones(len(draft_out.tokens)))
            for t, pieces in zip(draft_out.tokens.tolist(), draft_out.pieces, strict=True):
                assert table_t[t] == pieces[0].encode() or "\ufffd" in pieces[0]


def test_token_bytes_of_a_sentencepiece_style_tokenizer() -> None:
    """Metaspace pieces ("▁the") and byte-fallback pieces ("<0xC3>") map to the bytes they stand for."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {
        "<unk>": 0,
        "<0xC3>": 1,
        "<0xA9>": 2,
        "▁": 3,
        "t": 4,
        "h": 5,
        "e": 6,
        "▁t": 7,
        "▁th": 8,
        "▁the": 9,
    }
    merges = [("▁", "t"), ("▁t", "h"), ("▁th", "e")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    hf = HFTextTokenizer(PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>"))
    table = hf.token_bytes()
    assert table[9] == b" the" and table[1] == b"\xc3" and table[4] == b"t"
    ids = hf.encode("the é")
    assert b"".join(table[i] for i in ids) == " the é".encode()  # Metaspace adds the leading space
