"""Measured decoding costs for automatic γ, kept per machine and model setup.

Measuring T(k) takes a few seconds to a minute on a CPU, and the answer only depends on the
hardware, the software and how the models are loaded, so it is measured once per such setup and
stored in the per-user cache (``costs/`` there); delete a file to measure again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from specviz.bench.costs import probe_tokens, time_draft_step, time_verify
from specviz.decoding.backends import CausalLM
from specviz.decoding.drafters.paced import CostTable, interpolate_costs
from specviz.models import cache_dir

# T(k) is close to linear between these on the machines measured so far; the rest is interpolated.
_MEASURED_KS = (1, 2, 3, 4, 6, 8, 12, 17)
_CONTEXT_TOKENS = 96
_REPEATS = 3


def costs_dir() -> Path:
    """``$SPECVIZ_COSTS`` if set (tests point it at a temporary folder), else ``costs/`` in the cache."""
    override = os.environ.get("SPECVIZ_COSTS")
    return Path(override).expanduser() if override else cache_dir() / "costs"


def setup_key(fields: dict[str, Any]) -> str:
    """A stable key for what the costs depend on: models, loading options, software, hardware."""
    described = dict(
        fields,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        machine=platform.machine(),
        processor=_cpu_name(),
        cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    )
    blob = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def measure(target: CausalLM, draft: CausalLM | None, max_k: int, seed: int = 0) -> CostTable:
    context, new = probe_tokens(target, _CONTEXT_TOKENS, max_k, seed)
    ks = sorted({k for k in _MEASURED_KS if k < max_k} | {max_k})
    # The fastest repeat, not the median: what slows a repeat down is other load on the machine,
    # and this table is kept. Scoring more tokens never costs less, so a k that still measured
    # above a larger one was disturbed: it takes the larger k's time.
    verify = time_verify(target, context, new, ks, _REPEATS, reduce=min)
    for small, large in zip(ks[-2::-1], ks[:0:-1], strict=True):
        verify[small] = min(verify[small], verify[large])
    draft_s = time_draft_step(draft, context, new, _REPEATS * 2, reduce=min)
    return interpolate_costs(draft_s, verify, max_k)


def load_or_measure(
    key: str,
    target: CausalLM,
    draft: CausalLM | None,
    max_k: int,
    report: Callable[[str], None] = lambda _: None,
) -> CostTable:
    """The stored table for ``key`` if it covers ``max_k``, else a fresh measurement (then stored)."""
    path = costs_dir() / f"{key}.json"
    try:
        data = json.loads(path.read_text())
        table = CostTable(float(data["draft_step_s"]), tuple(float(t) for t in data["verify_s"]))
        if table.max_draft + 1 >= max_k:
            return CostTable(table.draft_step_s, table.verify_s[:max_k])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or unreadable: measure again
    report(f"measuring verify cost T(k) for k ≤ {max_k} (once per setup)")
    table = measure(target, draft, max_k)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"draft_step_s": table.draft_step_s, "verify_s": list(table.verify_s)}))
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache only costs a re-measurement next time
    return table
