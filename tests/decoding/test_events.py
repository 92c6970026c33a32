from __future__ import annotations

import json

import pytest

from specviz.decoding.backends import TableLM
from specviz.decoding.decoder import DecodeConfig, speculative_decode
from specviz.decoding.drafters import ModelDrafter
from specviz.decoding.events import (
    SCHEMA_VERSION,
    TraceError,
    TraceWriter,
    dumps,
    load_trace,
    loads,
    read_trace,
)
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


def _write(path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_a_trace_cut_short_keeps_every_whole_event(codec, tmp_path) -> None:
    events = _events(codec)
    lines = [dumps(e) for e in events]
    path = tmp_path / "cut.jsonl"
    _write(path, [*lines[:-1], lines[-1][: len(lines[-1]) // 2]])  # the last write was interrupted
    contents = load_trace(path)
    assert contents.events == events[:-1]
    assert contents.damage is not None and "cut.jsonl:" in contents.damage and "cut short" in contents.damage
    assert contents.gaps == ["run 1 has no run_finished: it was cut short"]
    with pytest.raises(TraceError, match="cut short"):
        list(read_trace(path))


def test_a_trace_missing_its_start_or_end_says_so(codec, tmp_path) -> None:
    events = _events(codec)
    path = tmp_path / "headless.jsonl"
    _write(path, [dumps(e) for e in events[1:]])
    contents = load_trace(path)
    assert contents.events == events[1:] and contents.damage is None
    assert contents.gaps == ["the trace does not start with run_started: its beginning is missing"]
    whole = tmp_path / "whole.jsonl"
    _write(whole, [dumps(e) for e in events] * 2)  # two complete runs
    assert load_trace(whole).problems == []


def test_a_corrupt_line_in_the_middle_stops_reading_there(codec, tmp_path) -> None:
    events = _events(codec)
    path = tmp_path / "mid.jsonl"
    _write(path, [dumps(events[0]), dumps(events[1]), "{not json", dumps(events[2])])
    contents = load_trace(path)
    assert contents.events == events[:2]
    assert contents.damage is not None and "mid.jsonl:3: not a specviz trace event" in contents.damage


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (bytes(range(128, 256)) * 4, "not text"),
        (b"hello, world\n", "not a specviz trace event"),
    ],
    ids=["empty", "blank-lines", "binary", "other-text"],
)
def test_a_file_with_no_events_is_an_error(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(content)
    with pytest.raises(TraceError, match=message):
        load_trace(path)
