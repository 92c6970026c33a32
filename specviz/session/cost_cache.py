"""Measured decoding costs for automatic γ, kept per machine and model setup.

Measuring T(k) takes a few seconds to a minute on a CPU, and the answer only depends on the
hardware, the software and how the models are loaded, so it is measured once per such setup and
stored in the per-user cache (``costs/`` there); delete a file to measure again. The table and
its measurement are :mod:`specviz.decoding.costs`; this module only keys and stores them.
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

from specviz.decoding.backends import CausalLM
from specviz.decoding.costs import CostTable, measure_pacing_costs
from specviz.models import cache_dir


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
        table = CostTable.from_json(json.loads(path.read_text()))
        if table.max_draft + 1 >= max_k:
            return table.up_to(max_k)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # missing or unreadable: measure again
    report(f"measuring verify cost T(k) for k ≤ {max_k} (once per setup)")
    table = measure_pacing_costs(target, draft, max_k)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(table.to_json()))
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache only costs a re-measurement next time
    return table
