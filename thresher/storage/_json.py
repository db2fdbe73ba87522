"""Reading user-provided JSON files with errors that name the file and the field.

The files' shapes are pydantic models; :func:`validate` turns pydantic's errors into one
:class:`~thresher.errors.SchemaError` naming the file and the field path, with the field's
``description`` as the message where the model gives one (``must be [x, y, w, h] in pixels``).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from thresher.errors import SchemaError
from thresher.storage.location import Location

M = TypeVar("M", bound=BaseModel)


class FileModel(BaseModel):
    """Base of the file models: extra keys are allowed (Lightly's formats have optional ones)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    # The message when the file (or entry) is not a JSON object at all.
    shape: ClassVar[str] = "must be an object"


def where(loc: Location, rel: str) -> str:
    """The file's name for messages: the location's URL (credentials removed) and ``rel``."""
    return loc.child(rel).display


def parse_json(raw: bytes, name: str) -> Any:
    """Parse JSON bytes; SchemaError naming ``name`` if malformed."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise SchemaError(
            name,
            "<file>",
            f"not valid JSON ({e.msg}, line {e.lineno}, column {e.colno}); fix the file there "
            "(a truncated file, or a missing comma or quote, is the usual cause)",
        ) from e
    except UnicodeDecodeError as e:
        raise SchemaError(
            name, "<file>", f"not UTF-8 text (byte {e.start}); save the file as UTF-8 JSON"
        ) from e


def load_json(loc: Location, rel: str, missing: str = "") -> Any:
    """Parse the JSON file ``rel`` of ``loc``; SchemaError if missing or malformed.

    Args:
        loc: The location (LIGHTLY).
        rel: The file's path in it.
        missing: What to do when the file is not there, for the message.
    """
    if not loc.exists(rel):
        fix = f"; {missing}" if missing else "; create it there"
        raise SchemaError(where(loc, rel), "<file>", f"file not found{fix}")
    return parse_json(loc.read_bytes(rel), where(loc, rel))


def iter_json(loc: Location, rels: Sequence[str], chunk: int = 512) -> Iterator[tuple[int, Any]]:
    """``(index, parsed JSON)`` for each of ``rels`` that exists; missing files are skipped."""
    for i, raw in loc.read_many(rels, chunk):
        yield i, parse_json(raw, where(loc, rels[i]))


def _field_path(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``M``, ``list[M]``, ``M | None`` ..., else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _description(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str | None:
    """The ``description`` of the model field that ``loc`` points into, if any."""
    desc: str | None = None
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        field = model.model_fields[part]
        desc = field.description
        model = _model_in(field.annotation)
    return desc


def validate(model: type[M], data: Any, name: str, *, prefix: str = "", context: Any = None) -> M:
    """Validate ``data`` as ``model``; one SchemaError naming the file and field on failure.

    Args:
        model: The pydantic model of the file (or of one entry of it).
        data: The parsed JSON.
        name: The file's name for the message.
        prefix: The field path of ``data`` inside the file (``[3]`` for an entry of a list).
        context: Passed to the model's validators (e.g. the task's categories).

    Raises:
        SchemaError: naming ``name``, the field path (``predictions[0].bbox``) and what the
            field must be (the field's ``description``, or the validator's message).
    """
    if not isinstance(data, dict):
        raise SchemaError(name, prefix or "<root>", getattr(model, "shape", "must be an object"))
    try:
        return model.model_validate(data, context=context)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = tuple(err.get("loc", ()))
        msg = str(err.get("msg", "invalid value"))
        path = _field_path(prefix, loc)
        if msg.startswith("Value error, "):
            # A validator names the field it checked: "bbox: must be [x, y, w, h] in pixels".
            problem = msg[len("Value error, ") :]
            m = re.match(r"([\w.\[\]]+): (.*)", problem, re.S)
            if m:
                sub, problem = m.groups()
                path = f"{path}.{sub}" if path != "<root>" else sub
        else:
            problem = _description(model, loc) or msg[:1].lower() + msg[1:]
            if err.get("type") == "missing":
                problem = f"missing; it {problem}"
        raise SchemaError(name, path, problem) from e


def check_file_name(file_name: str, filename: str, name: str) -> bool:
    """Whether a per-file JSON (predictions or metadata) holds the values of ``filename``.

    The JSON's path says which image it is for (``<image path without extension>.json``); its
    ``file_name`` must agree. Two images that differ only in their extension (``a.jpg``,
    ``a.png``) share one JSON path: then the JSON belongs to the one it names, and False is
    returned for the other.

    Raises:
        SchemaError: ``file_name`` names an image the JSON's path does not belong to.
    """
    if file_name == filename:
        return True
    if posixpath.splitext(file_name)[0] == posixpath.splitext(filename)[0]:
        return False
    raise SchemaError(
        name,
        "file_name",
        f"is {file_name!r}, but this file's path makes it the file of {filename!r}; set "
        f"file_name to {filename!r}, or move the file to the path of {file_name!r} (its path "
        "relative to INPUT, without the extension, plus .json)",
    )


def unmatched_files(lightly: Location, folder: str, input_names: Sequence[str]) -> list[str]:
    """The per-file JSONs under ``folder`` that belong to no image of ``input_names``.

    Args:
        lightly: The LIGHTLY location.
        folder: ``.lightly/predictions/<task>`` or ``.lightly/metadata``.
        input_names: Every image listed in INPUT, relative to its root.

    Returns:
        The paths (relative to ``folder``) of JSON files other than ``schema.json`` and
        ``tasks.json`` whose path is not ``<image path without extension>.json`` of any image.
    """
    if not lightly.exists(folder):
        return []
    stems = {posixpath.splitext(n)[0] for n in input_names}
    out = []
    for f in lightly.child(folder).list_files((".json",), skip_dirs=()):
        if f.name in ("schema.json", "tasks.json"):
            continue
        if posixpath.splitext(f.name)[0] not in stems:
            out.append(f.name)
    return out
