"""Causal language models behind a small protocol that hides the KV cache.

A backend holds the tokens it has seen in its cache. ``forward(tokens)`` appends ``tokens`` and
returns their logits; ``truncate(length)`` rolls the cache back (after a rejection) by moving the
write position, never by re-encoding the context (``DynamicCache.crop`` for transformers).
"""

from __future__ import annotations

import inspect
from typing import Protocol

import torch


class CausalLM(Protocol):
    vocab_size: int
    device: torch.device

    @property
    def length(self) -> int:
        """Tokens currently held in the cache."""
        ...

    def forward(self, tokens: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        """Append ``tokens`` ``[n]`` and return logits ``[keep or n, vocab]`` of the last positions."""
        ...

    def truncate(self, length: int) -> None:
        """Forget everything after the first ``length`` tokens."""
        ...

    def reset(self) -> None: ...

    def synchronize(self) -> None:
        """Wait for queued device work, so a clock read measures the work itself."""
        ...


class HFBackend:
    """A transformers causal LM with a DynamicCache that supports rollback."""

    def __init__(self, model: torch.nn.Module, vocab_size: int | None = None) -> None:
        from transformers import DynamicCache

        self.model = model.eval()
        self._cache_cls = DynamicCache
        self.device = next(model.parameters()).device
        # Padded embedding rows (Qwen pads its vocab to a multiple of 128) stay part of the
        # distribution: the target's probabilities must be the ones plain decoding samples from.
        self.vocab_size = int(vocab_size or model.config.vocab_size)
        self._cache = DynamicCache(config=model.config)
        self._length = 0
        # transformers 5.x renamed the forward argument ``past_key_values`` to ``cache``.
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    @property
    def length(self) -> int:
        return self._length

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        n = int(tokens.shape[0])
        if n == 0:
            raise ValueError("forward needs at least one token")
        keep = n if keep is None else keep
        input_ids = tokens.to(self.device).view(1, n)  # [1, n]
        positions = torch.arange(self._length, self._length + n, device=self.device)
        out = self.model(
            input_ids=input_ids,
            position_ids=positions.view(1, n),
            use_cache=True,
            logits_to_keep=keep,
            **{self._cache_arg: self._cache},
        )
        self._length += n
        return out.logits[0, -keep:, : self.vocab_size]  # [keep, vocab]

    def truncate(self, length: int) -> None:
        if length < 0 or length > self._length:
            raise ValueError(f"cannot truncate a cache of {self._length} tokens to {length}")
        if length < self._length:
            # A negative argument means "remove this many tokens" in every transformers version
            # since 4.38; 5.x refuses the older absolute-length form.
            self._cache.crop(length - self._length)
            self._length = length

    def reset(self) -> None:
        self._cache = self._cache_cls(config=self.model.config)
        self._length = 0

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()


class TableLM:
    """A tiny exact "model" for tests: logits are a fixed function of the last ``order`` tokens.

    Its cache is the list of tokens seen, so rollback bugs in the decoder show up as wrong
    distributions, and every distribution is known exactly for analytic checks.
    """

    def __init__(self, vocab_size: int, order: int, seed: int, sharpness: float = 2.0) -> None:
        self.vocab_size = vocab_size
        self.order = order
        self.device = torch.device("cpu")
        gen = torch.Generator().manual_seed(seed)
        self._table = sharpness * torch.randn(vocab_size**order, vocab_size, generator=gen)  # [V^order, V]
        self._tokens: list[int] = []
        self.forward_calls = 0

    @property
    def length(self) -> int:
        return len(self._tokens)

    def logits_for(self, context: list[int]) -> torch.Tensor:
        """Logits ``[vocab]`` for the token that follows ``context``."""
        key = 0
        for t in ([0] * self.order + context)[-self.order :]:
            key = key * self.vocab_size + t
        return self._table[key]

    def forward(self, tokens: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        self.forward_calls += 1
        rows = []
        for t in tokens.tolist():
            self._tokens.append(int(t))
            rows.append(self.logits_for(self._tokens))
        out = torch.stack(rows)  # [n, vocab]
        return out if keep is None else out[-keep:]

    def truncate(self, length: int) -> None:
        if length < 0 or length > len(self._tokens):
            raise ValueError(f"cannot truncate a cache of {len(self._tokens)} tokens to {length}")
        del self._tokens[length:]

    def reset(self) -> None:
        self._tokens = []

    def synchronize(self) -> None:
        pass
