"""Bad arguments get a clear message and exit code 2, never a traceback (no model is loaded)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from specviz.cli import main
from specviz.decoding.events import RunFinished, read_trace
from tests.support.tiny_models import save_tiny_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["theory", "--c", "inf"], "--c must be a finite number"),
        (["theory", "--c", "nan"], "--c must be a finite number"),
        (["theory", "--c", "-1"], "--c must be a finite number"),
        (["theory", "--alpha", "nan"], "--alpha must be in [0, 1]"),
        (["theory", "--alpha", "1.5"], "--alpha must be in [0, 1]"),
        (["theory", "--max-gamma", "0"], "--max-gamma must be between 1 and 64"),
    ],
)
def test_theory_refuses_values_that_mean_nothing(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


# -- specviz run: nothing lost, nothing waited for ---------------------------------------------

OLD_TRACE = '{"an": "older trace"}\n'


@pytest.fixture(scope="module")
def tiny_target(tmp_path_factory) -> str:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("models") / "target", seed=1)


def _run(target: str, *extra: str) -> list[str]:
    return ["run", "--headless", "--target", target, "--drafter", "ngram", "--device", "cpu", *extra]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--temperature=-1"], "--temperature must be a finite number >= 0"),
        (["--temperature", "nan"], "--temperature must be a finite number >= 0"),
        (["--temperature", "inf"], "--temperature must be a finite number >= 0"),
        (["--top-p", "2"], "--top-p must be in (0, 1]"),
        (["--top-k", "0"], "--top-k must be >= 1"),
        (["--gamma=-3"], "--gamma must be a whole number >= 0"),
    ],
)
def test_bad_flags_fail_before_loading_and_keep_an_old_trace(tmp_path, extra, message, capsys) -> None:
    """No model is loaded (the target does not even exist) and the old trace is left as it was."""
    trace = tmp_path / "old.jsonl"
    trace.write_text(OLD_TRACE)
    assert main(_run(str(tmp_path / "no-such-model"), "--trace", str(trace), *extra, "hi")) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert trace.read_text() == OLD_TRACE


def test_a_prompt_that_fails_after_loading_keeps_an_old_trace(tmp_path, tiny_target, capsys) -> None:
    trace = tmp_path / "old.jsonl"
    trace.write_text(OLD_TRACE)
    assert main(_run(tiny_target, "--trace", str(trace), "")) == 2
    assert "the prompt is empty" in capsys.readouterr().err
    assert trace.read_text() == OLD_TRACE


@pytest.mark.parametrize("flag", ["--json", "--trace"])
def test_output_paths_are_checked_before_any_model_loads(tmp_path, flag: str, capsys) -> None:
    missing_folder = tmp_path / "nowhere" / "out.json"
    assert main(_run(str(tmp_path / "no-such-model"), flag, str(missing_folder), "hi")) == 2
    err = capsys.readouterr().err
    assert f"{flag} {missing_folder}" in err and "does not exist" in err
    assert main(_run(str(tmp_path / "no-such-model"), flag, str(tmp_path), "hi")) == 2
    assert "is a folder" in capsys.readouterr().err


def test_a_prompt_file_is_read_and_must_be_utf8(tmp_path, tiny_target, capsys) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("déjà vu " * 12, encoding="utf-8")  # 96 byte-level tokens; the context is 256
    out = tmp_path / "s.json"
    argv = _run(tiny_target, "--prompt-file", str(prompt), "--max-new-tokens", "3", "--json", str(out))
    assert main(argv) == 0
    summary = json.loads(out.read_text())
    assert summary["prompt_tokens"] == len("déjà vu ".encode()) * 12
    assert summary["peak_rss_bytes"] >= 50_000_000  # torch alone is more than that
    prompt.write_bytes(b"caf\xe9")  # Latin-1
    assert main(_run(tiny_target, "--prompt-file", str(prompt))) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    assert main(_run(tiny_target, "--prompt-file", str(prompt), "also a prompt")) == 2
    assert "not both" in capsys.readouterr().err


def test_a_closed_stdout_still_writes_the_trace_and_summary(tmp_path, tiny_target) -> None:
    """``specviz run ... | head -1`` used to end with no --json and a trace without run_finished."""
    out, trace = tmp_path / "s.json", tmp_path / "t.jsonl"
    cmd = [sys.executable, "-m", "specviz.cli", *_run(tiny_target, "--max-new-tokens", "16")]
    cmd += ["--json", str(out), "--trace", str(trace), "def add("]
    shell = " ".join(shlex.quote(part) for part in cmd) + " | head -c 1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["finish_reason"] in ("max_new_tokens", "eos")
    assert isinstance(list(read_trace(trace))[-1], RunFinished)


# -- specviz replay: what is valid is replayed, what is missing is said --------------------------


def test_replay_of_a_cut_trace_shows_what_it_has_and_warns(tmp_path, capsys) -> None:
    whole = (Path(__file__).parents[1] / "support" / "data" / "sampled.jsonl").read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(whole[:3]) + "\n" + whole[3][:40])
    assert main(["replay", "--headless", str(cut)]) == 0
    captured = capsys.readouterr()
    assert "specviz run summary" in captured.out
    assert "cut.jsonl:4: cut short" in captured.err and "has no run_finished" in captured.err


@pytest.mark.parametrize(("content", "message"), [(b"", "is empty"), (b"\xff\xfe\x00\x01", "not text")])
def test_replay_of_a_file_with_no_events_is_an_error(tmp_path, content: bytes, message: str, capsys) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(content)
    assert main(["replay", "--headless", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# -- specviz bench: bad sweeps are refused before any model loads ------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gammas-ngram=-3"], "--gammas-ngram: γ values are whole numbers >= 1"),
        (["--gammas-model=-3"], "--gammas-model: γ values are whole numbers >= 1"),
        (["--gammas-model", ","], "--gammas-model: give at least one γ"),
        (["--modes", "nope"], "--modes: use greedy, sample or both"),
        (["--max-new-tokens=-1"], "--max-new-tokens must be >= 1"),
        (["--repeats=-2"], "--repeats must be >= 1"),
        (["--categories", ","], "--categories: give at least one of"),
        (["--draft-confidence", "2"], "--draft-confidence must be in [0, 1]"),
    ],
)
def test_bench_refuses_bad_values(tmp_path, extra: list[str], message: str, capsys) -> None:
    argv = ["bench", "--target", str(tmp_path / "no-such-model"), "--json", str(tmp_path / "b.json"), *extra]
    assert main(argv) == 2
    out = capsys.readouterr()
    assert message in out.out + out.err and "Traceback" not in out.out + out.err
    assert not (tmp_path / "b.json").exists()


def test_json_output_is_whole_and_finite(tmp_path) -> None:
    from specviz.commands.output_files import write_json_atomically

    path = tmp_path / "s.json"
    write_json_atomically(path, {"speedup": float("inf"), "rates": [float("nan"), 0.5], "ok": 1})
    assert json.loads(path.read_text()) == {"speedup": None, "rates": [None, 0.5], "ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]  # no temporary file left behind


@pytest.mark.parametrize("device", ["tpu", "", "cuda:x"])
def test_an_unknown_device_is_a_clear_error(tmp_path, tiny_target, device: str, capsys) -> None:
    assert main(_run(tiny_target, "--device", device, "hi")) == 2
    err = capsys.readouterr().err
    assert "--device" in err and "Traceback" not in err


def test_ctrl_c_while_loading_keeps_an_old_trace_and_says_nothing_of_it(
    tmp_path, monkeypatch, capsys
) -> None:
    """The trace is opened at the first event, so an interrupt before it leaves the old one alone."""
    import specviz.commands.run as run_command

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_command, "load_session", interrupted)
    trace = tmp_path / "old.jsonl"
    trace.write_text(OLD_TRACE)
    assert main(_run(str(tmp_path / "any-model"), "--trace", str(trace), "hi")) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "trace so far" not in err
    assert trace.read_text() == OLD_TRACE
