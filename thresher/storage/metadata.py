"""Reader for the ``.lightly/metadata/`` format (custom per-sample metadata).

Layout in the LIGHTLY location::

    .lightly/metadata/schema.json
        [{"name", "path": "weather.temperature", "defaultValue", "valueDataType"}, ...]
    .lightly/metadata/<relpath-without-ext>.json
        {"file_name": "<relpath>", "type": "image" | "video" | "frame", "metadata": {...}}

A missing file or key takes the schema's ``defaultValue`` (NaN / None when there is none).
Numeric types give float64 arrays; categorical types give object arrays of strings (booleans
as ``"true"``/``"false"``, integers as their decimal text), so BALANCE targets are written as
strings. Any mismatch raises :class:`~thresher.errors.SchemaError` naming the file and field.

Example:
    >>> values = read_metadata("file:///data/lightly", ["a.jpg"], ["weather.temperature"])
    ... # doctest: +SKIP
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from fsspec.core import url_to_fs
from numpy.typing import NDArray

from thresher.errors import SchemaError
from thresher.storage._json import iter_json_files, load_json

NUMERIC_TYPES = ("NUMERIC_INT", "NUMERIC_FLOAT", "NUMERICAL_INT", "NUMERICAL_FLOAT")
CATEGORICAL_TYPES = (
    "CATEGORICAL_INT",
    "CATEGORICAL_STRING",
    "CATEGORICAL_BOOLEAN",
    "CATEGORICAL_DATETIME",
    "CATEGORICAL_TIMESTAMP",
)
FILE_TYPES = ("image", "video", "frame")
_CAT_CHUNK = 512


@dataclass(frozen=True)
class MetadataField:
    """One entry of ``metadata/schema.json``."""

    name: str
    path: str
    value_type: str
    default: Any

    @property
    def numeric(self) -> bool:
        """Whether the values are numbers (else categories)."""
        return self.value_type in NUMERIC_TYPES


def metadata_path(root: str, filename: str) -> str:
    """The per-file JSON path of ``filename`` (relative to INPUT)."""
    stem = posixpath.splitext(filename)[0]
    return posixpath.join(root, ".lightly", "metadata", stem + ".json")


def read_metadata_schema(
    lightly_url: str, storage_options: dict[str, Any] | None = None
) -> dict[str, MetadataField]:
    """The fields of ``.lightly/metadata/schema.json``, keyed by ``path``."""
    fs, root = url_to_fs(lightly_url, **(storage_options or {}))
    path = posixpath.join(root, ".lightly", "metadata", "schema.json")
    return _parse_schema(load_json(fs, path), path)


def _check_value(value: Any, value_type: str) -> bool:
    if value_type in ("NUMERIC_INT", "NUMERICAL_INT", "CATEGORICAL_INT"):
        return isinstance(value, int) and not isinstance(value, bool)
    if value_type in ("NUMERIC_FLOAT", "NUMERICAL_FLOAT"):
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (math.isfinite(value))
        )
    if value_type == "CATEGORICAL_BOOLEAN":
        return isinstance(value, bool)
    if value_type == "CATEGORICAL_TIMESTAMP":
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    return isinstance(value, str)


def _parse_schema(data: Any, path: str) -> dict[str, MetadataField]:
    if not isinstance(data, list):
        raise SchemaError(path, "<root>", "must be a list of {name, path, defaultValue, ...}")
    out: dict[str, MetadataField] = {}
    for j, e in enumerate(data):
        where = f"[{j}]"
        if not isinstance(e, dict):
            raise SchemaError(path, where, "must be an object")
        name, key, vtype = e.get("name"), e.get("path"), e.get("valueDataType")
        if not isinstance(name, str) or not name:
            raise SchemaError(path, f"{where}.name", "must be a non-empty string")
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise SchemaError(path, f"{where}.path", "must be dot-joined keys, e.g. 'a.b'")
        if key.split(".")[0] == "lightly":
            raise SchemaError(path, f"{where}.path", "the top-level key 'lightly' is reserved")
        if vtype not in NUMERIC_TYPES + CATEGORICAL_TYPES:
            raise SchemaError(
                path,
                f"{where}.valueDataType",
                f"must be one of {', '.join(NUMERIC_TYPES + CATEGORICAL_TYPES)}",
            )
        default = e.get("defaultValue")
        if default is not None and not _check_value(default, vtype):
            raise SchemaError(path, f"{where}.defaultValue", f"is not a {vtype} value")
        if key in out:
            raise SchemaError(path, f"{where}.path", f"duplicate path {key!r}")
        out[key] = MetadataField(name=name, path=key, value_type=str(vtype), default=default)
    return out


def _category(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_metadata(
    lightly_url: str,
    filenames: Sequence[str],
    keys: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, NDArray[Any]]:
    """Read metadata values for ``filenames``.

    Args:
        lightly_url: The LIGHTLY location (local path or fsspec URL).
        filenames: The run's filenames, relative to the INPUT root.
        keys: Key paths to read (``weather.temperature``); None reads every schema field.
        storage_options: Passed to fsspec.

    Returns:
        key path -> (N,) array: float64 for numeric fields (NaN where missing without a
        default), object array of ``str | None`` for categorical ones.

    Raises:
        SchemaError: naming the file and field of any mismatch, or a key not in the schema.
    """
    fs, root = url_to_fs(lightly_url, **(storage_options or {}))
    schema_path = posixpath.join(root, ".lightly", "metadata", "schema.json")
    schema = _parse_schema(load_json(fs, schema_path), schema_path)
    wanted = list(schema) if keys is None else list(keys)
    for k in wanted:
        if k not in schema:
            raise SchemaError(
                schema_path, k, f"key not in the schema (known: {', '.join(schema) or 'none'})"
            )
    n = len(filenames)
    out: dict[str, NDArray[Any]] = {}
    for k in wanted:
        f = schema[k]
        if f.numeric:
            out[k] = np.full(n, np.nan if f.default is None else float(f.default), np.float64)
        else:
            out[k] = np.full(n, _category(f.default), dtype=object)
    paths = [metadata_path(root, fn) for fn in filenames]
    for i, p, data in iter_json_files(fs, paths, _CAT_CHUNK):
        _parse_file(data, p, schema, wanted, i, out)
    return out


def _parse_file(
    data: Any,
    path: str,
    schema: dict[str, MetadataField],
    wanted: list[str],
    i: int,
    out: dict[str, NDArray[Any]],
) -> None:
    if not isinstance(data, dict):
        raise SchemaError(path, "<root>", "must be an object {file_name, type, metadata}")
    if not isinstance(data.get("file_name"), str):
        raise SchemaError(path, "file_name", "must be a string (path relative to INPUT)")
    if data.get("type", "image") not in FILE_TYPES:
        raise SchemaError(path, "type", f"must be one of {', '.join(FILE_TYPES)}")
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        raise SchemaError(path, "metadata", "must be an object")
    for k in wanted:
        node: Any = meta
        for part in k.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is None:
            continue
        f = schema[k]
        if not _check_value(node, f.value_type):
            raise SchemaError(
                path, f"metadata.{k}", f"must be a {f.value_type} value, got {node!r}"
            )
        out[k][i] = float(node) if f.numeric else _category(node)
