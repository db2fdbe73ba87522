#!/usr/bin/env bash
# Install thresher into ./.venv. torch and torchvision are pinned and installed first: anything
# that depends on torch, installed before it, would pull the newest torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q -U pip
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install -q -e ".[dev,cloud,bench]"
echo "thresher installed in $(pwd)/.venv ($(.venv/bin/thresher --help >/dev/null && echo ok))"
