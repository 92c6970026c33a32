"""The recorded traces the UI tests and snapshots replay: chains from the deterministic fake source,
token trees from the real tree decoder on toy models.

Run ``python -m tests.support.traces`` to regenerate tests/support/data/*.jsonl after changing the fake
or the tree decoder.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from specviz.decoding.events import Event, Iteration, RunFinished, RunStarted
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


# -- token trees: the real tree_decode on toy models ----------------------------------------------

# A toy vocabulary of code pieces. The prompt is a function; the toy models write it again with
# ``total`` renamed to ``result``, the real models' code-edit example in miniature: prompt lookup
# proposes the old name and is refused there, the draft model proposes the new one.
TREE_WORDS = (
    "def", " f", "(xs", "):", "\n   ", "\n       ", " total", " =", " 0", " for", " x", " in", " xs",
    ":", " +=", " return", "\n", " result",
)  # fmt: skip
_TOTAL, _RESULT = 6, 17
# def f(xs): / total = 0 / for x in xs: / total += x / return total
_FUNCTION = (0, 1, 2, 3, 4, 6, 7, 8, 4, 9, 10, 11, 12, 13, 5, 6, 14, 10, 4, 15, 6, 16)
TREE_PROMPT = "".join(TREE_WORDS[t] for t in _FUNCTION)
TREE_TARGET, TREE_DRAFT = "toy/rename-target", "toy/rename-draft"


class WordCodec:
    """Token text for :data:`TREE_WORDS`."""

    def token_text(self, token_id: int) -> str:
        return TREE_WORDS[token_id]

    def decode(self, token_ids: list[int]) -> str:
        return "".join(TREE_WORDS[t] for t in token_ids)


def _rename_lm(seed: int, margin: float, noise: float):  # -> TableLM (torch is imported lazily)
    """A toy LM over its last two tokens: seeded random logits of scale ``noise``, plus ``margin``
    on the next token of :data:`_FUNCTION` with ``total`` renamed to ``result`` (after the original
    or the renamed text alike). The target (a large margin) writes the renamed function again and
    again; the draft (a smaller one) mostly agrees."""
    from specviz.decoding.backends import TableLM

    def renamed(token: int) -> int:
        return _RESULT if token == _TOTAL else token

    cycle = [*_FUNCTION, *_FUNCTION[:2]]  # the function, then the start of the next one
    following: dict[tuple[int, int], int] = {}
    for a, b, c in zip(cycle, cycle[1:], cycle[2:], strict=False):
        following[(a, b)] = renamed(c)
        following[(renamed(a), renamed(b))] = renamed(c)

    class RenameLM(TableLM):
        def logits_for(self, context: list[int]):  # type: ignore[no-untyped-def]
            logits = super().logits_for(context).clone()  # [vocab]
            after = following.get(tuple(context[-2:]))  # type: ignore[arg-type]
            if after is not None:
                logits[after] += margin
            return logits

    return RenameLM(len(TREE_WORDS), order=2, seed=seed, sharpness=noise)


def tree_events(*, temperature: float = 0.0, nodes: int = 12, max_new_tokens: int = 40) -> list[Event]:
    """One hybrid token-tree run (lookup and draft-model branches), recorded from the real
    :func:`~specviz.decoding.tree_decoder.tree_decode` on toy models: deterministic, seeded.

    Timings are replaced by synthetic ones (a draft forward per depth, a verify cost growing with
    the nodes), so the trace is the same on every machine.
    """
    import torch

    from specviz.decoding.decoder import DecodeConfig, RunInfo
    from specviz.decoding.drafters.hybrid import HybridTreeDrafter
    from specviz.decoding.drafters.lookup_tree import LookupTreeDrafter
    from specviz.decoding.drafters.model_tree import ModelTreeDrafter
    from specviz.decoding.sampling import SamplingConfig
    from specviz.decoding.tree_decoder import tree_decode
    from specviz.tui.widgets.tree_view import node_depths

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster, and the numbers cannot vary
    try:
        sampling = SamplingConfig(temperature=temperature)
        target = _rename_lm(seed=5, margin=5.0, noise=1.0)
        draft = _rename_lm(seed=8, margin=3.0, noise=1.2)
        drafter = HybridTreeDrafter(
            ModelTreeDrafter(
                draft, sampling, len(TREE_WORDS), width=3, expand=3, max_depth=4, min_path_prob=0.02
            ),
            LookupTreeDrafter(max_ngram=3, min_ngram=2),
        )
        config = DecodeConfig(max_new_tokens=max_new_tokens, gamma=nodes, sampling=sampling, seed=3)
        info = RunInfo(target=TREE_TARGET, draft=TREE_DRAFT, prompt=TREE_PROMPT)
        events = list(tree_decode(target, drafter, list(_FUNCTION), config, WordCodec(), info))
    finally:
        torch.set_num_threads(threads)
    out: list[Event] = []
    wall = 0.0
    for event in events:
        if isinstance(event, RunStarted):
            event = replace(event, prefill_time_s=0.2)
        elif isinstance(event, Iteration):
            tree = event.tree or ()
            # A draft-model forward per depth of the model's nodes; a lookup costs next to nothing.
            depths = node_depths(tree)
            forwards = max(
                (d + 1 for d, n in zip(depths, tree, strict=True) if n.source == "draft"), default=0
            )
            event = replace(
                event,
                draft_time_s=round(0.001 + 0.03 * forwards, 6),
                verify_time_s=round(0.1 + 0.004 * event.gamma, 6),
            )
            wall += event.draft_time_s + event.verify_time_s
        elif isinstance(event, RunFinished):
            event = replace(event, wall_time_s=round(wall, 6))
        out.append(event)
    return out


def write(path: Path, events: list[Event]) -> None:
    from specviz.decoding.events import dumps

    path.write_text("".join(dumps(e) + "\n" for e in events), encoding="utf-8")


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    write(DATA / "sampled.jsonl", sampled_events())
    write(DATA / "greedy_race.jsonl", greedy_race_events())
    write(DATA / "tree.jsonl", tree_events())
