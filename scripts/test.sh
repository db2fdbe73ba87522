#!/usr/bin/env bash
# Run the test suite (the README's second command). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest -q -m "not slow" "$@"
