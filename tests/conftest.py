from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: for tiny models on a busy 2-core machine two OpenMP threads wait on
    each other for a core (measured: 30 tokens of a tiny model in 0.2 s on one thread against 6 s
    on two; a 2-row softmax 3 µs against 15 ms). Use with ``pytest.mark.usefixtures``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
