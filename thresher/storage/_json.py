"""Reading user-provided JSON files with errors that name the file."""

from __future__ import annotations

import json
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
