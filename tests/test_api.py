"""The README's Python API example, run as written on tiny random models instead of the packaged pair."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import specviz
from specviz.cli import main
from tests.support.tiny_models import save_tiny_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

README = Path(__file__).parents[1] / "README.md"


def _readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1, "the README has one Python example"
    return blocks[0]


def test_the_readme_example_runs_and_its_trace_replays(tmp_path, monkeypatch, capsys) -> None:
    target = save_tiny_checkpoint(tmp_path / "target", seed=1)
    draft = save_tiny_checkpoint(tmp_path / "draft", seed=2)
    code = _readme_example()
    assert '"qwen2.5-coder-1.5b"' in code and '"qwen2.5-coder-0.5b"' in code
    code = code.replace('"qwen2.5-coder-1.5b"', repr(target)).replace('"qwen2.5-coder-0.5b"', repr(draft))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)

    events, summary = namespace["events"], namespace["summary"]
    assert isinstance(events[0], specviz.RunStarted) and isinstance(events[-1], specviz.RunFinished)
    assert summary["token_ids"] == list(events[-1].token_ids) and len(summary["token_ids"]) == 32
    assert summary["drafter"] == "model" and summary["drafted"] > 0
    printed = capsys.readouterr().out
    assert summary["text"] in printed
    # The trace holds the same events, and the CLI replays it headless to the same summary.
    assert list(specviz.read_trace(tmp_path / "fib.jsonl")) == events
    assert main(["replay", "--headless", str(tmp_path / "fib.jsonl")]) == 0
    assert "specviz run summary" in capsys.readouterr().out


def test_import_specviz_stays_light() -> None:
    """The CLI imports the package first; torch (seconds to import) must wait until it is needed."""
    import subprocess

    code = "import sys, specviz; specviz.RunSettings; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
