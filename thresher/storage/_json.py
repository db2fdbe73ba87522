"""Reading user-provided JSON files with errors that name the file."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from thresher.errors import SchemaError


def load_json(fs: Any, path: str) -> Any:
    """Parse the JSON file at ``path`` on ``fs``; SchemaError if missing or malformed."""
    try:
        with fs.open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError as e:
        raise SchemaError(path, "<file>", "file not found") from e
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SchemaError(path, "<file>", f"not valid JSON ({e})") from e


def iter_json_files(
    fs: Any, paths: Sequence[str], chunk: int = 512
) -> Iterator[tuple[int, str, Any]]:
    """Yield ``(index, path, parsed JSON)`` for each of ``paths`` that exists.

    Files are fetched ``chunk`` at a time with one batched ``fs.cat`` (a single round of
    concurrent requests on object stores). Missing files are skipped; malformed ones raise
    SchemaError naming the file.
    """
    for start in range(0, len(paths), chunk):
        part = list(paths[start : start + chunk])
        blobs = fs.cat(part, on_error="omit")
        for offset, path in enumerate(part):
            raw = blobs.get(path)
            if raw is None:
                # fsspec may key results by a normalised path; fall back to a direct read.
                if not fs.exists(path):
                    continue
                raw = fs.cat_file(path)
            try:
                data = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise SchemaError(path, "<file>", f"not valid JSON ({e})") from e
            yield start + offset, path, data
