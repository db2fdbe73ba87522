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
    """The LIGHTLY location at ``url``, writable."""
    return Location(url, writable=True)


def cached(lightly: Location, key: str) -> dict[str, Any] | None:
    """The stage's manifest if its stored output is complete, else None.

    The manifest is written last and lists the stage's files, so a stage that died midway, or
    whose files were deleted since, is not complete and is computed again.
    """
    rel = f"{stage_dir(key)}/{MANIFEST}"
    if not lightly.exists(rel):
        return None
    m: dict[str, Any] = read_json(lightly, rel)
    if not all(lightly.exists(f"{stage_dir(key)}/{f}") for f in m.get("files", [])):
        return None
    return m


def write_json(lightly: Location, rel: str, obj: Any) -> None:
    """Write ``obj`` as JSON at ``rel``, atomically."""
    lightly.write_text(rel, json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=None))


def read_json(lightly: Location, rel: str) -> Any:
    """Read the JSON at ``rel``."""
    return json.loads(lightly.read_text(rel))


def write_npy(lightly: Location, rel: str, arr: np.ndarray) -> None:
    """Write ``arr`` as .npy at ``rel``, atomically."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    lightly.write_bytes(rel, buf.getvalue())


def read_npy(lightly: Location, rel: str) -> np.ndarray:
    """Read the .npy at ``rel``."""
    arr: np.ndarray = np.load(io.BytesIO(lightly.read_bytes(rel)), allow_pickle=False)
    return arr


def finish(lightly: Location, key: str, summary: dict[str, Any], files: list[str]) -> None:
    """Mark a stage's output complete: write its manifest (``summary`` plus its ``files``)."""
    write_json(lightly, f"{stage_dir(key)}/{MANIFEST}", {**summary, "files": files})
