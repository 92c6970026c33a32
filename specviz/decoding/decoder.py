"""The decoding loops. Both are generators of events (see events.py) and know nothing of any UI.

``speculative_decode`` drafts, verifies and commits; ``autoregressive_decode`` is plain decoding
with the same sampling, seed handling and events, for baselines and races.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch

from specviz.decoding.acceptance import AcceptanceRule, Verifier, one_hot_draft, verify
from specviz.decoding.backends import CausalLM
from specviz.decoding.drafters import Drafter
from specviz.decoding.events import (
    Correction,
    DraftedToken,
    Event,
    FinishReason,
    Iteration,
    RunFinished,
    RunStarted,
    TokenProb,
)
from specviz.decoding.sampling import SamplingConfig, sample, to_probs


class TextCodec(Protocol):
    """What the decoder needs of a tokenizer: token text for the events, and stop handling."""

    def token_text(self, token_id: int) -> str: ...

    def decode(self, token_ids: list[int]) -> str: ...


class PromptTooLongError(ValueError):
    pass


@dataclass(frozen=True)
class DecodeConfig:
    max_new_tokens: int = 128
    gamma: int = 4
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: int = 0
    eos_token_ids: frozenset[int] = frozenset()
    stop_strings: tuple[str, ...] = ()
    context_length: int | None = None  # the target's window; None = unbounded
    top_n: int = 5  # entries of the correction's distribution recorded per iteration
    # The acceptance rule (see acceptance.py). Only the lossless one keeps the target's
    # distribution; others exist to measure what a shortcut costs and must set ``lossy`` so every
    # consumer labels the run.
    verifier: Verifier = verify
    lossy: bool = False

    def __post_init__(self) -> None:
        # A verifier that does not declare itself lossless (any plain callable) counts as lossy.
        if getattr(self.verifier, "lossy", True) and not self.lossy:
            raise ValueError("a lossy or unknown acceptance rule must be labelled: pass lossy=True")


@dataclass(frozen=True)
class RunInfo:
    """Descriptive fields of RunStarted that the loop itself does not decide."""

    target: str = "target"
    draft: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    prompt: str = ""


def _top(dist: torch.Tensor, n: int, codec: TextCodec) -> tuple[TokenProb, ...]:
    values, ids = torch.topk(dist, min(n, dist.shape[-1]))
    return tuple(
        TokenProb(int(i), codec.token_text(int(i)), float(v))
        for v, i in zip(values.tolist(), ids.tolist(), strict=True)
        if v > 0
    )


def _softmax_top(logits: torch.Tensor, n: int, codec: TextCodec) -> tuple[TokenProb, ...]:
    """Top entries of one logits row ``[vocab]`` at temperature 1 (what greedy's argmax hides)."""
    return _top(logits.float().softmax(dim=-1), n, codec)


def _clock(*syncs: CausalLM | Drafter) -> float:
    for s in syncs:
        s.synchronize()
    return time.perf_counter()


class _Finisher:
    """Decides when generation stops and trims the committed tokens accordingly."""

    def __init__(self, config: DecodeConfig, codec: TextCodec, prompt_len: int) -> None:
        self.config = config
        self.codec = codec
        self.room = config.max_new_tokens
        if config.context_length is not None:
            self.room = min(self.room, config.context_length - prompt_len)

    def trim(self, generated: list[int], new: list[int]) -> tuple[list[int], FinishReason | None]:
        """Tokens of ``new`` to commit after ``generated``, and why generation ends (or None)."""
        for j, token in enumerate(new):
            if token in self.config.eos_token_ids:
                return new[: j + 1], "eos"
            if self.config.stop_strings:
                text = self.codec.decode(generated + new[: j + 1])
                if any(s in text for s in self.config.stop_strings):
                    return new[: j + 1], "stop"
        if len(generated) + len(new) >= self.room:
            reason: FinishReason = (
                "max_new_tokens" if self.room == self.config.max_new_tokens else "context_full"
            )
            return new[: self.room - len(generated)], reason
        return new, None


class _TextTracker:
    """Text of the generated tokens, emitted incrementally without splitting a character.

    Decoding each iteration's tokens alone would turn a multi-byte character split across
    iterations into replacement characters; decoding everything so far and emitting the new
    suffix (holding back a trailing partial character) keeps the streamed text exact.
    """

    def __init__(self, codec: TextCodec) -> None:
        self.codec = codec
        self.emitted = ""

    def advance(self, generated: list[int], final: bool = False) -> str:
        full = self.codec.decode(generated)
        stable = full if final else full.rstrip("\ufffd")
        if not stable.startswith(self.emitted):
            stable = full  # the tokenizer re-spelled earlier text: emit what is new from here
        new = stable[len(self.emitted) :] if stable.startswith(self.emitted) else stable
        self.emitted = stable
        return new


def _check_prompt(prompt_ids: list[int], config: DecodeConfig) -> None:
    if not prompt_ids:
        raise ValueError("the prompt is empty: give at least one token")
    if config.context_length is not None and len(prompt_ids) >= config.context_length:
        raise PromptTooLongError(
            f"the prompt is {len(prompt_ids)} tokens but the target's context window is "
            f"{config.context_length}: shorten the prompt (no room is left to generate)"
        )


def _begin(
    target: CausalLM, prompt_ids: list[int], config: DecodeConfig, codec: TextCodec
) -> tuple[torch.Generator, _Finisher]:
    """Check the prompt; the run's one generator (seeded, on the target's device) and its finisher."""
    _check_prompt(prompt_ids, config)
    return torch.Generator(device=target.device).manual_seed(config.seed), _Finisher(
        config, codec, len(prompt_ids)
    )


def _prefill(target: CausalLM, drafter: Drafter | None, prompt_ids: list[int]) -> float:
    """Prefill the models on the prompt; returns the seconds it took.

    The target keeps all but the last token so that every forward of the loop starts with the last
    committed token (the token whose successors it scores)."""
    syncs: tuple[CausalLM | Drafter, ...] = (target,) if drafter is None else (target, drafter)
    start = _clock(*syncs)
    target.reset()
    if len(prompt_ids) > 1:
        target.forward(torch.tensor(prompt_ids[:-1], device=target.device), keep=1)
    if drafter is not None:
        drafter.prefill(prompt_ids)
    return _clock(*syncs) - start


def _run_started(
    config: DecodeConfig,
    info: RunInfo,
    prompt_ids: list[int],
    prefill_s: float,
    drafter: str | None = None,
    rule: str | None = None,
) -> RunStarted:
    """The RunStarted of a speculative run (``drafter`` named) or a plain one."""
    sampling = config.sampling
    return RunStarted(
        mode="speculative" if drafter is not None else "autoregressive",
        target=info.target,
        draft=info.draft if drafter is not None else None,
        drafter=drafter,
        gamma=config.gamma if drafter is not None else 0,
        temperature=sampling.temperature,
        top_k=sampling.top_k,
        top_p=sampling.top_p,
        seed=config.seed,
        max_new_tokens=config.max_new_tokens,
        device=info.device,
        dtype=info.dtype,
        prompt=info.prompt,
        prompt_token_ids=tuple(prompt_ids),
        prefill_time_s=prefill_s,
        lossy=config.lossy if drafter is not None else False,
        rule=rule,
    )


def _run_finished(
    reason: FinishReason, codec: TextCodec, generated: list[int], iterations: int, busy_s: float
) -> RunFinished:
    return RunFinished(
        reason=reason,
        text=codec.decode(generated),
        token_ids=tuple(generated),
        iterations=iterations,
        wall_time_s=busy_s,
    )


def speculative_decode(
    target: CausalLM,
    drafter: Drafter,
    prompt_ids: list[int],
    config: DecodeConfig,
    codec: TextCodec,
    info: RunInfo = RunInfo(),
) -> Iterator[Event]:
    sampling = config.sampling
    generator, finisher = _begin(target, prompt_ids, config, codec)

    # 1. Prefill both models on the prompt.
    prefill_s = _prefill(target, drafter, prompt_ids)
    rule = config.verifier.describe() if hasattr(config.verifier, "describe") else None
    yield _run_started(config, info, prompt_ids, prefill_s, drafter.name, rule)

    context = list(prompt_ids)
    generated: list[int] = []
    text = _TextTracker(codec)
    busy_s = 0.0  # time inside the loop, not while a consumer holds the generator at a yield
    reason: FinishReason | None = None if finisher.room > 0 else "context_full"
    index = 0
    while reason is None:
        # 2. Draft. Never draft past the budget: k drafts can commit k + 1 tokens.
        k = max(0, min(config.gamma, finisher.room - len(generated) - 1))
        t0 = _clock(target, drafter)
        draft = drafter.propose(context, k, generator)
        t1 = _clock(target, drafter)
        requested = k if draft.asked is None else draft.asked
        k = int(draft.tokens.shape[0])

        # 3. Verify: one target forward over [last committed, d_1..d_k] scores k + 1 positions.
        feed = torch.cat([torch.tensor(context[target.length :], device=target.device), draft.tokens])
        target_logits = target.forward(feed, keep=k + 1)  # [k + 1, vocab]
        target_probs = to_probs(target_logits, sampling)  # [k + 1, vocab]
        # A deterministic drafter's one-hot distribution, built once for verify and the overlaps.
        draft_probs = (
            draft.probs if draft.probs is not None else one_hot_draft(draft.tokens, target_probs.shape[-1])
        )  # [k, vocab]
        result = config.verifier(draft.tokens, draft_probs, target_probs, generator, sampling.greedy)
        t2 = _clock(target, drafter)

        # 4. Roll the target's cache back to the accepted prefix (the correction is fed next time).
        n = result.n_accepted
        target.truncate(len(context) + n)
        drafter.feedback(n, k)

        # 5. Commit, stopping at EOS, a stop string or the budget.
        drafted_ids = draft.tokens.tolist()
        committed, reason = finisher.trim(generated, [*drafted_ids[:n], result.next_token])
        context += committed
        generated += committed

        overlaps = torch.minimum(target_probs[:k], draft_probs).sum(dim=-1).tolist() if k else []
        argmaxes = target_probs[:k].argmax(dim=-1).tolist() if k else []
        # Greedy rows are one-hot: record how sure each model really was (temperature 1).
        target_softmax: list[float | None] = [None] * k
        draft_softmax: list[float | None] = [None] * k
        if sampling.greedy and k:
            rows = target_logits[:k].float().softmax(dim=-1)  # [k, vocab]
            target_softmax = rows.gather(-1, draft.tokens.view(k, 1)).view(k).tolist()
            if draft.softmax is not None:
                draft_softmax = draft.softmax.tolist()
        drafted = tuple(
            DraftedToken(
                position=i,
                token_id=tok,
                text=codec.token_text(tok),
                draft_prob=result.draft_token_probs[i],
                target_prob=result.target_token_probs[i],
                ratio=result.ratios[i]
                if i < len(result.ratios)
                else (
                    result.target_token_probs[i] / result.draft_token_probs[i]
                    if result.draft_token_probs[i] > 0
                    else 0.0
                ),
                u=result.uniforms[i] if i < len(result.uniforms) else None,
                # Accepted drafts past an EOS/stop/budget cut were never committed: discarded.
                verdict="accepted"
                if i < n and i < len(committed)
                else ("rejected" if i == n else "discarded"),
                target_argmax=argmaxes[i],
                overlap=overlaps[i],
                draft_pieces=draft.pieces[i] if draft.pieces else None,
                draft_softmax=draft_softmax[i],
                target_softmax=target_softmax[i],
            )
            for i, tok in enumerate(drafted_ids)
        )
        correction = Correction(
            # Nothing drafted: the target simply took one step; nothing about it was free.
            kind=result.next_kind if k else "plain",
            token_id=result.next_token,  # type: ignore[arg-type]
            text=codec.token_text(result.next_token),
            prob=float(result.next_dist[result.next_token]),
            top=_top(result.next_dist, config.top_n, codec),
            committed=len(committed) == n + 1,
            softmax_top=_softmax_top(target_logits[n], config.top_n, codec) if sampling.greedy else (),
        )
        # Sampling runs: the exact TV the rule puts between the first emitted token and the target
        # (0.4-1.3 ms on a 152k vocabulary; greedy rows are one-hot, every rule is argmax matching).
        step_tv = (
            config.verifier.step_tv(draft_probs[0], target_probs[0])
            if k and not sampling.greedy and isinstance(config.verifier, AcceptanceRule)
            else None
        )
        iteration = Iteration(
            index=index,
            gamma=requested,
            drafted=drafted,
            correction=correction,
            new_token_ids=tuple(committed),
            new_text=text.advance(generated, final=reason is not None),
            draft_time_s=t1 - t0,
            verify_time_s=t2 - t1,
            total_tokens=len(generated),
            step_tv=step_tv,
        )
        busy_s += time.perf_counter() - t0
        yield iteration
        index += 1

    yield _run_finished(reason, codec, generated, index, busy_s)


def autoregressive_decode(
    target: CausalLM,
    prompt_ids: list[int],
    config: DecodeConfig,
    codec: TextCodec,
    info: RunInfo = RunInfo(),
) -> Iterator[Event]:
    """Plain decoding: one target forward and one sample per token, same events and sampling."""
    sampling = config.sampling
    generator, finisher = _begin(target, prompt_ids, config, codec)

    prefill_s = _prefill(target, None, prompt_ids)
    yield _run_started(config, info, prompt_ids, prefill_s)

    generated: list[int] = []
    text = _TextTracker(codec)
    busy_s = 0.0
    last = prompt_ids[-1]
    reason: FinishReason | None = None if finisher.room > 0 else "context_full"
    index = 0
    while reason is None:
        t0 = _clock(target)
        logits = target.forward(torch.tensor([last], device=target.device), keep=1)  # [1, vocab]
        probs = to_probs(logits, sampling)  # [1, vocab]
        token = int(probs.argmax() if sampling.greedy else sample(probs, generator)[0])
        t1 = _clock(target)
        committed, reason = finisher.trim(generated, [token])
        generated += committed
        last = token
        dist = probs[0]
        iteration = Iteration(
            index=index,
            gamma=0,
            drafted=(),
            correction=Correction(
                kind="plain",
                token_id=token,
                text=codec.token_text(token),
                prob=float(dist[token]),
                top=_top(dist, config.top_n, codec),
                softmax_top=_softmax_top(logits[0], config.top_n, codec) if sampling.greedy else (),
            ),
            new_token_ids=tuple(committed),
            new_text=text.advance(generated, final=reason is not None),
            draft_time_s=0.0,
            verify_time_s=t1 - t0,
            total_tokens=len(generated),
        )
        busy_s += time.perf_counter() - t0
        yield iteration
        index += 1

    yield _run_finished(reason, codec, generated, index, busy_s)
