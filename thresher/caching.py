"""Content-addressed keys for cached stage outputs.

A stage's key hashes everything its output depends on: the upstream stage's key (and so, by
induction, the input fingerprint), the stage's own config, and the code version. Equal keys mean
equal outputs, so a re-run with the same inputs reuses the stored output and a failed run resumes
from the last finished stage. Outputs live in the LIGHTLY location under
``.lightly/cache/<stage>/<key>/``, beside the run results, so any worker that can read the
LIGHTLY location can resume the run.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import thresher


@lru_cache(maxsize=1)
def code_version() -> str:
    """thresher's version plus a hash of its source: any code change invalidates every cache."""
    h = hashlib.sha256(thresher.__version__.encode())
    root = Path(thresher.__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return f"{thresher.__version__}+{h.hexdigest()[:12]}"


def digest(*parts: Any) -> str:
    """A short, stable hex digest of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def stage_key(stage: str, *parts: Any) -> str:
    """The cache key of ``stage`` for the given upstream keys and config."""
    return f"{stage}-{digest(stage, code_version(), *parts)}"


def stage_dir(key: str) -> str:
    """Where a stage's output lives, relative to the LIGHTLY root."""
    stage = key.split("-", 1)[0]
    return f".lightly/cache/{stage}/{key}"
