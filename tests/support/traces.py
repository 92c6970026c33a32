"""The recorded traces the UI tests and snapshots replay, made by the deterministic fake source.

Run ``python -m tests.support.traces`` to regenerate tests/support/data/*.jsonl after changing the fake.
"""

from __future__ import annotations

from pathlib import Path

from specviz.decoding.events import Event
from specviz.decoding.settings import RunSettings
from tests.support.fake_source import FakeSource

DATA = Path(__file__).parent / "data"
PROMPT = "Explain speculative decoding in two paragraphs."

SAMPLED = RunSettings(prompt=PROMPT, gamma=4, temperature=0.8, top_p=0.95, seed=7, max_new_tokens=96)
GREEDY = RunSettings(prompt=PROMPT, gamma=5, temperature=0.0, seed=3, max_new_tokens=80)


def sampled_events() -> list[Event]:
    """One speculative run, sampling: rejections, resamples and bonus tokens."""
    return list(FakeSource()(SAMPLED))


def greedy_race_events() -> list[Event]:
    """A plain run then a speculative run of the same greedy settings: a race, and a baseline."""
    fake = FakeSource()
    return list(fake(GREEDY.evolve(mode="autoregressive"))) + list(fake(GREEDY))


def write(path: Path, events: list[Event]) -> None:
    from specviz.decoding.events import dumps

    path.write_text("".join(dumps(e) + "\n" for e in events), encoding="utf-8")


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    write(DATA / "sampled.jsonl", sampled_events())
    write(DATA / "greedy_race.jsonl", greedy_race_events())
