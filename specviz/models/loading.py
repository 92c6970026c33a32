"""Loading a model spec (packaged name, local folder, .gguf file or hub id) onto a device."""

from __future__ import annotations

import difflib
import os
import socket
import urllib.parse
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
        kind = device.split(":")[0]
        if kind not in ("cpu", "cuda", "mps"):
            raise ModelError(f"unknown --device {device!r}: use auto, cpu, cuda, cuda:N or mps")
        if kind == "cuda" and not torch.cuda.is_available():
            raise ModelError(
                f"--device {device} was asked for but torch sees no CUDA device (use --device cpu)"
            )
        if kind == "cuda" and ":" in device:
            index = device.split(":", 1)[1]
            if not index.isdigit() or int(index) >= torch.cuda.device_count():
                raise ModelError(
                    f"--device {device}: torch sees {torch.cuda.device_count()} CUDA device(s), "
                    "numbered from 0"
                )
        if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ModelError(
                f"--device {device} was asked for but this torch has no MPS device (use --device cpu)"
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


def dtype_advice(dtype: str, device: str) -> str | None:
    """A warning for a half-precision dtype on a CPU, where its speed is not what one expects.

    Measured on this project's 2-core CPU with AMX: plain bfloat16 decoding of the 1.5B target ran
    1.4x faster than float32, but a smollm2-135m verify step took 845 ms in float16 and 1669 ms
    in bfloat16 against ~80 ms in float32; CPUs without native bf16 emulate it.
    """
    if dtype not in ("float16", "bfloat16") or resolve_device(device) != "cpu":
        return None
    native = _cpu_has_native_bf16() if dtype == "bfloat16" else False
    speed = (
        "this CPU has native bfloat16, but small models can still run slower than in float32"
        if native
        else f"this CPU has no native {dtype} kernels: expect it to run several times slower than float32"
    )
    return (
        f"--dtype {dtype} on CPU: {speed} (measured: 10-20x slower for smollm2-135m). It is not "
        "token-exact in greedy mode. `specviz bench --reference-dtype` measures it; float32 is the exact default."
    )


def _cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


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
    return _hub(spec)


def _hub(spec: str) -> tuple[str, dict[str, Any]]:
    """A hub id: from the local hub cache if it is there, else from the hub, which is checked first.

    Without this check an unreachable hub costs about 50 s of transformers' retries before the
    same error; a typo of a packaged name fails at once with the name it was probably meant to be.
    """
    close = difflib.get_close_matches(spec, list(PACKAGED), n=1, cutoff=0.75)
    if not spec.strip() or (close and "/" not in spec):
        hint = f"did you mean {close[0]}? " if close else ""
        raise ModelError(
            f"unknown model {spec!r}: {hint}Use a packaged name ({', '.join(PACKAGED)}; see `specviz models`), "
            "a local checkpoint folder, a .gguf file or a hub id."
        )
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(spec, "config.json"), str):
        return spec, {"local_files_only": True}
    reason = None
    if constants.HF_HUB_OFFLINE:
        reason = "HF_HUB_OFFLINE is set"
    else:
        host = urllib.parse.urlparse(constants.ENDPOINT).hostname or ""
        try:
            socket.create_connection((host, 443), timeout=3).close()
        except OSError:
            reason = "the hub cannot be reached from this machine"
    if reason:
        raise ModelError(
            f"{spec!r} is not a packaged model ({', '.join(PACKAGED)}), not an existing local path, "
            f"and not in the local hub cache; {reason}. Use a packaged name or a local checkpoint folder."
        )
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
    from safetensors import SafetensorError
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
    except SafetensorError as exc:
        raise ModelError(
            f"the weights of {spec} cannot be read ({exc}): the file is damaged or cut short. "
            + (
                f"Run `specviz models --pull {spec}` to repair the cache."
                if spec in PACKAGED
                else "Copy or download the checkpoint again."
            )
        ) from exc
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
    from specviz.models.packing import CopiedWeights, linear_layers_largest_first

    # One Linear at a time and in place: quantize_dynamic on the whole model would first
    # deep-copy it (a second float32 draft), and the float32 weights of the layers already done
    # would stay resident until the end. Each layer gets the same default dynamic qconfig either
    # way, so the result is the same.
    model = lm.model
    names = linear_layers_largest_first(model)
    copied = CopiedWeights(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's migration notice; the API still works
        for name in names:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            linear = getattr(parent, child)
            holder = torch.nn.Sequential(linear)  # quantize_dynamic swaps children, never its root
            torch.ao.quantization.quantize_dynamic(holder, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
            setattr(parent, child, holder[0])
            copied.release([linear.weight, linear.bias])
            del linear, holder
    return scheme


def oom_errors() -> tuple[type[BaseException], ...]:
    """What running out of memory raises: torch's (CPU and accelerators) and Python's."""
    import torch

    return (torch.OutOfMemoryError, MemoryError)


def same_vocabulary(target: LoadedModel, draft: LoadedModel) -> bool:
    """Whether token ids can pass straight between the two models.

    Equal tokenizers are not enough: the draft must also embed every id the target can emit
    (its logits' width). A draft with fewer embedding rows would crash on the first target token
    past its table, so such a pair is treated as two vocabularies and bridged like any
    cross-tokenizer pair (see decoding/drafters/cross_tokenizer.py).
    """
    rows = embedding_rows(draft.model)
    if rows < len(draft.tokenizer):
        raise ModelError(
            f"the draft {draft.spec} has {rows} embedding rows but its tokenizer has {len(draft.tokenizer)} "
            "tokens: it cannot read every token it would be given. Use another draft model, or "
            "--drafter ngram (no draft model)."
        )
    if target.tokenizer.get_vocab() != draft.tokenizer.get_vocab():
        return False
    return rows >= logit_width(target.model)


def embedding_rows(model: Any) -> int:
    """How many token ids ``model`` can take as input."""
    return int(model.get_input_embeddings().weight.shape[0])


def logit_width(model: Any) -> int:
    """How many token ids ``model`` can emit (the width of its logits)."""
    return int(getattr(model.config, "vocab_size", None) or embedding_rows(model))
