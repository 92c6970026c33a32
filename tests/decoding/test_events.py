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


def test_a_version_1_trace_still_replays() -> None:
    """Traces written before schema 2 (no softmax fields, no trees) read with those fields empty."""
    from tests.support.traces import DATA

    old = list(read_trace(DATA / "v1_sampled.jsonl"))
    new = list(read_trace(DATA / "sampled.jsonl"))
    assert json.loads((DATA / "v1_sampled.jsonl").read_text().splitlines()[0])["v"] == 1
    assert old == new  # the same run: version 2 only added fields, absent here
    assert all(d.target_softmax is None for e in old if hasattr(e, "drafted") for d in e.drafted)


def test_greedy_events_record_how_sure_each_model_was(codec) -> None:
    """At temperature 0 draft_prob/target_prob are one-hot; the softmax fields hold the real numbers."""
    greedy = SamplingConfig(temperature=0.0)
    target, draft = TableLM(6, order=2, seed=1, sharpness=1.0), TableLM(6, order=2, seed=2, sharpness=1.0)
    drafter = ModelDrafter(draft, greedy, target_vocab_size=6)
    events = list(
        speculative_decode(
            target, drafter, [1, 2], DecodeConfig(max_new_tokens=10, gamma=3, sampling=greedy), codec
        )
    )
    iterations = [e for e in events if hasattr(e, "drafted")]
    checked = 0
    for it in iterations:
        context = list(events[0].prompt_token_ids) + [
            t for prev in iterations[: it.index] for t in prev.new_token_ids
        ]
        for d in it.drafted:
            row = context + [x.token_id for x in it.drafted[: d.position]]
            assert d.target_prob in (0.0, 1.0) and d.draft_prob == 1.0
            expected_target = float(target.logits_for(row).softmax(-1)[d.token_id])
            expected_draft = float(draft.logits_for(row).softmax(-1)[d.token_id])
            assert d.target_softmax == pytest.approx(expected_target, abs=1e-6)
            assert d.draft_softmax == pytest.approx(expected_draft, abs=1e-6)
            assert 0 < d.target_softmax < 1  # a real probability, not the one-hot 1.0
            checked += 1
        top = it.correction.softmax_top
        assert top and top[0].token_id == it.correction.token_id and top[0].prob < 1
    assert checked >= 5


def test_an_iteration_that_drafts_nothing_is_a_plain_step(codec) -> None:
    """The last iteration of a budget drafts 0 tokens: its token is a target step, not a free bonus."""
    sampling = SamplingConfig(temperature=0.0)
    target = TableLM(6, order=2, seed=1)
    drafter = ModelDrafter(TableLM(6, order=2, seed=1), sampling, target_vocab_size=6)  # always accepted
    events = list(
        speculative_decode(
            target, drafter, [1, 2], DecodeConfig(max_new_tokens=6, gamma=4, sampling=sampling), codec
        )
    )
    iterations = [e for e in events if hasattr(e, "drafted")]
    assert [len(it.drafted) for it in iterations] == [4, 0]
    assert [it.correction.kind for it in iterations] == ["bonus", "plain"]
