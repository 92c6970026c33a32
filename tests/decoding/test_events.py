from __future__ import annotations

import json

import pytest

from specviz.decoding.backends import TableLM
from specviz.decoding.decoder import DecodeConfig, speculative_decode
from specviz.decoding.drafters import ModelDrafter
from specviz.decoding.events import SCHEMA_VERSION, TraceError, TraceWriter, dumps, loads, read_trace
from specviz.decoding.sampling import SamplingConfig


def _events(codec):
    sampling = SamplingConfig(temperature=0.9, top_k=4)
    target = TableLM(6, order=2, seed=1)
    drafter = ModelDrafter(TableLM(6, order=2, seed=2), sampling, target_vocab_size=6)
    return list(
        speculative_decode(
            target, drafter, [1, 2], DecodeConfig(max_new_tokens=12, gamma=3, sampling=sampling), codec
        )
    )


def test_event_json_round_trip(codec, tmp_path) -> None:
    events = _events(codec)
    assert {type(e).__name__ for e in events} == {"RunStarted", "Iteration", "RunFinished"}
    for e in events:
        assert loads(dumps(e)) == e
    path = tmp_path / "run.jsonl"
    with path.open("w") as f:
        writer = TraceWriter(f)
        for e in events:
            writer.write(e)
    assert list(read_trace(path)) == events
    first = json.loads(path.read_text().splitlines()[0])
    assert first["v"] == SCHEMA_VERSION and first["type"] == "run_started"


def test_corrupt_trace_names_file_and_line(codec, tmp_path) -> None:
    events = _events(codec)
    path = tmp_path / "bad.jsonl"
    path.write_text(dumps(events[0]) + "\n{not json\n")
    with pytest.raises(TraceError, match=r"bad\.jsonl:2"):
        list(read_trace(path))
    path.write_text(json.dumps({"v": 99, "type": "iteration"}) + "\n")
    with pytest.raises(TraceError, match="schema version 99"):
        list(read_trace(path))
    with pytest.raises(TraceError, match="cannot open"):
        list(read_trace(tmp_path / "missing.jsonl"))
