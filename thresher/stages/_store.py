"""Reading and writing stage outputs in the LIGHTLY location."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from thresher.caching import stage_dir
from thresher.storage.location import Location

MANIFEST = "manifest.json"


def lightly_location(url: str) -> Location:
    return Location(url, writable=True)


def is_complete(lightly: Location, key: str) -> bool:
    """A stage's output is complete once its manifest is written (always last)."""
    return lightly.exists(f"{stage_dir(key)}/{MANIFEST}")


def write_json(lightly: Location, rel: str, obj: Any) -> None:
    lightly.write_text(rel, json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=None))


def read_json(lightly: Location, rel: str) -> Any:
    return json.loads(lightly.read_text(rel))


def write_npy(lightly: Location, rel: str, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    lightly.write_bytes(rel, buf.getvalue())


def read_npy(lightly: Location, rel: str) -> np.ndarray:
    return np.load(io.BytesIO(lightly.read_bytes(rel)), allow_pickle=False)  # type: ignore[no-any-return]


def finish(lightly: Location, key: str, summary: dict[str, Any]) -> None:
    write_json(lightly, f"{stage_dir(key)}/{MANIFEST}", summary)


def manifest(lightly: Location, key: str) -> dict[str, Any]:
    return read_json(lightly, f"{stage_dir(key)}/{MANIFEST}")  # type: ignore[no-any-return]
