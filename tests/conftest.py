from __future__ import annotations

import pytest
import torch


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


@pytest.fixture
def cpu_generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
