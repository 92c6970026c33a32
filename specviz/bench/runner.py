"""Runs every method on the same target, prompts, settings and seeds, interleaved, and records
raw timings. Methods:

- ``plain``: specviz autoregressive decoding (the baseline every speedup is relative to);
- ``specviz_model`` / ``specviz_ngram``: specviz speculative decoding with the draft model / prompt lookup;
- ``specviz_tree`` / ``specviz_lookup_tree`` / ``specviz_hybrid``: token trees (their γ is the node
  budget per iteration) from the draft model, from prompt lookup, and from both;
- ``hf_assisted`` / ``hf_prompt_lookup``: transformers' own ``generate(assistant_model=...)`` and
  ``generate(prompt_lookup_num_tokens=...)``, the peers a user would try first.

Each measurement times the whole generation for already-tokenised prompt ids (prefill included,
tokenisation excluded), with device synchronisation, after one warm-up generation per method.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from specviz.bench.methods import DRAFTER, TREE_METHODS, USES_DRAFT_MODEL
from specviz.bench.prompts import BenchPrompt
from specviz.decoding.events import Iteration, RunStarted
from specviz.decoding.settings import RunSettings, gamma_fields
from specviz.decoding.stats import RunStats, verified_rows
from specviz.session import Session

SAMPLE_TEMPERATURE = 0.7


@dataclass
class Measurement:
    category: str
    prompt: str
    method: str
    mode: str  # greedy | sample
    gamma: int | str  # "auto": automatic γ (cap AUTO_GAMMA_CAP)
    repeat: int
    new_tokens: int
    time_s: float
    token_ids: list[int]
    drafted: int | None = None
    accepted: int | None = None
    iterations: int | None = None
    overlap_sum: float | None = None
    verified: int | None = None  # drafted tokens that were verified (accepted or the one rejected)
    draft_s: float | None = None  # summed over iterations, as the decoder timed them
    prefill_s: float | None = None  # the prompt's prefill (target, and draft for a draft model)
    verify_s: float | None = None
    # Token trees: nodes the target scored (summed over iterations; RunStats' ``drafted`` counts
    # only the accepted path and its first refused child), and draft-model forwards spent after
    # the prefill (counted at the draft backend, see CountingLM).
    nodes: int | None = None
    draft_forwards: int | None = None
    # Speculative runs: {rows the target scored in one verify: iterations}, so the cost model
    # prices each iteration at its own T(k) (see theory.predicted_run_s).
    verify_rows: dict[int, int] | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.time_s if self.time_s > 0 else 0.0

    @property
    def stats(self) -> RunStats:
        """The run's counts and times as the one statistics type (what the JSON keeps of them),
        so the report pools runs with ``RunStats.pooled`` and reads the rates it defines."""
        return RunStats(
            iterations=self.iterations or 0,
            drafted=self.drafted or 0,
            verified=self.verified or 0,
            accepted=self.accepted or 0,
            overlap_sum=self.overlap_sum or 0.0,
            committed=self.new_tokens,
            draft_time_s=self.draft_s or 0.0,
            verify_time_s=self.verify_s or 0.0,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens_per_s"] = self.tokens_per_s
        return data


@dataclass
class BenchPlan:
    prompts: list[BenchPrompt]
    methods: list[str]
    modes: list[str]
    gammas: dict[str, list[int | str]]  # per speculative method; "auto" = automatic γ
    repeats: int
    max_new_tokens: int
    seed: int = 0
    draft_confidence: float | None = None
    adaptive: bool = False
    chat_template: bool = True  # False for a target without one: chat prompts are then sent raw
    reference_dtype: str | None = None  # plain_reference: the target in this dtype
    cost_ks: list[int] | None = None  # the k whose T(k) was timed (the rest interpolated)
    interrupted: bool = field(default=False)
    error: str | None = None


def _settings(
    prompt: BenchPrompt, method: str, mode: str, gamma: int | str, seed: int, plan: BenchPlan
) -> RunSettings:
    gamma_cap, auto_gamma = gamma_fields(gamma)
    return RunSettings(
        prompt=prompt.text,
        drafter=DRAFTER.get(method, "model"),  # type: ignore[arg-type]
        gamma=gamma_cap,
        auto_gamma=auto_gamma,
        temperature=0.0 if mode == "greedy" else SAMPLE_TEMPERATURE,
        seed=seed,
        max_new_tokens=plan.max_new_tokens,
        chat=prompt.chat and plan.chat_template,
        draft_confidence=plan.draft_confidence if method == "specviz_model" else None,
        adaptive=plan.adaptive and method == "specviz_model",
    )


class CountingLM:
    """A draft backend that counts its forwards, for the cost model's price of a token tree.

    A tree's draft forwards are not one per node (one per depth over all of its expanded nodes,
    plus the catch-up), and the events do not record them; counting at the backend is exact
    whatever the drafter does. Everything but the two forwards is the wrapped backend's.
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.forwards = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.forwards += 1
        return self.backend.forward(*args, **kwargs)

    def forward_tree(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.forwards += 1
        return self.backend.forward_tree(*args, **kwargs)


def _run_specviz(
    session: Session, method: str, settings: RunSettings, prompt_ids: list[int], reference: Any = None
) -> dict[str, Any]:
    counter: CountingLM | None = None
    session.target_backend.synchronize()
    start = time.perf_counter()
    if method == "plain_reference":
        events = session.plain(settings, prompt_ids, backend=reference)
    elif method == "plain":
        events = session.plain(settings, prompt_ids)
    elif method in TREE_METHODS and method in USES_DRAFT_MODEL and session.draft_backend is not None:
        # The tree drafter is built inside speculative(): hand it a counting draft backend.
        draft_backend, counter = session.draft_backend, CountingLM(session.draft_backend)
        session.draft_backend = counter  # type: ignore[assignment]
        try:
            events = session.speculative(settings, prompt_ids)
        finally:
            session.draft_backend = draft_backend
    else:
        events = session.speculative(settings, prompt_ids)
    stats = RunStats()
    nodes = 0
    prefill_forwards = 0
    rows: Counter[int] = Counter()
    for event in events:
        stats.observe(event)
        if isinstance(event, RunStarted) and counter is not None:
            prefill_forwards = counter.forwards  # the prompt's prefill is timed apart (prefill_s)
        elif isinstance(event, Iteration):
            rows[verified_rows(event)] += 1
            if event.tree is not None:
                nodes += len(event.tree)
    session.target_backend.synchronize()
    elapsed = time.perf_counter() - start
    prefill_s = stats.started.prefill_time_s if stats.started is not None else 0.0
    extra = (
        {"prefill_s": prefill_s}
        if method in ("plain", "plain_reference")
        else {
            "prefill_s": prefill_s,
            "drafted": stats.drafted,
            "accepted": stats.accepted,
            "overlap_sum": stats.overlap_sum,
            "verified": stats.verified,
            "draft_s": stats.draft_time_s,
            "verify_s": stats.verify_time_s,
            "verify_rows": dict(sorted(rows.items())),
        }
    )
    if method in TREE_METHODS:
        forwards = counter.forwards - prefill_forwards if counter is not None else 0
        extra.update(nodes=nodes, draft_forwards=forwards)
    token_ids = list(stats.finished.token_ids) if stats.finished is not None else []
    return {"time_s": elapsed, "token_ids": token_ids, "iterations": stats.iterations, **extra}


def _run_hf(
    session: Session, method: str, settings: RunSettings, prompt_ids: list[int], reference: Any = None
) -> dict[str, Any]:
    model = session.target.model
    ids = torch.tensor([prompt_ids], device=session.target.device)
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "attention_mask": torch.ones_like(ids),
        "pad_token_id": next(iter(session.target.eos_token_ids), None),
        "eos_token_id": sorted(session.target.eos_token_ids) or None,
    }
    if settings.temperature > 0:
        # Plain temperature sampling, as specviz does: switch off transformers' default top-k.
        kwargs.update(do_sample=True, temperature=settings.temperature, top_k=0, top_p=1.0)
        torch.manual_seed(settings.seed)  # generate() draws from the global RNG; seeded per run
    else:
        kwargs.update(do_sample=False)
    if method == "hf_assisted":
        assert session.draft is not None
        kwargs["assistant_model"] = session.draft.model
    else:
        kwargs["prompt_lookup_num_tokens"] = settings.gamma
    session.target_backend.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, **kwargs)
    session.target_backend.synchronize()
    elapsed = time.perf_counter() - start
    return {"time_s": elapsed, "token_ids": out[0, len(prompt_ids) :].tolist()}


def _jobs(plan: BenchPlan) -> list[tuple[str, str, int | str]]:
    jobs = []
    for mode in plan.modes:
        for method in plan.methods:
            for gamma in plan.gammas.get(method, [0]) if method != "plain" else [0]:
                jobs.append((method, mode, gamma))
    return jobs


def run_bench(
    session: Session,
    plan: BenchPlan,
    on_measurement: Callable[[Measurement, int, int], None] = lambda m, done, total: None,
    reference: Any = None,
) -> list[Measurement]:
    """``reference``: a backend of the same target in another dtype, for ``plain_reference``."""
    """Measure every job on every prompt, ``plan.repeats`` times, interleaving methods so that
    machine noise hits them alike. Ctrl-C stops early and returns what finished."""
    jobs = _jobs(plan)
    plan.chat_template = bool(getattr(session.target.tokenizer, "chat_template", None))
    total = len(plan.prompts) * plan.repeats * len(jobs)
    results: list[Measurement] = []
    try:
        _warm_up(session, plan, jobs, reference)
        for prompt in plan.prompts:
            settings0 = _settings(prompt, "plain", "greedy", 0, plan.seed, plan)
            prompt_ids = session.encode(settings0)
            for repeat in range(plan.repeats):
                # Rotate the order each repeat so no method always runs first (cache/thermal effects).
                shift = repeat % len(jobs)
                for method, mode, gamma in jobs[shift:] + jobs[:shift]:
                    seed = plan.seed + repeat
                    settings = _settings(prompt, method, mode, gamma, seed, plan)
                    run = _run_hf if method.startswith("hf_") else _run_specviz
                    raw = run(session, method, settings, prompt_ids, reference)
                    m = Measurement(
                        category=prompt.category,
                        prompt=prompt.name,
                        method=method,
                        mode=mode,
                        gamma=gamma,
                        repeat=repeat,
                        new_tokens=len(raw["token_ids"]),
                        **raw,
                    )
                    results.append(m)
                    on_measurement(m, len(results), total)
    except KeyboardInterrupt:
        plan.interrupted = True
    except Exception as exc:  # keep what finished; the caller reports the error with the partial data
        plan.interrupted = True
        plan.error = f"{type(exc).__name__}: {exc}"
    return results


def _warm_up(
    session: Session, plan: BenchPlan, jobs: list[tuple[str, str, int | str]], reference: Any
) -> None:
    prompt = plan.prompts[0]
    short = BenchPlan(**{**plan.__dict__, "max_new_tokens": 4})
    ids = session.encode(_settings(prompt, "plain", "greedy", 0, plan.seed, short))
    for method, mode, gamma in jobs:
        settings = _settings(prompt, method, mode, gamma, plan.seed, short)
        (_run_hf if method.startswith("hf_") else _run_specviz)(session, method, settings, ids, reference)
