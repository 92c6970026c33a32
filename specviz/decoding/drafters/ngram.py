"""Prompt lookup: a model-free drafter that copies from the context."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from specviz.decoding.drafters.base import Draft


class NgramDrafter:
    """Prompt lookup: copy what followed the latest earlier occurrence of the context's tail.

    Deterministic, so its draft distribution is one-hot (``probs=None``). Worked example with
    ``max_ngram=2``: context ``[5, 6, 7, 1, 5, 6]`` ends with ``[5, 6]``, seen at position 0 and
    followed by ``[7, 1, 5, 6]``, so ``propose(context, 3)`` drafts ``[7, 1, 5]``.
    """

    name = "ngram"

    def __init__(self, max_ngram: int = 3, min_ngram: int = 1, device: torch.device | None = None) -> None:
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError("need 1 <= min_ngram <= max_ngram")
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram
        self.device = device or torch.device("cpu")

    def continuations(self, context: list[int], k: int) -> Iterator[list[int]]:
        """What followed each earlier occurrence of the context's tail (up to ``k`` tokens), best
        first: longer matches first, then the latest occurrence first (recent text is the most
        likely to be repeated next). Lazy: callers stop when they have enough."""
        for n in range(min(self.max_ngram, len(context) - 1), self.min_ngram - 1, -1):
            tail = context[-n:]
            for start in range(len(context) - n - 1, -1, -1):
                if context[start : start + n] == tail:
                    follow = context[start + n : start + n + k]
                    if follow:
                        yield follow

    def lookup(self, context: list[int], k: int) -> list[int]:
        return next(self.continuations(context, k), [])

    def prefill(self, context: list[int]) -> None:
        pass

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> Draft:
        tokens = self.lookup(context, k) if k > 0 else []
        return Draft(torch.tensor(tokens, dtype=torch.long, device=self.device), None)

    def feedback(self, n_accepted: int, n_drafted: int) -> None:
        pass

    def synchronize(self) -> None:
        pass
