"""Loading a model spec (packaged name, local folder, .gguf file or hub id) onto a device."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specviz.models.catalogue import PACKAGED, ModelError
from specviz.models.provisioning import drop_quantizer_marker, provision
from specviz.progress import Progress, no_progress


@dataclass
class LoadedModel:
    spec: str
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    device: Any  # torch.device of the input embeddings
    dtype: Any

    @property
    def context_length(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    @property
    def eos_token_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        for source in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(int(i) for i in source)
        return frozenset(ids)


def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(
                f"--device {device} was asked for but torch sees no CUDA device (use --device cpu)"
            )
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto``: float32 on CPU, bfloat16 on CUDA, float16 on MPS.

    On CPU, float32 is exact: greedy speculative output equals plain decoding token for token
    (tested on the real models), whereas in bfloat16 a k-token verify forward rounds differently
    from 1-token steps and can flip near-ties. With oneDNN-packed weights (packing.py) float32 is
    also about as fast as bfloat16 on a 2-core CPU with native bf16 (plain decoding of the 1.5B
    target, same run: bf16/fp32 0.95–1.25x); without packing, bf16 ran 2.2x faster there.
    """
    import torch

    if dtype == "auto":
        return {"cuda": torch.bfloat16, "mps": torch.float16}.get(device.split(":")[0], torch.float32)
    try:
        value = getattr(torch, dtype)
    except AttributeError:
        value = None
    if not isinstance(value, torch.dtype):
        raise ModelError(f"unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16")
    return value


def _locate(spec: str, progress: Progress) -> tuple[str, dict[str, Any]]:
    """Return (path or hub id, extra from_pretrained kwargs) for a model spec."""
    if spec in PACKAGED:
        return str(provision(spec, progress)), {"local_files_only": True}
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name, "local_files_only": True}
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is a folder but holds no config.json: not a transformers checkpoint")
        return str(path), {"local_files_only": True}
    if path.exists():
        raise ModelError(f"{path} is neither a model folder nor a .gguf file")
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelError(f"model path {spec} does not exist")
    return spec, {}


def load_model(
    spec: str,
    device: str = "auto",
    dtype: str = "auto",
    device_map: str | None = None,
    trust_remote_code: bool = False,
    progress: Progress = no_progress,
    pack: bool = True,
) -> LoadedModel:
    """Load a packaged name, local folder, .gguf file or hub id.

    ``pack``: on CPU in float32, pre-pack the Linear weights for oneDNN (see packing.py): faster
    single steps and nearly flat multi-token verification. Ignored elsewhere.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, extra = _locate(spec, progress)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    kwargs = dict(extra, trust_remote_code=trust_remote_code)
    progress(f"loading {spec}", 0, 0)  # the longest silent step: say which model it is
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            where,
            dtype=torch_dtype,
            device_map=device_map,
            use_safetensors=None if "gguf_file" in extra else _prefer_safetensors(where),
            **kwargs,
        )
    except OSError as exc:
        hint = (
            f"{spec!r} is not a packaged model ({', '.join(PACKAGED)}), not an existing local path, "
            "and could not be loaded from the Hugging Face hub"
        )
        if os.environ.get("HF_HUB_OFFLINE") or "offline" in str(exc).lower() or "connect" in str(exc).lower():
            hint += " (no network: the hub is unreachable)"
        raise ModelError(f"{hint}.\n  cause: {str(exc).splitlines()[0]}") from exc
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelError(
                f"{spec} needs custom code from its repository; rerun with --trust-remote-code "
                "if you trust it"
            ) from exc
        raise ModelError(f"cannot load {spec}: {exc}") from exc
    if "gguf_file" in extra:
        drop_quantizer_marker(model)
    if device_map is None:
        model.to(dev)
    model.eval()
    from specviz.models.packing import can_pack, pack_linear_layers

    if pack and dev == "cpu" and can_pack(model):
        layers = sum(1 for m in model.modules() if type(m).__name__ == "Linear")
        progress(f"packing {spec} for oneDNN", 0, layers)
        pack_linear_layers(model)
        progress(f"packing {spec} for oneDNN", layers, layers)
    embed_device = model.get_input_embeddings().weight.device
    return LoadedModel(spec=spec, model=model, tokenizer=tokenizer, device=embed_device, dtype=torch_dtype)


def _prefer_safetensors(where: str) -> bool | None:
    path = Path(where)
    if path.is_dir():
        return True if any(path.glob("*.safetensors")) else None
    return None  # hub: transformers already prefers safetensors when the repo has them


def quantize_draft(lm: LoadedModel, scheme: str) -> str:
    """Make the *draft* cheaper; returns the scheme applied ("int8" or "none").

    Lossless whatever the draft computes: verification only needs draft_probs to be the
    distribution the drafted token was really drawn from, and the decoder computes it from this
    very model. The target is never quantized. int8 = dynamic int8 quantization of the Linear
    layers (CPU only), which ran a 0.5B draft step several times faster than float32 here.
    """
    import warnings

    import torch

    if scheme == "auto":
        scheme = "int8" if lm.device.type == "cpu" and lm.dtype == torch.float32 else "none"
    if scheme == "none":
        return scheme
    if scheme != "int8":
        raise ModelError(f"unknown draft quantization {scheme!r}: use auto, int8 or none")
    if lm.device.type != "cpu":
        raise ModelError("--draft-quant int8 works on CPU only; use --draft-quant none on this device")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's migration notice; the API still works
        lm.model = torch.ao.quantization.quantize_dynamic(lm.model, {torch.nn.Linear}, dtype=torch.qint8)
    return scheme


def oom_errors() -> tuple[type[BaseException], ...]:
    """What running out of memory raises: torch's (CPU and accelerators) and Python's."""
    import torch

    return (torch.OutOfMemoryError, MemoryError)


def same_vocabulary(target: LoadedModel, draft: LoadedModel) -> bool:
    """Whether draft token ids mean the same strings to the target (then ids pass straight through)."""
    return bool(target.tokenizer.get_vocab() == draft.tokenizer.get_vocab())
