"""``specviz bench``: the command line around runner/report, with a progress bar and Ctrl-C safety."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from specviz.bench.methods import (
    DEFAULT_TREE_NODES,
    METHODS,
    NEEDS_DRAFT,
    TREE_METHODS,
    TREE_NODE_SWEEP,
    USES_DRAFT_MODEL,
)
from specviz.bench.prompts import SUITE, load_prompts
from specviz.commands.output_files import check_writable, write_json_atomically
from specviz.decoding.settings import GammaChoice, gamma_fields, parse_gamma

# Heavy modules (torch, transformers) are imported inside the command: `specviz --help` stays fast.
MODES = ("greedy", "sample")
# T(k) for the cost model: every k up to the chains' longest draft + 1, then (token trees score up
# to 64 rows) these k and each node budget + 1, the rest interpolated.
TREE_COST_KS = (12, 16, 24, 32, 48, 64)


def add_parser(sub: Any, model_args: Any) -> None:
    p = sub.add_parser("bench", help="measure plain vs speculative vs transformers' assisted generation")
    p.add_argument(
        "--quick", action="store_true", help="one prompt per category, greedy, one γ (~10 min on 2 CPU cores)"
    )
    p.add_argument("--json", type=Path, default=Path("specviz-bench.json"), help="raw timings + summary")
    p.add_argument(
        "--prompts",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help='your own prompts instead of the suite: one {"category": ..., "prompt": ...} object a line',
    )
    p.add_argument(
        "--categories", default=None, help="comma-separated (default: every category of the prompts)"
    )
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated, from: " + ", ".join(METHODS) + " (default: all; plain always runs)",
    )
    p.add_argument("--modes", default=None, help="greedy,sample (default: both; --quick: greedy)")
    p.add_argument(
        "--gammas-model", default=None, help="γ sweep for the draft model, e.g. 4,8,auto (auto = automatic γ)"
    )
    p.add_argument("--gammas-ngram", default=None, help="γ sweep for prompt lookup, e.g. 4,8,12,auto")
    p.add_argument(
        "--nodes",
        default=None,
        help=f"node budgets per iteration for the token-tree methods (tree, lookup tree, hybrid), e.g. "
        f"8,16,auto (auto = automatic budget; default: {DEFAULT_TREE_NODES} with --quick, else "
        f"{','.join(map(str, TREE_NODE_SWEEP))})",
    )
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument(
        "--draft-confidence",
        type=float,
        default=0.4,
        help="stop drafting below this draft top-prob (the run default; 0 = never stop early)",
    )
    p.add_argument(
        "--adaptive", action="store_true", help="adaptive draft length for the draft model (γ = cap)"
    )
    p.add_argument(
        "--reference-dtype",
        default=None,
        help="also time plain decoding with a copy of the target in this dtype (e.g. bfloat16, the "
        "fastest plain configuration on CPUs with native bf16); speedups are then also given "
        "against the faster of the two plain runs",
    )
    p.add_argument("--seed", type=int, default=0)
    model_args(p)


def _gammas(text: str, flag: str) -> list[GammaChoice]:
    """A γ sweep such as ``4,8,auto``: each a whole number >= 1 (a drafter drafts) or "auto"."""
    out: list[GammaChoice] = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        try:
            gamma = parse_gamma(item)
        except ValueError:
            raise ValueError(f"{flag}: γ values are whole numbers >= 1 or 'auto', not {item!r}") from None
        if gamma != "auto" and gamma < 1:
            raise ValueError(f"{flag}: γ values are whole numbers >= 1 or 'auto', not {item!r}")
        out.append(gamma)
    if not out:
        raise ValueError(f"{flag}: give at least one γ, e.g. 4,8,auto")
    return out


def _node_budgets(text: str) -> list[GammaChoice]:
    """A node-budget sweep such as ``8,16,auto``: whole numbers >= 1, or "auto" (each iteration's
    budget from the measured T(k) and the running acceptance, up to AUTO_GAMMA_CAP nodes)."""
    out: list[GammaChoice] = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        if item != "auto" and (not item.isdigit() or int(item) < 1):
            raise ValueError(
                f"--nodes: node budgets are whole numbers >= 1 or 'auto', e.g. 8,16,auto, not {item!r}"
            )
        out.append("auto" if item == "auto" else int(item))
    if not out:
        raise ValueError("--nodes: give at least one node budget, e.g. 8,16,auto")
    return out


def _positive(value: int | None, flag: str) -> int | None:
    if value is not None and value < 1:
        raise ValueError(f"{flag} must be >= 1, got {value}")
    return value


def make_plan(args: Any) -> Any:
    from specviz.bench.runner import BenchPlan

    suite = load_prompts(args.prompts) if args.prompts is not None else list(SUITE)
    known = list(dict.fromkeys(p.category for p in suite))
    categories = (
        known if args.categories is None else [c.strip() for c in args.categories.split(",") if c.strip()]
    )
    if not categories:
        raise ValueError(f"--categories: give at least one of {', '.join(known)}")
    unknown = set(categories) - set(known)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)}; known: {', '.join(known)}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if set(methods) - set(METHODS):
        raise ValueError(
            f"unknown methods {sorted(set(methods) - set(METHODS))}; known: {', '.join(METHODS)}"
        )
    if "plain" not in methods:
        methods.insert(0, "plain")  # every speedup is relative to plain decoding in the same run
    prompts = [p for p in suite if p.category in categories]
    if args.quick:
        seen: set[str] = set()
        prompts = [p for p in prompts if not (p.category in seen or seen.add(p.category))]
    modes = [m.strip() for m in (args.modes or ("greedy" if args.quick else "greedy,sample")).split(",")]
    modes = [m for m in modes if m]
    if not modes or set(modes) - set(MODES):
        raise ValueError(f"--modes: use greedy, sample or both (greedy,sample), not {args.modes!r}")
    default_gammas: list[GammaChoice] = ["auto"] if args.quick else [4, 8, 12, "auto"]
    gm = _gammas(args.gammas_model, "--gammas-model") if args.gammas_model is not None else default_gammas
    gn = _gammas(args.gammas_ngram, "--gammas-ngram") if args.gammas_ngram is not None else default_gammas
    default_nodes: list[GammaChoice] = [DEFAULT_TREE_NODES] if args.quick else list(TREE_NODE_SWEEP)
    nodes: list[GammaChoice] = _node_budgets(args.nodes) if args.nodes is not None else default_nodes
    repeats = _positive(args.repeats, "--repeats")
    max_new_tokens = _positive(args.max_new_tokens, "--max-new-tokens")
    if not 0 <= args.draft_confidence <= 1:
        raise ValueError(f"--draft-confidence must be in [0, 1] (0 = off), got {args.draft_confidence}")
    check_writable(args.json, "--json")
    return BenchPlan(
        prompts=prompts,
        methods=methods,
        modes=modes,
        gammas={
            "specviz_model": gm,
            "specviz_ngram": gn,
            **{method: nodes for method in TREE_METHODS},
            "hf_assisted": [0],
            "hf_prompt_lookup": [10],
        },
        repeats=repeats or (1 if args.quick else 3),
        max_new_tokens=max_new_tokens or (48 if args.quick else 128),
        seed=args.seed,
        draft_confidence=args.draft_confidence or None,
        adaptive=args.adaptive,
    )


def cost_ks(plan: Any, chain_max_k: int) -> list[int]:
    """The k at which the bench times T(k): every k to ``chain_max_k``; with token trees also
    TREE_COST_KS and each node budget + 1 (the rows a full tree's forward scores; an automatic
    budget's cap is AUTO_GAMMA_CAP)."""
    ks = set(range(1, chain_max_k + 1))
    budgets = [gamma_fields(g)[0] for m in TREE_METHODS if m in plan.methods for g in plan.gammas.get(m, [])]
    if budgets:
        ks |= set(TREE_COST_KS) | {b + 1 for b in budgets}
    return sorted(ks)


def main(args: Any) -> int:
    from specviz.bench.recommend import recommend
    from specviz.bench.report import (
        charts,
        environment,
        recommendations_table,
        tables,
        targets_table,
        to_json,
    )
    from specviz.bench.runner import Measurement, run_bench
    from specviz.bench.targets import check
    from specviz.commands.run import load_session, options_from_args
    from specviz.decoding.costs import measure_costs

    console = Console(highlight=False)
    try:
        plan = make_plan(args)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    needs_draft = any(m in plan.methods for m in NEEDS_DRAFT)
    options = options_from_args(args, with_draft=needs_draft)
    from specviz.models import ModelError

    try:
        session = load_session(options, console)
    except ModelError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    if "hf_assisted" in plan.methods and not session.same_vocab:
        # transformers' assisted generation needs both tokenizers for such a pair; compare like with like.
        plan.methods.remove("hf_assisted")
        console.print("[yellow]draft and target tokenizers differ: skipping hf_assisted[/yellow]")
    if not session.same_vocab:
        # A tree's draft-model nodes are target token ids: only a draft with the target's tokenizer.
        skipped = [m for m in plan.methods if m in TREE_METHODS and m in USES_DRAFT_MODEL]
        for method in skipped:
            plan.methods.remove(method)
        if skipped:
            console.print(
                f"[yellow]draft and target tokenizers differ: skipping {', '.join(skipped)}[/yellow]"
            )
    reference = None
    if args.reference_dtype:
        from specviz.decoding.backends import HFBackend
        from specviz.models import load_model

        with console.status(f"loading {args.target} in {args.reference_dtype} for the plain reference…"):
            try:
                ref = load_model(args.target, args.device, args.reference_dtype, pack=args.pack != "none")
            except ModelError as exc:
                console.print(f"[red]error:[/red] {exc}")
                return 2
        reference = HFBackend(ref.model)
        plan.methods.insert(1, "plain_reference")
        plan.reference_dtype = str(ref.dtype).removeprefix("torch.")
    env = environment(session)
    env["reference_dtype"] = plan.reference_dtype
    console.print(f"[dim]{json.dumps(env)}[/dim]")
    results: list[Measurement] = []
    costs = None
    try:
        ks = cost_ks(plan, 9 if args.quick else 16)
        with console.status(f"measuring T(k) for k up to {ks[-1]} and the draft step…"):
            costs = measure_costs(
                session.target_backend,
                session.draft_backend,
                max_k=ks[-1],
                repeats=2 if args.quick else 3,
                ks=ks,
            )
        plan.cost_ks = ks
        console.print(
            "T(k) ms: "
            + " ".join(f"{k}:{costs.verify_s[k - 1] * 1000:.0f}" for k in ks)
            + f"   draft step: {costs.draft_step_s * 1000:.0f} ms"
        )
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("benchmark", total=None)

            def report(m: Measurement, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=f"{m.category}/{m.method}")

            results = run_bench(session, plan, report, reference)
    except KeyboardInterrupt:
        plan.interrupted = True
    if plan.error:
        console.print(f"[red]error during the benchmark:[/red] {plan.error}; keeping what finished")
    elif plan.interrupted:
        console.print("[yellow]interrupted: keeping the measurements that finished[/yellow]")
    data = to_json(plan, costs, results, env)
    write_json_atomically(args.json, data)
    summary, best = data["sweep"], data["categories"]  # summarised once, inside to_json
    for table in tables(best):
        console.print(table)
    if "greedy" in best:
        console.print(targets_table(check(best)))
    console.print(recommendations_table(recommend(summary)))
    chart = charts(summary, width=max(40, min(100, console.width - 2)))
    if chart:
        console.print(Text.from_ansi(chart), soft_wrap=True)
    console.print(f"raw timings and summary: {args.json}")
    return 1 if plan.error else (130 if plan.interrupted else 0)
