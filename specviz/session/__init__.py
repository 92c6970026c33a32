"""Loaded models plus run settings, turned into event iterators; knows no UI."""

from specviz.session.session import (
    AUTO_GAMMA_CAP,
    HFCodec,
    ModelOptions,
    RunSettings,
    Session,
    acceptance_rule,
)

__all__ = ["AUTO_GAMMA_CAP", "HFCodec", "ModelOptions", "RunSettings", "Session", "acceptance_rule"]
