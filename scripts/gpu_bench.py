"""Measure speculative decoding costs on a CUDA GPU with random-weight models built from real configs.

No internet and no weights needed: the configs below are those of Qwen2.5-7B-Instruct (target) and
Qwen2.5-0.5B-Instruct (draft), written out here. Random weights give meaningless text but honest
timings: T(k) (target forward over k tokens with a KV cache), the draft step, the cost ratio c, and
end-to-end tokens/s of plain vs speculative decoding with an oracle-free random draft (so acceptance
is near 0; the script also reports the *predicted* speedup at alpha = 0.6/0.8/0.9 from the measured
costs, which is what matters for choosing gamma on this GPU).

    python scripts/gpu_bench.py --json gpu.json [--dtype bfloat16] [--context 512]
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
from specviz.decoding.events import RunFinished
from specviz.decoding.sampling import SamplingConfig
from specviz.decoding.theory import expected_tokens

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--max-k", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
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
    draft_s = time_forward(draft, context, 1, 10)
    costs = CostTable(draft_step_s=draft_s, verify_s=tuple(verify_s), context_tokens=args.context)

    prompt = context.tolist()[:64]
    greedy = SamplingConfig(temperature=0)
    results = {}
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
    ):
        list(run())  # warm-up
        target.synchronize()
        start = time.perf_counter()
        done = [e for e in run() if isinstance(e, RunFinished)][-1]
        target.synchronize()
        results[name] = len(done.token_ids) / (time.perf_counter() - start)

    predictions = {
        f"alpha={a}": {g: predicted_speedup(costs, g, expected_tokens(a, g), True) for g in (2, 4, 6, 8)}
        for a in (0.6, 0.8, 0.9)
    }
    report = {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device,
        "dtype": args.dtype,
        "torch": torch.__version__,
        "T(k)_ms": [round(t * 1000, 3) for t in verify_s],
        "T(k)/T(1)": [round(t / verify_s[0], 3) for t in verify_s],
        "draft_step_ms": round(draft_s * 1000, 3),
        "c": round(draft_s / verify_s[0], 4),
        "tokens_per_s": results,
        "note": "random weights: acceptance is ~0, so speculative end-to-end is a lower bound; see predictions",
        "predicted_speedup": predictions,
    }
    print(json.dumps(report, indent=1))
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
