#!/usr/bin/env bash
# Install thresher into ./.venv (about 7 GB: torch's CUDA build, which runs on the CPU too).
#
# torch and torchvision are pinned and installed first: anything that depends on torch,
# installed before it, would pull the newest torch. A stamp in .venv holds a hash of
# pyproject.toml and this script; while neither changes, a second run skips pip and returns in
# a second. THRESHER_REINSTALL=1 (or deleting .venv/.thresher-installed) forces a reinstall.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
STAMP=.venv/.thresher-installed
SHA="$(command -v sha256sum || echo "shasum -a 256")"
want="$(cat pyproject.toml scripts/install.sh | $SHA | cut -d' ' -f1)"

if [ "${THRESHER_REINSTALL:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && .venv/bin/thresher --version >/dev/null 2>&1; then
  echo "==> thresher is already installed in $(pwd)/.venv ($(.venv/bin/thresher --version));" \
       "skipping pip (THRESHER_REINSTALL=1 reinstalls)"
  exit 0
fi

free_kb="$(df -Pk . | awk 'NR==2 {print $4}')"
if [ "${free_kb:-0}" -lt $((8 * 1024 * 1024)) ]; then
  echo "==> warning: $((free_kb / 1024 / 1024)) GB free here; the install needs about 7 GB" >&2
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> [1/4] creating .venv with $("$PY" --version 2>&1) ($PY)"
  "$PY" -m venv .venv
else
  echo "==> [1/4] using the existing .venv ($(.venv/bin/python --version 2>&1))"
fi
rm -f "$STAMP"  # until this install has finished

echo "==> [2/4] upgrading pip"
.venv/bin/python -m pip install -q -U pip

# pip's own lines show each download with its size (and a progress bar on a terminal).
echo "==> [3/4] torch 2.14.1 and torchvision 0.29.1 with NVIDIA's CUDA libraries:" \
     "about 5 GB installed, the longest step (minutes)"
.venv/bin/python -m pip install --progress-bar on "torch==2.14.1" "torchvision==0.29.1"

echo "==> [4/4] thresher and its other dependencies (Prefect, lightly, faiss, OpenVINO, cloud storage," \
     "test tools): about 2 GB"
.venv/bin/python -m pip install --progress-bar on -e ".[dev,cloud,bench,int8]"

version="$(.venv/bin/thresher --version)"
echo "$want" > "$STAMP"
echo "==> $version installed in $(pwd)/.venv; a second run of this script skips the install"
