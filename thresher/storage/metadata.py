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
    >>> lightly = Location("/data/lightly")
    >>> values = read_metadata(lightly, ["a.jpg"], ["weather.temperature"])  # doctest: +SKIP
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator, model_validator

from thresher.errors import SchemaError
from thresher.storage._json import (
    FileModel,
    check_file_name,
    iter_json,
    load_json,
    validate,
    where,
)
from thresher.storage.location import Location

NumericType = Literal["NUMERIC_INT", "NUMERIC_FLOAT", "NUMERICAL_INT", "NUMERICAL_FLOAT"]
CategoricalType = Literal[
    "CATEGORICAL_INT",
    "CATEGORICAL_STRING",
    "CATEGORICAL_BOOLEAN",
    "CATEGORICAL_DATETIME",
    "CATEGORICAL_TIMESTAMP",
]
ValueType = Literal[NumericType, CategoricalType]
NUMERIC_TYPES: tuple[str, ...] = get_args(NumericType)
CATEGORICAL_TYPES: tuple[str, ...] = get_args(CategoricalType)
FileType = Literal["image", "video", "frame"]
FILE_TYPES: tuple[str, ...] = get_args(FileType)
SCHEMA_FILE = ".lightly/metadata/schema.json"
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


def metadata_path(filename: str) -> str:
    """The per-file JSON of ``filename`` (relative to INPUT), relative to the LIGHTLY root."""
    stem = posixpath.splitext(filename)[0]
    return f".lightly/metadata/{stem}.json"


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


class _SchemaEntry(FileModel):
    shape: ClassVar[str] = "must be an object"

    name: str = Field(min_length=1, description="must be a non-empty string")
    path: str = Field(description="must be dot-joined keys, e.g. 'a.b'")
    valueDataType: ValueType = Field(  # the JSON key
        description=f"must be one of {', '.join(NUMERIC_TYPES + CATEGORICAL_TYPES)}"
    )
    defaultValue: Any = None  # the JSON key

    @field_validator("path")
    @classmethod
    def _key_path(cls, v: str) -> str:
        if not v or any(not p for p in v.split(".")):
            raise ValueError(f"must be dot-joined keys, e.g. 'a.b', got {v!r}")
        if v.split(".")[0] == "lightly":
            raise ValueError(
                "the top-level key 'lightly' is reserved for the built-in metadata; rename it"
            )
        return v

    @model_validator(mode="after")
    def _default_fits(self) -> _SchemaEntry:
        if self.defaultValue is not None and not _check_value(
            self.defaultValue, self.valueDataType
        ):
            raise ValueError(
                f"defaultValue: must be a {self.valueDataType} value (as valueDataType says), "
                f"got {self.defaultValue!r}"
            )
        return self


class _MetadataFile(FileModel):
    shape: ClassVar[str] = "must be an object {file_name, type, metadata}"

    file_name: str = Field(description="must be a string (path relative to INPUT)")
    type: FileType = Field("image", description=f"must be one of {', '.join(FILE_TYPES)}")
    metadata: dict[str, Any] = Field(description="must be an object")


def read_metadata_schema(lightly: Location) -> dict[str, MetadataField]:
    """The fields of ``.lightly/metadata/schema.json``, keyed by ``path``."""
    name = where(lightly, SCHEMA_FILE)
    data = load_json(
        lightly,
        SCHEMA_FILE,
        "a METADATA input with a custom key needs it: a list of "
        '{"name", "path", "defaultValue", "valueDataType"}',
    )
    if not isinstance(data, list):
        raise SchemaError(
            name, "<root>", "must be a list of {name, path, defaultValue, valueDataType}"
        )
    out: dict[str, MetadataField] = {}
    for j, raw in enumerate(data):
        e = validate(_SchemaEntry, raw, name, prefix=f"[{j}]")
        if e.path in out:
            raise SchemaError(
                name, f"[{j}].path", f"duplicate path {e.path!r}; each path must appear once"
            )
        out[e.path] = MetadataField(e.name, e.path, e.valueDataType, e.defaultValue)
    return out


def _category(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_metadata(
    lightly: Location,
    filenames: Sequence[str],
    keys: Sequence[str] | None = None,
) -> dict[str, NDArray[Any]]:
    """Read metadata values for ``filenames``.

    Args:
        lightly: The LIGHTLY location.
        filenames: The run's filenames, relative to the INPUT root.
        keys: Key paths to read (``weather.temperature``); None reads every schema field.

    Returns:
        key path -> (N,) array: float64 for numeric fields (NaN where missing without a
        default), object array of ``str | None`` for categorical ones.

    Raises:
        SchemaError: naming the file and field of any mismatch, or a key not in the schema.
    """
    schema = read_metadata_schema(lightly)
    wanted = list(schema) if keys is None else list(keys)
    for k in wanted:
        if k not in schema:
            raise SchemaError(
                where(lightly, SCHEMA_FILE),
                k,
                f"key not in the schema (known: {', '.join(schema) or 'none'}); add an entry "
                "with this path, or use one of the known keys",
            )
    n = len(filenames)
    out: dict[str, NDArray[Any]] = {}
    for k in wanted:
        f = schema[k]
        if f.numeric:
            out[k] = np.full(n, np.nan if f.default is None else float(f.default), np.float64)
        else:
            out[k] = np.full(n, _category(f.default), dtype=object)
    rels = [metadata_path(fn) for fn in filenames]
    for i, data in iter_json(lightly, rels, _CAT_CHUNK):
        name = where(lightly, rels[i])
        parsed = validate(_MetadataFile, data, name)
        if check_file_name(parsed.file_name, filenames[i], name):
            _store_values(parsed.metadata, name, schema, wanted, i, out)
    return out


def _store_values(
    meta: dict[str, Any],
    name: str,
    schema: dict[str, MetadataField],
    wanted: list[str],
    i: int,
    out: dict[str, NDArray[Any]],
) -> None:
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
                name,
                f"metadata.{k}",
                f"must be a {f.value_type} value (schema.json says so), got {node!r}",
            )
        out[k][i] = float(node) if f.numeric else _category(node)
