"""The token-tree decoding loop: draft a tree, score it in one target forward, keep the accepted path.

The chain loop (decoder.py) with three steps changed: the drafter proposes a :class:`TokenTree`
of at most ``config.gamma`` nodes, the target scores the root and every node at once with a tree
attention mask (``TreeLM.forward_tree``), and after :func:`verify_tree` the target's cache keeps
only the accepted path (``TreeLM.keep_path``). Everything else (prefill, budget, EOS and stop
strings, the events) is the chain's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

import torch

from specviz.decoding.decoder import (
    DecodeConfig,
    RunInfo,
    TextCodec,
    _begin,
    _clock,
    _prefill,
    _run_finished,
    _run_started,
    _softmax_top,
    _TextTracker,
    _top,
)
from specviz.decoding.events import (
    Correction,
    DraftedToken,
    Event,
    FinishReason,
    Iteration,
    NodeVerdict,
    TreeNode,
)
from specviz.decoding.sampling import to_probs
from specviz.decoding.tree import TokenTree, TreeLM, TreeVerdict, TreeVerifier, verify_tree


class TreeDrafter(Protocol):
    """A drafter that proposes trees: the chain contract with ``propose_tree`` for ``propose``."""

    name: str

    def prefill(self, context: list[int]) -> None: ...

    def propose_tree(
        self, context: list[int], nodes: int, depth: int, generator: torch.Generator
    ) -> TokenTree:
        """At most ``nodes`` nodes, none deeper than ``depth`` (depth 1: children of the root only)."""
        ...

    def tree_feedback(self, tree: TokenTree, path: list[int]) -> None:
        """The tree just verified and its accepted path (node indices, root first)."""
        ...

    def synchronize(self) -> None: ...


def _nodes(
    tree: TokenTree,
    verdict: TreeVerdict,
    target_probs: torch.Tensor,
    target_softmax: list[float | None],
    codec: TextCodec,
) -> tuple[TreeNode, ...]:
    tokens = tree.tokens.tolist()
    on_path = set(verdict.path)
    out = []
    for i, token in enumerate(tokens):
        verdict_i: NodeVerdict = (
            "accepted" if i in on_path else ("rejected" if verdict.tested[i] else "untested")
        )
        out.append(
            TreeNode(
                parent=tree.parents[i],
                token_id=token,
                text=codec.token_text(token),
                source=tree.sources[i],
                draft_prob=tree.draft_token_probs[i],
                target_prob=float(target_probs[tree.parents[i] + 1, token]),
                u=verdict.uniforms[i],
                verdict=verdict_i,
                draft_softmax=tree.draft_softmax[i] if tree.draft_softmax else None,
                target_softmax=target_softmax[i],
            )
        )
    return tuple(out)


def _as_chain(
    tree: TokenTree,
    verdict: TreeVerdict,
    target_probs: torch.Tensor,
    nodes: tuple[TreeNode, ...],
    n_committed: int,
) -> tuple[DraftedToken, ...]:
    """The accepted path, then the first refused child below it: the tree read as a chain."""
    kids = tree.children()
    last = verdict.path[-1] if verdict.path else -1
    refused = [c for c in kids[last + 1] if verdict.tested[c] and c not in verdict.path][:1]
    chain = []
    for position, i in enumerate([*verdict.path, *refused]):
        node = nodes[i]
        row = target_probs[node.parent + 1]  # [vocab]
        if tree.sampled[i]:
            assert tree.draft_probs is not None
            overlap = float(torch.minimum(row, tree.draft_probs[i]).sum())
        else:
            overlap = node.target_prob  # a fixed candidate's draft distribution is one-hot
        accepted = i in verdict.path
        chain.append(
            DraftedToken(
                position=position,
                token_id=node.token_id,
                text=node.text,
                draft_prob=node.draft_prob,
                target_prob=node.target_prob,
                ratio=node.target_prob / node.draft_prob if node.draft_prob > 0 else 0.0,
                u=node.u,
                # Accepted nodes past an EOS/stop/budget cut were never committed: discarded.
                verdict=("accepted" if position < n_committed else "discarded") if accepted else "rejected",
                target_argmax=int(row.argmax()),
                overlap=overlap,
                draft_softmax=node.draft_softmax,
                target_softmax=node.target_softmax,
            )
        )
    return tuple(chain)


def tree_decode(
    target: TreeLM,
    drafter: TreeDrafter,
    prompt_ids: list[int],
    config: DecodeConfig,
    codec: TextCodec,
    info: RunInfo = RunInfo(),  # noqa: B008 (frozen)
    verifier: TreeVerifier = verify_tree,
) -> Iterator[Event]:
    """Speculative decoding with token trees; ``config.gamma`` is the node budget per iteration.

    ``verifier`` exists for the tests' deliberately broken variants; there is one lossless rule."""
    if config.lossy:
        raise ValueError("token trees verify with rejection sampling only (no lossy rules)")
    sampling = config.sampling
    generator, finisher = _begin(target, prompt_ids, config, codec)

    prefill_s = _prefill(target, drafter, prompt_ids)
    rule = "rejection sampling" if verifier is verify_tree else None
    yield _run_started(config, info, prompt_ids, prefill_s, drafter.name, rule)

    context = list(prompt_ids)
    generated: list[int] = []
    text = _TextTracker(codec)
    busy_s = 0.0
    reason: FinishReason | None = None if finisher.room > 0 else "context_full"
    index = 0
    while reason is None:
        # 1. Draft a tree. A path of d nodes commits d + 1 tokens: never deeper than the budget allows.
        depth = max(0, finisher.room - len(generated) - 1)
        t0 = _clock(target, drafter)
        tree = drafter.propose_tree(context, config.gamma if depth else 0, depth, generator)
        t1 = _clock(target, drafter)
        n = len(tree)

        # 2. Score the root (the last committed token) and every node in one forward.
        pending = context[target.length :]
        if len(pending) > 1:  # only the root is ever pending; anything older goes in first
            target.forward(torch.tensor(pending[:-1], device=target.device), keep=1)
        feed = torch.cat([torch.tensor(pending[-1:], device=target.device), tree.tokens])  # [n + 1]
        parents = [-1, *(p + 1 for p in tree.parents)]  # the root is node 0 of the forward
        target_logits = target.forward_tree(feed, parents)  # [n + 1, vocab]
        target_probs = to_probs(target_logits, sampling)  # [n + 1, vocab]
        verdict = verifier(tree, target_probs, generator, sampling.greedy)
        t2 = _clock(target, drafter)

        # 3. Keep the root and the accepted path in the target's cache.
        target.keep_path([0, *(i + 1 for i in verdict.path)])
        drafter.tree_feedback(tree, verdict.path)

        # 4. Commit, stopping at EOS, a stop string or the budget.
        tokens = tree.tokens.tolist()
        path_tokens = [tokens[i] for i in verdict.path]
        committed, reason = finisher.trim(generated, [*path_tokens, verdict.next_token])
        context += committed
        generated += committed

        target_softmax: list[float | None] = [None] * n
        if sampling.greedy and n:
            rows = target_logits.float().softmax(dim=-1)  # [n + 1, vocab]
            parent_rows = torch.tensor([p + 1 for p in tree.parents], device=rows.device)
            target_softmax = rows[parent_rows].gather(-1, tree.tokens.view(n, 1)).view(n).tolist()
        nodes = _nodes(tree, verdict, target_probs, target_softmax, codec)
        last_row = (verdict.path[-1] + 1) if verdict.path else 0
        correction = Correction(
            kind=verdict.next_kind,  # type: ignore[arg-type]
            token_id=verdict.next_token,
            text=codec.token_text(verdict.next_token),
            prob=float(verdict.next_dist[verdict.next_token]),
            top=_top(verdict.next_dist, config.top_n, codec),
            committed=len(committed) == len(path_tokens) + 1,
            softmax_top=_softmax_top(target_logits[last_row], config.top_n, codec) if sampling.greedy else (),
        )
        iteration = Iteration(
            index=index,
            gamma=n,
            drafted=_as_chain(tree, verdict, target_probs, nodes, len(committed)),
            correction=correction,
            new_token_ids=tuple(committed),
            new_text=text.advance(generated, final=reason is not None),
            draft_time_s=t1 - t0,
            verify_time_s=t2 - t1,
            total_tokens=len(generated),
            tree=nodes,
        )
        busy_s += time.perf_counter() - t0
        yield iteration
        index += 1

    yield _run_finished(reason, codec, generated, index, busy_s)
