"""Loaded models plus run settings, turned into event iterators; knows no UI."""

from __future__ import annotations

from typing import Any

from specviz.decoding.settings import RunSettings
from specviz.session.session import HFCodec, ModelOptions, Session, acceptance_rule

__all__ = ["HFCodec", "ModelOptions", "RunSettings", "Session", "acceptance_rule", "load"]


def load(target: str, draft: str | None = None, **model_options: Any) -> Session:
    """Load a target and, optionally, a draft: each a packaged name, a local folder, a .gguf file
    or a hub id (packaged models are provisioned on first use).

    ``model_options``: the other :class:`ModelOptions` fields (device, dtype, device_map,
    trust_remote_code, draft_quant, pack), with the CLI's defaults.
    """
    return Session(ModelOptions(target=target, draft=draft, **model_options))
