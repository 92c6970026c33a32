"""Drafting with a model whose tokenizer differs from the target's.

The drafter keeps its own token sequence and KV cache in the *draft* vocabulary; everything it hands
to the decoder is in the *target* vocabulary, so the decoder and :func:`acceptance.verify` run
unchanged. Two ways to cross the vocabularies, chosen by ``method``:

``"text"`` (greedy decoding; transformers' "universal assisted generation")
    Draft ``k`` tokens greedily in the draft vocabulary, decode them to text and re-tokenise that
    text for the target with a look-behind window: re-encode the last few committed target tokens'
    text plus the new text, and keep what follows the prefix that re-encodes identically (so
    ``"foo" + "():\\n"`` becomes the target's own ``"():\\n"`` token rather than ``"():" + "\\n"``). The
    proposal is a deterministic function of the context, so it is returned as one-hot
    (``probs=None``): greedy verification then reproduces the target's greedy output exactly.

``"tli"`` (sampling; token-level intersection, Timor et al., ICML 2025, "Accelerating LLM Inference
with Lossless Speculative Decoding Algorithms for Heterogeneous Vocabularies")
    Restrict the draft model's next-token logits to draft tokens whose byte string is also one
    target token, apply the run's temperature/top-k/top-p to what is left (``to_probs`` renormalises),
    sample a draft token, and propose the target token with the same bytes. ``probs`` is that
    distribution pushed into target-vocabulary space (``[k, target_vocab]``; a target token's mass is
    the sum over the draft tokens that map to it; zero outside the intersection). It is lossless
    because standard speculative sampling is lossless for *any* draft distribution, provided
    ``probs`` is exactly the distribution the proposed token was drawn from — which it is by
    construction — and the target's distribution is untouched. Restricting the draft only costs
    acceptance (the target can never be offered a token outside the intersection), never
    correctness.

Why there is no sampling mode for ``"text"``: a sampled draft re-tokenised through text has no
known probability in the target vocabulary (several draft paths spell the same target tokens), so
rejection sampling against it would be lossy. Asking for it raises ``ValueError``.

Keeping the draft model in sync (target -> draft): after verification the committed target tokens'
text is re-encoded for the draft from an *anchor* — a (target length, draft length) pair where both
prefixes spell the same text — a few draft tokens back (the look-behind, so tokens that now merge
across the old boundary re-form); the draft cache is rolled back to the longest common prefix of
its old and new token sequences and only the rest is fed. Text that ends inside a multi-byte
character cannot cross through ``str``: the drafter then proposes nothing for one iteration and the
target's own token completes the character.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol

import torch

from specviz.decoding.backends import CausalLM
from specviz.decoding.drafters.base import Draft, common_prefix
from specviz.decoding.sampling import SamplingConfig, sample, to_probs

Method = Literal["auto", "text", "tli"]
REPLACEMENT = "\ufffd"  # what a decoder emits for bytes that do not (yet) form a character


class TextTokenizer(Protocol):
    """What the cross-tokenizer drafter needs of a tokenizer (``HFTextTokenizer`` wraps transformers')."""

    @property
    def prefix_ids(self) -> list[int]:
        """Special tokens the tokenizer puts before any text (a BOS), possibly empty."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token strings in it are recognised, no BOS is added."""
        ...

    def decode(self, token_ids: list[int]) -> str:
        """Text of ``token_ids``, special tokens kept, no clean-up of spaces."""
        ...

    def token_bytes(self) -> list[bytes | None]:
        """Per token id, the bytes it always stands for (None: no fixed bytes, e.g. padding rows)."""
        ...

    def __len__(self) -> int:
        """Number of token ids that have text (embedding rows past it are padding)."""
        ...


def _byte_level_decoder_table() -> dict[str, int]:
    """GPT-2's byte-level alphabet inverted: printable stand-in character -> byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars, strict=True)}


class HFTextTokenizer:
    """A transformers tokenizer seen through :class:`TextTokenizer`."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @cached_property
    def prefix_ids(self) -> list[int]:
        with_special = list(self.tokenizer("a", add_special_tokens=True)["input_ids"])
        plain = list(self.tokenizer("a", add_special_tokens=False)["input_ids"])
        idx = _find(with_special, plain)
        return with_special[:idx] if idx is not None else []

    def __len__(self) -> int:
        return len(self.tokenizer)

    def encode(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(
            list(token_ids), skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def _decoder_kind(self) -> str:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return "other"
        decoder = json.dumps(json.loads(backend.to_str()).get("decoder"))
        if '"ByteLevel"' in decoder:
            return "byte_level"
        if '"ByteFallback"' in decoder or "\u2581" in decoder:
            return "sentencepiece"
        return "other"

    def token_bytes(self) -> list[bytes | None]:
        n = len(self.tokenizer)
        raw = self.tokenizer.convert_ids_to_tokens(list(range(n)))
        added = {int(i): str(t) for i, t in self.tokenizer.added_tokens_decoder.items()}
        kind = self._decoder_kind()
        table = _byte_level_decoder_table()
        out: list[bytes | None] = []
        for i, piece in enumerate(raw):
            if i in added:
                out.append(added[i].encode("utf-8"))
            elif piece is None:
                out.append(None)
            elif kind == "byte_level":
                try:
                    out.append(bytes(table[ch] for ch in piece))
                except KeyError:
                    out.append(None)
            elif (
                kind == "sentencepiece"
                and len(piece) == 6
                and piece.startswith("<0x")
                and piece.endswith(">")
            ):
                out.append(bytes([int(piece[3:5], 16)]))
            elif kind == "sentencepiece":
                out.append(piece.replace("\u2581", " ").encode("utf-8"))
            else:
                text = self.decode([i])
                out.append(None if REPLACEMENT in text else text.encode("utf-8"))
        return out


def as_text_tokenizer(tokenizer: Any) -> TextTokenizer:
    """Accept a :class:`TextTokenizer` as is and wrap a transformers tokenizer."""
    if hasattr(tokenizer, "token_bytes") and hasattr(tokenizer, "prefix_ids"):
        return tokenizer
    return HFTextTokenizer(tokenizer)


def _find(haystack: list[int], needle: list[int]) -> int | None:
    """Start of ``needle`` at the end of ``haystack`` (None if it is not its suffix)."""
    start = len(haystack) - len(needle)
    return start if start >= 0 and haystack[start:] == needle else None


def text_after(tokenizer: TextTokenizer, ids: list[int], start: int, end: int | None = None) -> str:
    """Text that ``ids[start:end]`` adds after ``ids[:start]``.

    Decoded with a few tokens of left context and the context's own text cut off, because some
    decoders read a token differently at the start of a text (SentencePiece drops the leading
    space of "▁the").
    """
    end = len(ids) if end is None else end
    left = max(0, start - 3)
    head = tokenizer.decode(ids[left:start])
    full = tokenizer.decode(ids[left:end])
    return full[len(head) :] if full.startswith(head) else tokenizer.decode(ids[start:end])


def _suffix_boundaries(
    tokenizer: TextTokenizer, ids: list[int], lo: int, end: int, width: int
) -> dict[int, int]:
    """Token boundaries ``j`` among the last ``width`` of ``ids[lo:end]``, keyed by the length of the text
    ``ids[j:end]`` spells; boundaries inside a multi-byte character are left out."""
    marks: dict[int, int] = {}
    for j in range(max(lo, end - width), end):
        if j > lo and tokenizer.decode(ids[max(lo, j - 3) : j]).endswith(REPLACEMENT):
            continue
        suffix = text_after(tokenizer, ids, j, end)
        if not suffix.startswith(REPLACEMENT):
            marks[len(suffix)] = j
    return marks


def retokenize_continuation(
    tokenizer: TextTokenizer, committed: list[int], new_text: str, look_behind: int
) -> list[int]:
    """Token ids that continue ``committed`` with ``new_text``, tokenised as the tokenizer would.

    Re-encodes the text of the last ``L`` committed tokens plus ``new_text`` and strips the prefix
    that re-encodes identically, trying ``L = look_behind`` down to 1; if no window re-encodes to
    itself (``new_text`` would merge into a committed token, which cannot be taken back), it
    encodes ``new_text`` alone. Worked example (byte-level BPE where ``"():\\n"`` is one token):
    committed ``[..., "Ġfoo"]`` and new text ``"():\\n    return"`` give ``["():Ċ", "ĠĠĠ", "Ġreturn"]``,
    not the ``"():"`` a draft tokenizer may have used.
    """
    for size in range(min(look_behind, len(committed)), 0, -1):
        window = committed[-size:]
        window_text = tokenizer.decode(window)
        if REPLACEMENT in window_text:
            continue  # the window starts or ends inside a character: its bytes cannot round-trip
        ids = tokenizer.encode(window_text + new_text)
        if ids[:size] == window and len(ids) > size:
            return ids[size:]
    return tokenizer.encode(new_text)


def vocab_intersection(
    draft: TextTokenizer, target: TextTokenizer, draft_vocab_size: int, target_vocab_size: int
) -> torch.Tensor:
    """``[draft_vocab]`` int64: the target id with the same bytes as each draft id, or -1.

    Ids past a tokenizer's length (embedding rows padded to a round size) have no text and map to
    -1. When several target tokens share bytes (an added token and a plain one), the lowest id wins.
    """
    target_ids: dict[bytes, int] = {}
    for tid, piece in enumerate(target.token_bytes()[:target_vocab_size]):
        if piece:
            target_ids.setdefault(piece, tid)
    mapping = torch.full((draft_vocab_size,), -1, dtype=torch.long)
    for did, piece in enumerate(draft.token_bytes()[:draft_vocab_size]):
        if piece and piece in target_ids:
            mapping[did] = target_ids[piece]
    return mapping


@dataclass(frozen=True)
class CrossDraft(Draft):
    """A draft in target ids, with the draft-vocabulary pieces each target token came from."""

    # Per proposed target token, the text of every draft token that overlaps it (a draft token that
    # straddles a target boundary appears under both target tokens).
    pieces: tuple[tuple[str, ...], ...] = ()


class CrossTokenizerDrafter:
    """A draft model with its own tokenizer, satisfying the ``Drafter`` protocol (see module doc).

    ``context`` is always in target ids (prompt + committed). ``backend`` is the draft model (e.g.
    ``HFBackend``); ``target_vocab_size`` is the width of the target's probability rows.
    """

    def __init__(
        self,
        backend: CausalLM,
        draft_tokenizer: Any,
        target_tokenizer: Any,
        sampling: SamplingConfig,
        target_vocab_size: int,
        method: Method = "auto",
        look_behind: int = 4,
        vocab_map: torch.Tensor | None = None,
    ) -> None:
        if method == "auto":
            method = "text" if sampling.greedy else "tli"
        if method == "text" and not sampling.greedy:
            raise ValueError(
                "cross-tokenizer drafting through text is only lossless for greedy decoding: a sampled "
                "draft re-tokenised for the target has no known draft probability, so rejection sampling "
                "against it would change the output distribution. Use method='tli' (token-level "
                "intersection) for temperature > 0."
            )
        if method not in ("text", "tli"):
            raise ValueError(f"unknown cross-tokenizer method {method!r}: use auto, text or tli")
        if look_behind < 1:
            raise ValueError(f"look_behind must be >= 1, got {look_behind}")
        self.backend = backend
        self.draft_tokenizer = as_text_tokenizer(draft_tokenizer)
        self.target_tokenizer = as_text_tokenizer(target_tokenizer)
        self.sampling = sampling
        self.target_vocab_size = target_vocab_size
        self.method: Literal["text", "tli"] = method
        self.look_behind = look_behind
        self.name = f"cross-{method}"

        draft_vocab = backend.vocab_size
        if method == "tli":
            # Building the map reads both vocabularies (about a second for 150k tokens): pass
            # ``vocab_map`` from an earlier drafter on the same pair to skip it.
            if vocab_map is None:
                vocab_map = vocab_intersection(
                    self.draft_tokenizer, self.target_tokenizer, draft_vocab, target_vocab_size
                )
            if vocab_map.shape != (draft_vocab,):
                raise ValueError(f"vocab_map must have shape ({draft_vocab},), got {tuple(vocab_map.shape)}")
            allowed = vocab_map >= 0  # [draft_vocab]
            if not bool(allowed.any()):
                raise ValueError(
                    "token-level intersection needs tokens whose bytes exist in both vocabularies; "
                    "these two tokenizers share none"
                )
        else:
            vocab_map = torch.full((draft_vocab,), -1, dtype=torch.long)
            # Embedding rows past the tokenizer (padding) have no text to translate.
            allowed = torch.arange(draft_vocab) < len(self.draft_tokenizer)
        self.vocab_map = vocab_map.cpu()  # [draft_vocab]: target id with the same bytes, or -1
        self._blocked = ~allowed.to(backend.device)  # [draft_vocab]
        shared = self.vocab_map >= 0
        self._shared_draft = torch.nonzero(shared).squeeze(-1).to(backend.device)  # [n_shared]
        self._shared_target = self.vocab_map[shared].to(backend.device)  # [n_shared]

        self._draft_ids: list[int] = []  # what the draft conditions on: synced text + own drafts
        self._synced = 0  # draft ids that spell the committed target text
        self._target_ids: list[int] = []  # the target context at the last sync
        self._anchors: list[tuple[int, int]] = []  # (target len, draft len) spelling the same text
        self._complete = True  # the last sync reached the end of the context

    @property
    def draft_context(self) -> list[int]:
        """Draft ids that spell the committed target text after the last sync."""
        return self._draft_ids[: self._synced]

    # -- keeping the draft in sync with the committed target tokens -------------------------------

    def prefill(self, context: list[int]) -> None:
        self.backend.reset()
        target_prefix = self.target_tokenizer.prefix_ids
        # The target's BOS is not text: the draft gets its own instead.
        start = len(target_prefix) if context[: len(target_prefix)] == target_prefix else 0
        self._draft_ids = list(self.draft_tokenizer.prefix_ids)
        self._synced = len(self._draft_ids)
        self._target_ids = list(context[:start])
        self._anchors = [(start, self._synced)]
        self._sync(context)

    def _clean_end(self, context: list[int]) -> int:
        """Length of the longest prefix of ``context`` whose text does not end inside a character."""
        floor = self._anchors[0][0]
        end = len(context)
        for _ in range(4):  # a UTF-8 character has at most 4 bytes, so at most 3 tokens to back off
            if end <= floor:
                break
            if not self.target_tokenizer.decode(context[max(floor, end - 8) : end]).endswith(REPLACEMENT):
                break
            end -= 1
        return end

    def _sync(self, context: list[int]) -> torch.Tensor | None:
        """Bring the draft up to the committed ``context``; logits ``[1, draft_vocab]`` or None."""
        same_target = common_prefix(self._target_ids, context)
        end = self._clean_end(context)
        anchors = [a for a in self._anchors if a[0] <= min(same_target, end)] or self._anchors[:1]
        latest = anchors[-1]
        # Re-encode from a few draft tokens back, so a token that now merges across the boundary
        # (" fo" + "o" -> " foo") is re-formed the way the draft tokenizer would write it.
        base = next((a for a in reversed(anchors) if latest[1] - a[1] >= self.look_behind), anchors[0])
        tail = text_after(self.target_tokenizer, context, base[0], end) if end > base[0] else ""
        new_ids = self._draft_ids[: base[1]] + (self.draft_tokenizer.encode(tail) if tail else [])

        # Every place in the re-encoded stretch where a target and a draft token boundary meet is a
        # new anchor, so the next look-behind can start close to the end instead of at the prompt.
        width = 4 * self.look_behind
        target_marks = _suffix_boundaries(self.target_tokenizer, context, base[0], end, width)
        draft_marks = _suffix_boundaries(self.draft_tokenizer, new_ids, base[1], len(new_ids), width)
        aligned = sorted(
            (target_marks[n], draft_marks[n]) for n in target_marks.keys() & draft_marks.keys() if n > 0
        )
        earlier = [a for a in anchors if a[0] <= base[0] and a[1] <= base[1]]
        # Bounded history; the first anchor (the start of the text) is always kept as a fallback.
        self._anchors = (
            earlier[:1]
            + earlier[1:][-4 * width :]
            + [a for a in aligned if a[0] > base[0] and a[1] > base[1]]
            + [(end, len(new_ids))]
        )
        self._target_ids = list(context[:end])
        self._complete = end == len(context)

        keep = min(common_prefix(self._draft_ids[: self.backend.length], new_ids), len(new_ids) - 1)
        self._draft_ids = new_ids
        self._synced = len(new_ids)
        if not new_ids:
            self.backend.reset()
            return None
        self.backend.truncate(max(keep, 0))
        fresh = torch.tensor(new_ids[max(keep, 0) :], dtype=torch.long, device=self.backend.device)
        return self.backend.forward(fresh, keep=1)  # [1, draft_vocab]

    # -- drafting ---------------------------------------------------------------------------------

    def _empty(self) -> CrossDraft:
        return CrossDraft(torch.empty(0, dtype=torch.long, device=self.backend.device), None, ())

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> CrossDraft:
        if k == 0:
            return self._empty()
        logits = self._sync(context)
        if logits is None or not self._complete:
            return self._empty()
        if self.method == "tli":
            return self._propose_tli(logits, k, generator)
        return self._propose_text(context, logits, k)

    def _step(self, token: int, logits: torch.Tensor, last: bool) -> torch.Tensor:
        self._draft_ids.append(token)
        if last:  # the last draft is fed at the next sync, if it survives
            return logits
        return self.backend.forward(torch.tensor([token], device=self.backend.device), keep=1)

    def _propose_tli(self, logits: torch.Tensor, k: int, generator: torch.Generator) -> CrossDraft:
        tokens: list[int] = []
        rows: list[torch.Tensor] = []
        pieces: list[tuple[str, ...]] = []
        for i in range(k):
            masked = logits.float().masked_fill(self._blocked, float("-inf"))  # [1, draft_vocab]
            draft_probs = to_probs(masked, self.sampling)  # [1, draft_vocab]
            token = (
                int(draft_probs.argmax()) if self.sampling.greedy else int(sample(draft_probs, generator)[0])
            )
            row = torch.zeros(1, self.target_vocab_size, device=draft_probs.device)  # [1, target_vocab]
            row.index_add_(1, self._shared_target, draft_probs[:, self._shared_draft])
            tokens.append(int(self.vocab_map[token]))
            rows.append(row)
            pieces.append((self.draft_tokenizer.decode([token]),))
            logits = self._step(token, logits, last=i == k - 1)
        return CrossDraft(
            torch.tensor(tokens, dtype=torch.long, device=self.backend.device), torch.cat(rows), tuple(pieces)
        )

    def _propose_text(self, context: list[int], logits: torch.Tensor, k: int) -> CrossDraft:
        drafted: list[int] = []
        for i in range(k):
            token = int(logits.float().masked_fill(self._blocked, float("-inf")).argmax())
            drafted.append(token)
            logits = self._step(token, logits, last=i == k - 1)

        # Text after each draft token; drop trailing tokens that end inside a character.
        ids = self.draft_context + drafted
        texts = [text_after(self.draft_tokenizer, ids, self._synced, self._synced + j + 1) for j in range(k)]
        while texts and texts[-1].endswith(REPLACEMENT):
            texts.pop()
        if not texts or not texts[-1]:
            return self._empty()
        text = texts[-1]
        proposed = retokenize_continuation(self.target_tokenizer, context, text, self.look_behind)[:k]
        return CrossDraft(
            torch.tensor(proposed, dtype=torch.long, device=self.backend.device),
            None,
            self._pieces(context, proposed, text, [len(t) for t in texts]),
        )

    def _pieces(
        self, context: list[int], proposed: list[int], text: str, draft_ends: list[int]
    ) -> tuple[tuple[str, ...], ...]:
        """For each proposed target token, the drafted text pieces that overlap its characters."""
        draft_spans = list(zip([0, *draft_ends[:-1]], draft_ends, strict=True))
        out: list[tuple[str, ...]] = []
        start = 0
        for j in range(len(proposed)):
            end = len(
                text_after(self.target_tokenizer, context + proposed, len(context), len(context) + j + 1)
            )
            stop = max(end, start + 1)  # a token holding part of a character still shows its piece
            out.append(tuple(text[a:b] for a, b in draft_spans if a < stop and b > start))
            start = end
        return tuple(out)

    def feedback(self, n_accepted: int, n_drafted: int) -> None:
        pass

    def synchronize(self) -> None:
        self.backend.synchronize()
