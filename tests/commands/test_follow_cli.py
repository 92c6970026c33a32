"""``specviz follow``: a path that can never be a trace gets a clear message and exit code 2 before any
UI opens; a file that is not there yet is fine (it is waited for); no torch is imported."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specviz.cli import main
from specviz.decoding.events import dumps
from specviz.decoding.settings import RunSettings
from tests.support.fake_source import FakeSource


@pytest.fixture
def opened(monkeypatch) -> list[Path]:
    """The paths ``specviz follow`` opened the UI on (the UI itself is not started)."""
    calls: list[Path] = []
    monkeypatch.setattr("specviz.tui.app.run_follow", calls.append)
    return calls


def _error(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    return captured.err


def test_a_directory_is_refused(tmp_path: Path, capsys, opened: list[Path]) -> None:
    assert main(["follow", str(tmp_path)]) == 2
    assert _error(capsys) == (
        f"error: {tmp_path} is a directory: give the trace file the teacher records "
        "(specviz run --trace FILE)\n"
    )
    assert opened == []


def test_a_folder_that_does_not_exist_is_refused(tmp_path: Path, capsys, opened: list[Path]) -> None:
    path = tmp_path / "no-such-folder" / "class.jsonl"
    assert main(["follow", str(path)]) == 2
    assert f"error: {path.parent} does not exist" in _error(capsys)
    assert opened == []


def test_an_unreadable_file_is_refused(tmp_path: Path, capsys, monkeypatch, opened: list[Path]) -> None:
    path = tmp_path / "class.jsonl"
    path.write_text("", encoding="utf-8")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: refuse it the way the kernel would refuse a user
        real_open = Path.open

        def refusing(self: Path, *args, **kwargs):
            if self == path:
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", refusing)
    assert main(["follow", str(path)]) == 2
    assert _error(capsys) == f"error: cannot read {path}: Permission denied\n"
    assert opened == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,grade\nada,A\n", ":1: not a specviz trace event"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", ":1: not text (binary data)"),
        (b'{"v": 99, "type": "run_started"}\n', ":1: unsupported trace schema version 99"),
    ],
)
def test_a_file_that_is_not_a_trace_is_refused(
    tmp_path: Path, content: bytes, message: str, capsys, opened: list[Path]
) -> None:
    path = tmp_path / "class.jsonl"
    path.write_bytes(content)
    assert main(["follow", str(path)]) == 2
    err = _error(capsys)
    assert err.startswith(f"error: {path}{message}") and "is this the file the teacher records?" in err
    assert opened == []


def test_a_missing_empty_half_written_or_finished_trace_is_followed(
    tmp_path: Path, opened: list[Path]
) -> None:
    events = list(FakeSource()(RunSettings(prompt="Hi.", max_new_tokens=8)))
    missing = tmp_path / "later.jsonl"
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    half = tmp_path / "half.jsonl"
    half.write_text(dumps(events[0])[:40], encoding="utf-8")  # the teacher is writing its first line
    finished = tmp_path / "done.jsonl"
    finished.write_text("".join(dumps(e) + "\n" for e in events), encoding="utf-8")
    for path in (missing, empty, half, finished):
        assert main(["follow", str(path)]) == 0
    assert opened == [missing, empty, half, finished]


def test_following_imports_no_torch() -> None:
    code = (
        "import sys; import specviz.commands.follow, specviz.tui.follow, specviz.tui.widgets.follow_status, "
        "specviz.tui.app; from specviz.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_names_the_trace_and_the_catch_up_key(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["follow", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "trace" in out and "catches up with the teacher" in out
