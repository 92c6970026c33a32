"""Packed (oneDNN) Linear layers compute what nn.Linear computes, for any number of rows."""

import pytest
import torch
from torch import nn

from specviz.models.packing import PackedLinear, can_pack, pack_linear_layers

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [1, 2, 3, 9])
def test_packed_linear_matches_dense(bias: bool, rows: int) -> None:
    gen = torch.Generator().manual_seed(rows)
    dense = nn.Linear(48, 80, bias=bias)
    with torch.no_grad():
        dense.weight.copy_(torch.randn(80, 48, generator=gen))
        if bias:
            dense.bias.copy_(torch.randn(80, generator=gen))
    x = torch.randn(2, rows, 48, generator=gen)  # [batch, seq, in]
    packed = PackedLinear(dense)
    with torch.inference_mode():
        got = packed(x)
        want = dense(x)
    assert got.shape == (2, rows, 80)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_pack_replaces_only_float32_linears_and_model_output_is_unchanged() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Sequential(nn.Linear(32, 8)), nn.LayerNorm(8))
    x = torch.randn(5, 16)
    with torch.inference_mode():
        before = model(x)
        assert can_pack(model)
        assert pack_linear_layers(model) == 2
        after = model(x)
    assert isinstance(model[0], PackedLinear) and isinstance(model[2][0], PackedLinear)
    assert isinstance(model[3], nn.LayerNorm)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_bfloat16_models_are_not_packed() -> None:
    model = nn.Sequential(nn.Linear(4, 4)).to(torch.bfloat16)
    assert not can_pack(model)
