"""Every backend: forward / truncate / forward must equal a fresh forward of the same tokens."""

from __future__ import annotations

import pytest
import torch

from specviz.decoding.backends import HFBackend, TableLM
from tests.support.tiny_models import tiny_llama, tiny_qwen2


def _backends():
    return {
        "qwen2": lambda: HFBackend(tiny_qwen2(seed=0)),
        "llama": lambda: HFBackend(tiny_llama(seed=1)),
        "table": lambda: TableLM(vocab_size=50, order=3, seed=2),
    }


@pytest.mark.parametrize("name", ["qwen2", "llama", "table"])
def test_forward_truncate_forward_equals_fresh_forward(name: str) -> None:
    make = _backends()[name]
    gen = torch.Generator().manual_seed(0)
    prefix = torch.randint(0, 50, (9,), generator=gen)
    wrong = torch.randint(0, 50, (5,), generator=gen)
    right = torch.randint(0, 50, (4,), generator=gen)

    rolled = make()
    rolled.forward(prefix)
    rolled.forward(wrong)  # drafted tokens that get rejected
    rolled.truncate(9)
    assert rolled.length == 9
    got = rolled.forward(right)  # [4, vocab]

    fresh = make()
    expected = fresh.forward(torch.cat([prefix, right]))[-4:]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert rolled.length == fresh.length == 13


@pytest.mark.parametrize("name", ["qwen2", "llama"])
def test_incremental_forward_matches_one_shot_and_keep(name: str) -> None:
    make = _backends()[name]
    tokens = torch.arange(3, 15)
    one_shot = make().forward(tokens)  # [12, vocab]
    inc = make()
    rows = [inc.forward(tokens[:5]), inc.forward(tokens[5:6]), inc.forward(tokens[6:], keep=2)]
    torch.testing.assert_close(rows[0], one_shot[:5], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(rows[1], one_shot[5:6], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(rows[2], one_shot[-2:], atol=1e-5, rtol=1e-4)


def test_truncate_out_of_range_is_refused() -> None:
    backend = HFBackend(tiny_qwen2(seed=0))
    backend.forward(torch.arange(4))
    with pytest.raises(ValueError):
        backend.truncate(5)
    backend.reset()
    assert backend.length == 0
