"""Measure speculative decoding costs on a CUDA GPU with random-weight models built from real configs.

No internet and no weights needed: the configs below are those of Qwen2.5-7B-Instruct (target) and
Qwen2.5-0.5B-Instruct (draft), written out here. Random weights give meaningless text but honest
timings: T(k) (target forward over k tokens with a KV cache, k up to 64: token trees score that
many rows), the same for a tree-shaped forward with its attention mask, the draft step, the cost
ratio c, and end-to-end tokens/s of plain decoding, a speculative chain and a draft-model token tree
with an oracle-free random draft (so acceptance is near 0). The script also reports the *predicted*
speedup from the measured costs (the bench's cost model, specviz/decoding/theory.py): for chains at
alpha = 0.6/0.8/0.9, and for trees of 16/32/64 nodes built in a few draft forwards at a given
number of tokens committed per iteration, which is what matters for choosing γ and the node budget
on this GPU.

    python scripts/gpu_bench.py --json gpu.json [--dtype bfloat16] [--context 512]
    python scripts/gpu_bench.py --device cpu --layers 1 --max-k 4 --new-tokens 4 --tree-nodes 4  # smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from specviz.decoding.backends import HFBackend
from specviz.decoding.costs import CostTable, predicted_speedup
from specviz.decoding.decoder import DecodeConfig, autoregressive_decode, speculative_decode
from specviz.decoding.drafters import ModelDrafter
from specviz.decoding.drafters.model_tree import ModelTreeDrafter
from specviz.decoding.events import Iteration, RunFinished
from specviz.decoding.sampling import SamplingConfig
from specviz.decoding.theory import expected_tokens
from specviz.decoding.tree_decoder import tree_decode

QWEN25_7B = dict(
    vocab_size=152064,
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    max_position_embeddings=32768,
    rope_theta=1e6,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
)
QWEN25_05B = dict(
    vocab_size=151936,
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1e6,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)


class _Codec:
    def token_text(self, token_id: int) -> str:
        return str(token_id)

    def decode(self, token_ids: list[int]) -> str:
        return " ".join(map(str, token_ids))


def build(config: dict, dtype: torch.dtype, device: str, seed: int) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)  # random init has no generator argument; a script, seeded per model
    with torch.device(device):
        model = Qwen2ForCausalLM(Qwen2Config(**config)).to(dtype)
    return model.eval()


def time_forward(backend: HFBackend, context: torch.Tensor, k: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        backend.reset()
        backend.forward(context, keep=1)
        backend.synchronize()
        start = time.perf_counter()
        backend.forward(context[:k], keep=k)
        backend.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_tree(k: int, seed: int) -> list[int]:
    """Parents of a random k-node tree (-1: the root), parents first, about 4 children a node."""
    gen = torch.Generator().manual_seed(seed)
    return [
        -1 if i == 0 else int(torch.randint(max(-1, i // 4 - 1), i, (1,), generator=gen)) for i in range(k)
    ]


def time_tree_forward(backend: HFBackend, context: torch.Tensor, k: int, repeats: int) -> float:
    """One forward over a k-node tree (tree attention mask) after ``context``: what a tree verify costs."""
    parents = random_tree(k, seed=k)
    times = []
    for _ in range(repeats):
        backend.reset()
        backend.forward(context, keep=1)
        backend.synchronize()
        start = time.perf_counter()
        backend.forward_tree(context[:k], parents)
        backend.synchronize()
        times.append(time.perf_counter() - start)
    backend.reset()  # closes the tree
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--max-k", type=int, default=64, help="T(k) for k up to this (trees: 64)")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--tree-nodes", type=int, default=32, help="node budget of the end-to-end tree run")
    parser.add_argument("--json", default="gpu-bench.json")
    parser.add_argument("--device", default="cuda", help="cpu only for a smoke test of this script")
    parser.add_argument("--layers", type=int, default=None, help="override layer counts (smoke tests)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            "no CUDA device: this script measures GPU costs (use --device cpu --layers 1 to smoke-test)"
        )
    dtype = getattr(torch, args.dtype)
    layers = {} if args.layers is None else {"num_hidden_layers": args.layers}
    target = HFBackend(build({**QWEN25_7B, **layers}, dtype, args.device, 0), vocab_size=151936)
    draft = HFBackend(build({**QWEN25_05B, **layers}, dtype, args.device, 1))
    gen = torch.Generator(device=args.device).manual_seed(0)
    context = torch.randint(100, 30000, (args.context,), generator=gen, device=args.device)
    time_forward(target, context, 1, 2)
    time_forward(draft, context, 1, 2)  # warm-up: kernel selection, allocator
    verify_s = [time_forward(target, context, k, 5) for k in range(1, args.max_k + 1)]
    tree_ks = sorted({k for k in (2, 4, 8, 16, 32, 64) if k <= args.max_k} | {args.max_k})
    tree_verify_s = {k: time_tree_forward(target, context, k, 5) for k in tree_ks}
    draft_s = time_forward(draft, context, 1, 10)
    # A draft-tree depth forwards the few nodes it expands (ModelTreeDrafter's ``expand``) at once.
    draft_tree_s = time_tree_forward(draft, context, min(4, args.max_k), 10)
    costs = CostTable(draft_step_s=draft_s, verify_s=tuple(verify_s), context_tokens=args.context)

    prompt = context.tolist()[:64]
    greedy = SamplingConfig(temperature=0)
    results: dict[str, float] = {}
    tree_shape: dict[str, float] = {}

    def tree_run():
        tree_drafter = ModelTreeDrafter(draft, greedy, 151936)
        config = DecodeConfig(args.new_tokens, gamma=args.tree_nodes, sampling=greedy)
        for event in tree_decode(target, tree_drafter, prompt, config, _Codec()):
            if isinstance(event, Iteration) and event.tree is not None:
                tree_shape["nodes"] = tree_shape.get("nodes", 0) + len(event.tree)
                tree_shape["iterations"] = tree_shape.get("iterations", 0) + 1
            yield event

    for name, run in (
        (
            "plain",
            lambda: autoregressive_decode(
                target, prompt, DecodeConfig(args.new_tokens, sampling=greedy), _Codec()
            ),
        ),
        (
            "speculative_g4",
            lambda: speculative_decode(
                target,
                ModelDrafter(draft, greedy, 151936),
                prompt,
                DecodeConfig(args.new_tokens, gamma=4, sampling=greedy),
                _Codec(),
            ),
        ),
        (f"tree_n{args.tree_nodes}", tree_run),
    ):
        list(run())  # warm-up
        tree_shape.clear()
        target.synchronize()
        start = time.perf_counter()
        done = [e for e in run() if isinstance(e, RunFinished)][-1]
        target.synchronize()
        results[name] = len(done.token_ids) / (time.perf_counter() - start)

    predictions = {
        f"alpha={a}": {g: predicted_speedup(costs, g, expected_tokens(a, g), True) for g in (2, 4, 6, 8)}
        for a in (0.6, 0.8, 0.9)
    }
    # A tree of n nodes built in 1 + 5 draft forwards (catch-up + 5 depths), committing t tokens
    # per iteration: the bench's cost model, on this GPU's T(n + 1) and draft step.
    tree_predictions = {
        f"nodes={n}": {
            f"tokens={t}": predicted_speedup(costs, n, t, True, draft_forwards_per_iteration=6)
            for t in (3, 4, 5, 6)
        }
        for n in (16, 32, 64)
        if n < args.max_k
    }
    report = {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device,
        "dtype": args.dtype,
        "torch": torch.__version__,
        "T(k)_ms": [round(t * 1000, 3) for t in verify_s],
        "T(k)/T(1)": [round(t / verify_s[0], 3) for t in verify_s],
        "T_tree(k)_ms": {k: round(t * 1000, 3) for k, t in tree_verify_s.items()},
        "T_tree(k)/T(k)": {k: round(t / verify_s[k - 1], 3) for k, t in tree_verify_s.items()},
        "draft_step_ms": round(draft_s * 1000, 3),
        "draft_tree_step_ms (4 nodes)": round(draft_tree_s * 1000, 3),
        "c": round(draft_s / verify_s[0], 4),
        "tokens_per_s": results,
        "tree_nodes_per_iteration": (
            round(tree_shape["nodes"] / tree_shape["iterations"], 2) if tree_shape.get("iterations") else None
        ),
        "note": "random weights: acceptance is ~0, so speculative end-to-end is a lower bound; see predictions",
        "predicted_speedup": predictions,
        "predicted_tree_speedup": tree_predictions,
    }
    print(json.dumps(report, indent=1))
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
