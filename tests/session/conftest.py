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


@pytest.fixture(scope="session")
def plain_greedy(default_pair: Session):
    """Plain greedy token ids of the default pair per (prompt, chat, max_new_tokens), computed once:
    every greedy-identity test compares against the same plain runs."""
    from specviz.decoding.events import RunFinished
    from specviz.session import RunSettings

    cache: dict[tuple[str, bool, int], tuple[int, ...]] = {}

    def tokens(prompt: str, chat: bool, max_new_tokens: int) -> tuple[int, ...]:
        key = (prompt, chat, max_new_tokens)
        if key not in cache:
            settings = RunSettings(prompt=prompt, chat=chat, max_new_tokens=max_new_tokens)
            finished = [e for e in default_pair.plain(settings) if isinstance(e, RunFinished)]
            cache[key] = finished[0].token_ids
        return cache[key]

    return tokens
