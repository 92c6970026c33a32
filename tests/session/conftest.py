"""The real packaged models, loaded once per test session (the 1.5B target takes seconds and GBs)."""

from __future__ import annotations

import os

import pytest

from specviz.models import is_provisioned
from specviz.session import ModelOptions, Session


def need(*names: str) -> None:
    """Skip (locally) or fail (under CI=true) when a packaged model is not provisioned."""
    missing = [n for n in names if not is_provisioned(n)]
    if missing:
        message = f"models not provisioned: {missing} (run ./setup.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def default_pair() -> Session:
    """The default pair as the main job loads it (float32 target, int8 draft), loaded once."""
    need("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b")
    return Session(ModelOptions("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", device="cpu", dtype="float32"))
