#!/usr/bin/env bash
# The README's first command: install (skipped when already done), write a small example
# dataset with planted defects to ./example and curate it into ./example-lightly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
echo "==> writing ./example: 5 clusters of similar images, 4 exact duplicates, 4 corrupt files"
rm -rf example example-lightly
.venv/bin/thresher example example
echo "==> curating ./example into ./example-lightly (Prefect's embedded API starts first)"
.venv/bin/thresher run example --n-samples 10
