#!/usr/bin/env bash
# Sets up everything the job and the tests need, from nothing: Java 17 (apt) when missing, a virtual
# environment in .venv with the CPU build of torch and the package installed in editable mode.
# Idempotent: a stamp keyed on setup.py skips the pip work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v java >/dev/null 2>&1; then
  echo "setup: installing Java 17 (openjdk-17-jre-headless)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.setup-$(cat setup.py scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch before the rest, pinned: an unpinned torch pulls several GB of CUDA packages. Where pip's
  # configured index serves CUDA builds, TORCH_INDEX_URL (e.g. PyTorch's CPU wheel index) picks the build.
  .venv/bin/python -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0
  .venv/bin/python -m pip install -q -e ".[spark,test]"
  # Real third-party instruction text for the tests (data/README.md): lm-eval ships FLAN's MMLU
  # chain-of-thought exemplars as a data file; only that file is read, so none of its dependencies.
  .venv/bin/python -m pip install -q --no-deps lm-eval==0.4.13
  touch "$stamp"
fi
