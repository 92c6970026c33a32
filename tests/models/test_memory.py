"""Peak-memory reading, and handing back checkpoint pages that packing or quantization copied."""

from __future__ import annotations

import mmap
import subprocess
import sys
import warnings
import weakref

import pytest
import torch
from torch import nn

from specviz.models import LoadedModel, load_model, packing, quantize_draft
from specviz.models.memory import MappedFiles, peak_rss_bytes, rss_bytes
from tests.support.tiny_models import save_tiny_checkpoint, tiny_qwen2

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")


def _rss_file_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssFile in /proc/self/status")


def test_peak_is_at_least_the_current_resident_memory() -> None:
    now = rss_bytes()
    peak = peak_rss_bytes()
    assert peak > 0
    assert now is None or peak >= now > 0


@linux_only
def test_peak_of_a_child_process_is_its_own_not_its_parents() -> None:
    # ru_maxrss survives exec: a small child of a large parent would report the parent's peak.
    ballast = bytearray(512 * 2**20)
    ballast[:: mmap.PAGESIZE] = b"\x01" * len(ballast[:: mmap.PAGESIZE])  # make every page resident
    code = "from specviz.models.memory import peak_rss_bytes; print(peak_rss_bytes())"
    child_peak = int(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert child_peak < 256 * 2**20 < len(ballast)


@linux_only
def test_releasing_drops_resident_file_pages_and_keeps_the_data(tmp_path) -> None:
    page = mmap.PAGESIZE
    data = bytes(range(256)) * (64 * page // 256)  # 64 pages
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)  # private, as safetensors maps
    view = torch.frombuffer(mapped, dtype=torch.uint8)  # [64 * page], reads the mapping itself
    files = MappedFiles()
    try:
        assert int(view.sum()) > 0  # touch every page
        before = _rss_file_bytes()
        address = view.data_ptr()
        # An unaligned span: the partial pages at either end belong to neighbours and stay.
        assert files.release([(address + 1, len(data) - 2)]) == len(data) - 2 * page
        assert before - _rss_file_bytes() >= 32 * page
        assert bytes(view.numpy()) == data  # read back from the page cache
    finally:
        del view
        mapped.close()


def test_releasing_never_touches_anonymous_memory() -> None:
    buffer = torch.full((4 * 2**20,), 0xAB, dtype=torch.uint8)  # [4 MiB], ordinary memory
    assert MappedFiles().release([(buffer.data_ptr(), buffer.numel())]) == 0
    assert bool((buffer == 0xAB).all())


def test_tied_weights_are_reported_shared() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False), nn.Linear(4, 4))
    assert packing.shared_tensor_ids(model) == set()
    model[1].weight = model[0].weight  # an lm_head that is the input embedding
    assert packing.shared_tensor_ids(model) == {id(model[0].weight)}


def test_packing_frees_each_original_weight_before_packing_the_next(monkeypatch) -> None:
    model = tiny_qwen2(seed=0)
    originals = [weakref.ref(m.weight) for m in model.modules() if type(m) is nn.Linear]
    alive_at_each_step: list[int] = []

    class Recording(packing.PackedLinear):
        def __init__(self, linear: nn.Linear) -> None:
            alive_at_each_step.append(sum(ref() is not None for ref in originals))
            super().__init__(linear)

    monkeypatch.setattr(packing, "PackedLinear", Recording)
    assert packing.pack_linear_layers(model) == len(originals)
    # Packing layer k: the k layers already packed have let go of their float32 weights.
    assert alive_at_each_step == list(range(len(originals), 0, -1))
    assert all(ref() is None for ref in originals)
    assert not any(type(m) is nn.Linear for m in model.modules())


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")
def test_packed_model_loaded_from_a_mapped_checkpoint_matches_the_unpacked_one(tmp_path) -> None:
    folder = save_tiny_checkpoint(tmp_path / "tiny", seed=3)
    plain = load_model(folder, device="cpu", dtype="float32", pack=False)
    packed = load_model(folder, device="cpu", dtype="float32", pack=True)
    ids = torch.tensor([[5, 17, 42, 7, 99]])  # [batch, seq]
    with torch.inference_mode():
        torch.testing.assert_close(packed.model(ids).logits, plain.model(ids).logits, rtol=1e-5, atol=1e-5)


def test_int8_draft_quantized_layer_by_layer_equals_whole_model_quantization() -> None:
    import copy

    model = tiny_qwen2(seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        whole = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    lm = LoadedModel(
        spec="tiny", model=model, tokenizer=None, device=torch.device("cpu"), dtype=torch.float32
    )
    assert quantize_draft(lm, "int8") == "int8"
    assert lm.model is model  # in place: no second copy of the draft
    assert not any(type(m) is nn.Linear for m in model.modules())
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])  # [batch, seq]
    with torch.inference_mode():
        assert torch.equal(model(ids).logits, whole(ids).logits)
