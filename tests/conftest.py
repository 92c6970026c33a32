from __future__ import annotations

import pytest
import torch

from specviz.decoding.backends import TableLM


class IdCodec:
    """Token text for toy vocabularies: token 3 reads as "<3>"."""

    def token_text(self, token_id: int) -> str:
        return f"<{token_id}>"

    def decode(self, token_ids: list[int]) -> str:
        return "".join(self.token_text(t) for t in token_ids)


@pytest.fixture(autouse=True)
def _private_cost_tables(tmp_path_factory, monkeypatch) -> None:
    """Cost tables measured for automatic γ go to a temporary folder, never the user's cache."""
    monkeypatch.setenv("SPECVIZ_COSTS", str(tmp_path_factory.mktemp("costs")))


@pytest.fixture
def codec() -> IdCodec:
    return IdCodec()


def exact_sequence_distribution(
    model: TableLM, prompt: list[int], n_tokens: int, to_probs_fn
) -> dict[tuple[int, ...], float]:
    """Exact probability of every continuation of length ``n_tokens`` under ``model``."""
    dist: dict[tuple[int, ...], float] = {(): 1.0}
    for _ in range(n_tokens):
        nxt: dict[tuple[int, ...], float] = {}
        for seq, prob in dist.items():
            probs = to_probs_fn(model.logits_for(prompt + list(seq)).unsqueeze(0))[0]
            for tok, p in enumerate(probs.tolist()):
                if p > 0:
                    nxt[(*seq, tok)] = prob * p
        dist = nxt
    return dist


@pytest.fixture
def cpu_generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
