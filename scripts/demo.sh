#!/usr/bin/env bash
# Install, make a small example dataset and curate it: the README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
rm -rf example example-lightly
.venv/bin/thresher example example
.venv/bin/thresher run example --n-samples 10
