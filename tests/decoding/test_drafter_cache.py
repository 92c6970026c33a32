"""The model drafter's cache follows the committed context exactly: every draft is what the draft
model says for that context from scratch, through prefill, rollback after rejections and catch-up.

Rejection sampling stays lossless whatever the draft proposes, so distribution tests cannot see a
drafter that drafts from stale logits or a desynchronised cache; this test can.
"""

from __future__ import annotations

import torch

from specviz.decoding.backends import TableLM
from specviz.decoding.drafters import ModelDrafter
from specviz.decoding.sampling import SamplingConfig


def _greedy_chain(model: TableLM, context: list[int], k: int) -> list[int]:
    out: list[int] = []
    for _ in range(k):
        out.append(int(model.logits_for(context + out).argmax()))
    return out


def test_every_draft_is_the_draft_models_own_continuation_of_the_committed_context() -> None:
    vocab = 6
    model = TableLM(vocab, order=3, seed=4)
    reference = TableLM(vocab, order=3, seed=4)  # same table, never fed: answers from scratch
    drafter = ModelDrafter(model, SamplingConfig(temperature=0.0), target_vocab_size=vocab)
    gen = torch.Generator().manual_seed(0)
    rng = torch.Generator().manual_seed(1)
    context = [1, 2, 3, 0, 4]
    drafter.prefill(context)
    for _ in range(40):
        k = int(torch.randint(0, 5, (1,), generator=rng))
        draft = drafter.propose(context, k, gen).tokens.tolist()
        assert draft == _greedy_chain(reference, context, k)
        if k:  # (a plain step, k = 0, leaves the cache alone: the next proposal rolls it back)
            # The draft's cache holds the committed context and the drafts fed so far, nothing stale.
            assert model._tokens == (context + draft)[: len(model._tokens)]
            assert len(model._tokens) == len(context) + k - 1
        # Commit an accepted prefix plus a correction, as the decoder would.
        n = int(torch.randint(0, k + 1, (1,), generator=rng))
        correction = int(torch.randint(0, vocab, (1,), generator=rng))
        drafter.feedback(n, k)
        context = context + draft[:n] + [correction]
