"""Reading and writing stage outputs in the LIGHTLY location."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from thresher.caching import stage_dir
from thresher.storage.embeddings_npy import local_copy, open_npy, streamed_write
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


def write_npy_rows(
    lightly: Location, rel: str, shape: tuple[int, int], chunks: Iterable[np.ndarray]
) -> None:
    """Write a float32 ``shape`` .npy at ``rel`` from row chunks, atomically.

    The rows are streamed to a file (:func:`~thresher.storage.embeddings_npy.streamed_write`),
    so the array is never whole in memory. The chunks must hold exactly ``shape[0]`` rows of
    ``shape[1]`` values.
    """
    n, d = shape
    with streamed_write(lightly, rel) as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (n, d)}
        )
        written = 0
        for chunk in chunks:
            c = np.ascontiguousarray(chunk, dtype="<f4")
            if c.ndim != 2 or c.shape[1] != d:
                raise ValueError(f"{rel}: a chunk of shape {c.shape} for ({n}, {d}) rows")
            fh.write(c.tobytes())
            written += c.shape[0]
        if written != n:
            raise ValueError(f"{rel}: {written} rows were written for {n}")


def open_npy_rows(lightly: Location, rel: str) -> np.ndarray:
    """The .npy at ``rel`` memory-mapped read-only (a cached local copy for a bucket)."""
    return open_npy(local_copy(lightly, rel), lightly.child(rel).display)


def finish(lightly: Location, key: str, summary: dict[str, Any], files: list[str]) -> None:
    """Mark a stage's output complete: write its manifest (``summary`` plus its ``files``)."""
    write_json(lightly, f"{stage_dir(key)}/{MANIFEST}", {**summary, "files": files})
