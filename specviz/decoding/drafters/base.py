"""The drafter contract: what every drafter in this package implements.

Contract (two methods and a hook, like transformers' CandidateGenerator):
``prefill(context)`` warms up on the prompt, ``propose(context, k, generator)`` returns up to ``k``
tokens with the distributions they were drawn from, ``feedback(n_accepted, n_drafted)`` tells the
drafter how its last proposal fared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class Draft:
    tokens: torch.Tensor  # [k] int64, k may be smaller than asked (even 0)
    probs: torch.Tensor | None  # [k, target_vocab]: what each token was drawn from; None = one-hot
    # Cross-tokenizer drafters: per proposed target token, the draft tokens' text it came from.
    pieces: tuple[tuple[str, ...], ...] | None = None
    # How many tokens the drafter aimed for when it chose fewer than the decoder allowed
    # (automatic γ, see drafters/paced.py); None = the decoder's k.
    asked: int | None = None
    # Greedy drafts from a model: the draft's temperature-1 probability of each token ``[k]``
    # (``probs`` is one-hot there), for the events; None when not known.
    softmax: torch.Tensor | None = None


class Drafter(Protocol):
    name: str

    def prefill(self, context: list[int]) -> None: ...

    def propose(self, context: list[int], k: int, generator: torch.Generator) -> Draft: ...

    def feedback(self, n_accepted: int, n_drafted: int) -> None: ...

    def synchronize(self) -> None: ...


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
