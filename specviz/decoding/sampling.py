"""Logits -> probabilities, applied identically to the draft and the target.

Losslessness needs ``draft_probs`` to be *exactly* the distribution a drafted token was drawn
from, and ``target_probs`` to be the distribution plain decoding would sample from. Both go
through :func:`to_probs` with the same :class:`SamplingConfig`, so temperature, top-k and top-p can
never differ between the two (drafting at T=0.8 and scoring at T=1.0, say, would silently break
losslessness).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.0  # 0 means greedy: a one-hot distribution on the argmax
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def to_probs(logits: torch.Tensor, config: SamplingConfig) -> torch.Tensor:
    """Turn logits ``[n, vocab]`` into probabilities ``[n, vocab]`` (float32).

    Greedy gives a one-hot row on ``argmax`` (first index on ties, like ``torch.argmax``), so a
    greedy draft has draft_prob 1 for the token it proposes.

    >>> to_probs(torch.tensor([[0.0, 2.0, 1.0]]), SamplingConfig(temperature=0)).tolist()
    [[0.0, 1.0, 0.0]]
    """
    logits = logits.float()  # [n, vocab]
    if config.greedy:
        probs = torch.zeros_like(logits)
        probs.scatter_(-1, logits.argmax(dim=-1, keepdim=True), 1.0)
        return probs
    logits = logits / config.temperature
    if config.top_k is not None and config.top_k < logits.shape[-1]:
        kth = torch.topk(logits, config.top_k, dim=-1).values[..., -1:]  # [n, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if config.top_p is not None and config.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # [n, vocab]
        sorted_probs = sorted_logits.softmax(dim=-1)
        # Keep the smallest prefix whose mass reaches top_p: drop a token when the mass *before*
        # it already reaches top_p. The most likely token is always kept.
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        drop_sorted = mass_before >= config.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits.softmax(dim=-1)


def sample(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Draw one token per row of ``probs`` ``[n, vocab]`` -> ``[n]`` (int64), by inverting the CDF.

    One uniform per row against a float64 cumulative sum: exact to ~1e-16 per token, and on a
    CPU about 10x cheaper than ``torch.multinomial`` over a 152k vocabulary (3.3 ms a row), a cost
    every drafted token pays in sampling mode. Tokens of probability 0 are never drawn: the
    first cumulative value above the draw always belongs to a token with mass.
    """
    cdf = probs.double().cumsum(dim=-1)  # [n, vocab]
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device, dtype=torch.float64)
    draw = u * cdf[:, -1:]  # [n, 1], in [0, total): rows need not be normalised
    return torch.searchsorted(cdf, draw, right=True).squeeze(-1).clamp_(max=probs.shape[-1] - 1)
