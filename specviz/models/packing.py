"""Pre-packed oneDNN weights for float32 Linear layers on CPU.

Why: measured on this project's 2-core AVX-512 CPU (torch 2.13), a plain float32 ``nn.Linear``
takes a matrix-vector path for one token but repacks the whole weight on every call for 2+
tokens: a 1536x8960 layer ran 4.1 ms for 1 row and 9–13 ms for 2–4 rows, so verifying k drafted
tokens cost 2–3x a single step. The same layer with its weight reordered once into oneDNN's
blocked layout ran 2.6 ms for 1 row and 3.3–3.8 ms for 2–8 rows (the 152k-row lm_head: 74 →
38 ms for 1 row, 160 → 49 ms for 2). Packing makes plain decoding faster *and* verification
nearly flat in k, which is what speculative decoding needs.

bfloat16 is left alone: its native kernels were already as fast as oneDNN's there.
The results are float32 matmuls with a different summation order, so they differ from the dense
kernel by float32 rounding only (~1e-6 relative); whether that moves a greedy argmax is what the
real-model equality tests check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class PackedLinear(nn.Module):
    """Inference-only stand-in for an ``nn.Linear`` with a oneDNN-reordered float32 weight."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        weight = linear.weight.detach().to(torch.float32).contiguous()
        # Buffers, not parameters: oneDNN tensors have no storage autograd or safetensors can use.
        self.register_buffer("packed_weight", weight.to_mkldnn(), persistent=False)
        bias = (
            linear.bias.detach().to(torch.float32).contiguous().to_mkldnn()
            if linear.bias is not None
            else None
        )
        self.register_buffer("packed_bias", bias, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [..., in_features] -> [..., out_features]
        rows = x.reshape(-1, self.in_features).contiguous()  # [N, in]
        out = torch._C._nn.mkldnn_linear(rows.to_mkldnn(), self.packed_weight, self.packed_bias)
        return out.to_dense().reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, packed=oneDNN"


def can_pack(model: Any) -> bool:
    """float32 weights on a CPU whose torch has oneDNN."""
    if not torch.backends.mkldnn.is_available():
        return False
    params = list(model.parameters())
    return bool(params) and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params)


def pack_linear_layers(model: nn.Module) -> int:
    """Replace every float32 CPU ``nn.Linear`` in ``model`` in place; returns how many were packed.

    One layer at a time, so the peak is the model plus one packed layer rather than two models:
    nothing here keeps the replaced ``nn.Linear`` alive, and when its weight lies in a
    memory-mapped checkpoint the pages the copy just read are handed back (``CopiedWeights``),
    since otherwise they would stay resident beside the packed copy.
    """
    names = linear_layers_largest_first(
        model, lambda linear: linear.weight.device.type == "cpu" and linear.weight.dtype == torch.float32
    )
    copied = CopiedWeights(model)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        linear = getattr(parent, child)
        setattr(parent, child, PackedLinear(linear))
        copied.release([linear.weight, linear.bias])
        del linear
    return len(names)


def linear_layers_largest_first(
    model: nn.Module, wanted: Callable[[nn.Linear], bool] = lambda _: True
) -> list[str]:
    """Names of the plain ``nn.Linear`` layers of ``model`` that are ``wanted``, largest weight first.

    Each replacement briefly holds one layer twice (the original and its copy). Doing the largest
    (the 152k-row lm_head) first, while little else has been copied yet, keeps that moment off
    the top of the peak: measured on the 1.5B target, 6.2 instead of 7.1 GiB.
    """
    found = [
        (module.weight.numel(), index, name)
        for index, (name, module) in enumerate(model.named_modules())
        if type(module) is nn.Linear and wanted(module)
    ]
    return [name for _, _, name in sorted(found, key=lambda item: (-item[0], item[1]))]


def _span(tensor: torch.Tensor) -> tuple[int, int]:
    """(address, length in bytes) of the memory a tensor reads."""
    return tensor.data_ptr(), tensor.numel() * tensor.element_size()


def shared_tensor_ids(model: nn.Module) -> set[int]:
    """ids of the parameters and buffers whose memory another registration also reads.

    Tied weights (an lm_head that *is* the input embedding) and views into one storage: their
    pages must stay, because the other user still needs them after one of them is replaced.
    """
    tensors = [
        t
        for _, t in (
            *model.named_parameters(remove_duplicate=False),
            *model.named_buffers(remove_duplicate=False),
        )
        if t is not None and t.layout == torch.strided and t.numel() > 0
    ]
    spans = [_span(t) for t in tensors]
    shared: set[int] = set()
    for i, (start_i, length_i) in enumerate(spans):
        for j in range(i + 1, len(spans)):
            start_j, length_j = spans[j]
            if start_i < start_j + length_j and start_j < start_i + length_i:
                shared.update((id(tensors[i]), id(tensors[j])))
    return shared


class CopiedWeights:
    """Hands back the checkpoint pages of a model's weights as they are copied and replaced.

    A safetensors checkpoint is memory-mapped: a weight read once to be packed or quantized keeps
    its pages resident (counted in the process's memory) for as long as the file stays mapped,
    which is as long as any other weight of that file lives. Make this before replacing anything
    (it notes which weights are shared and where the files are mapped), then ``release`` each
    replaced weight while still holding it. Anonymous memory is left alone: it is freed when its
    last reference goes.
    """

    def __init__(self, model: nn.Module) -> None:
        from specviz.models.memory import MappedFiles

        self._shared = shared_tensor_ids(model)
        self._files = MappedFiles()

    def release(self, tensors: list[torch.Tensor | None]) -> int:
        """Release the pages of these replaced weights; returns the bytes released."""
        spans = [
            _span(t)
            for t in tensors
            if t is not None
            and id(t) not in self._shared
            and t.device.type == "cpu"
            and t.layout == torch.strided
        ]
        return self._files.release(spans)
