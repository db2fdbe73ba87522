"""Shared machinery for the config models: strict keys, suggestions, one error format.

Every config model subclasses :class:`StrictModel`. Unknown keys are rejected with the closest
valid name suggested; :func:`parse_config` validates once at the edge (CLI, flow parameter,
client) and turns pydantic's errors into a single :class:`~thresher.errors.ConfigError` whose
message names each wrong key by its full dotted path.
"""

from __future__ import annotations

import difflib
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from thresher.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate that looks most like ``name``, or None if none is close."""
    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return matches[0] if matches else None


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and suggests the closest valid one."""

    # strict: true is not the count 1, "4" is not a number, 2.5 is not a whole number.
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        valid: list[str] = []
        for name, field in cls.model_fields.items():
            valid.append(name)
            if field.alias:
                valid.append(field.alias)
        unknown = [k for k in data if k not in valid]
        if unknown:
            key = str(unknown[0])
            guess = closest(key, valid)
            hint = f" Did you mean '{guess}'?" if guess else ""
            raise PydanticCustomError(
                "unknown_key",
                "Unknown key '{key}'.{hint} Valid keys here: {valid}",
                {"key": key, "hint": hint, "valid": ", ".join(sorted(valid))},
            )
        return data


def _unwrap(annotation: Any) -> Any:
    """``X`` for ``Annotated[X, ...]`` and ``X | None``; other annotations as they are."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
            annotation = args[0]
            continue
        return annotation


def _members(annotation: Any) -> list[Any]:
    """The members of a union annotation (``[annotation]`` when it is not a union)."""
    annotation = _unwrap(annotation)
    if get_origin(annotation) in (Union, UnionType):
        return [_unwrap(a) for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _tag_of(cls: Any) -> str | None:
    """The ``type`` tag of a discriminated-union member class, e.g. ``"DIVERSITY"``."""
    if isinstance(cls, type) and issubclass(cls, BaseModel) and "type" in cls.model_fields:
        values = get_args(cls.model_fields["type"].annotation)
        return str(values[0]) if values else None
    return None


def _clean_loc(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, str]:
    """The user's dotted key of a pydantic ``loc``, and the union member it went through.

    Pydantic puts the union member it tried into ``loc`` (``DIVERSITY`` for a discriminated
    union, ``int`` or ``list[int]`` for a plain one); those are not keys the user wrote, so they
    are left out of the path and the discriminator tag is returned to mention in the message.
    """
    parts: list[str] = []
    tag = ""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            parts.append(f"[{part}]")
            args = get_args(current)
            current = args[0] if args else None
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            parts.append(f".{part}")
            field = current.model_fields.get(str(part))
            current = field.annotation if field is not None else None
            continue
        members = _members(current)
        if len(members) > 1 or get_origin(current) is not dict:
            # A union member label: a discriminator tag or a type name such as 'int'.
            chosen = [m for m in members if _tag_of(m) == part]
            if chosen:
                tag = str(part)
                current = chosen[0]
            else:
                current = None
            continue
        parts.append(f".{part}")  # a key of a mapping, e.g. BALANCE's target
        args = get_args(current)
        current = args[1] if len(args) == 2 else None
    return "".join(parts), tag


def _tags_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The ``type`` tags of the discriminated union at ``loc`` (empty if there is none)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field is not None else None
    return [t for t in (_tag_of(m) for m in _members(current)) if t]


def _bound(ctx: dict[str, Any], key: str) -> str:
    value = ctx.get(key)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _problem(item: Any, owner: str) -> str:
    """What the value must be, from one pydantic error, in the words every message uses.

    ``owner`` is, for a key of a tagged class, e.g. ``"a PREDICTIONS input"``, else empty.
    """
    kind = str(item.get("type", ""))
    ctx = dict(item.get("ctx") or {})
    if kind == "unknown_key":
        where = f" for {owner}" if owner else ""
        return f"Unknown key '{ctx['key']}'{where}.{ctx['hint']} Valid keys here: {ctx['valid']}"
    if kind in _MUST_BE:
        return f"must be {_MUST_BE[kind]}"
    if kind == "greater_than_equal":
        return f"must be greater than or equal to {_bound(ctx, 'ge')}"
    if kind == "greater_than":
        return f"must be greater than {_bound(ctx, 'gt')}"
    if kind == "less_than_equal":
        return f"must be less than or equal to {_bound(ctx, 'le')}"
    if kind == "less_than":
        return f"must be less than {_bound(ctx, 'lt')}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        short = kind.endswith("too_short")
        n = ctx.get("min_length" if short else "max_length")
        if short and n == 1:
            return "must not be empty"
        unit = "characters" if isinstance(item.get("input"), str) else "items"
        return f"must have {'at least' if short else 'at most'} {n} {unit}"
    if kind == "missing":
        return f"is required for {owner}: add it" if owner else "is required: add it"
    if kind == "union_tag_invalid":
        return f"'type' must be one of {ctx.get('expected_tags', '')}; got {ctx.get('tag')!r}"
    if kind == "union_tag_not_found":
        return f"needs a 'type' key, one of {owner}" if owner else "needs a 'type' key"
    msg = str(item.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    return msg[:1].lower() + msg[1:]


# Pydantic's type errors, as what the value must be.
_MUST_BE: dict[str, str] = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number (no fractional part)",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
}


def format_validation_error(
    root: str, err: ValidationError, model: type[BaseModel] | None = None
) -> str:
    """One line per wrong key: ``worker_config.foo.bar: must be X. Got Y instead.``.

    The key is the full dotted path the user wrote (union members pydantic tried are left out
    of it), the problem says what the value must be, and the value given is quoted. The errors
    pydantic reports for each member of a union are joined into one line ("must be a whole
    number or a list").

    Args:
        root: The config's name (``worker_config``), the start of every path.
        err: Pydantic's error.
        model: The model that was validated; it tells union members from keys in the path.
    """
    lines: dict[str, tuple[list[str], str, Any, bool]] = {}
    for item in err.errors(include_url=False):
        loc = tuple(item.get("loc", ()))
        if model is not None:
            sub, tag = _clean_loc(model, loc)
        else:
            sub, tag = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc), ""
        path = (root + sub) if root else sub.lstrip(".")
        owner = ""
        if item.get("type") == "union_tag_not_found" and model is not None:
            owner = ", ".join(repr(t) for t in _tags_at(model, loc))
        elif tag:
            key = path.rsplit(".", 1)[-1] if item.get("type") != "unknown_key" else ""
            owner = f"a {tag} {_container(path, key)}"
        problem = _problem(item, owner)
        got = item.get("input")
        quiet = item.get("type") in ("missing", "unknown_key", "union_tag_not_found")
        said = "got " in problem.lower()  # a validator that quoted the value itself
        show = not quiet and not said and not isinstance(got, dict)
        problems, _, _, _ = lines.setdefault(path, ([], tag, got, show))
        if problem not in problems:
            problems.append(problem)
    out = []
    for path, (problems, _, got, show) in lines.items():
        musts = [p for p in problems if p.startswith("must be ")]
        if len(musts) > 1:
            joined = "must be " + " or ".join(p[len("must be ") :] for p in musts)
            problems = [joined, *(p for p in problems if p not in musts)]
        detail = f" Got {got!r} instead." if show else ""
        text = "; ".join(problems)
        out.append(f"{path}: {text}.{detail}".replace("..", "."))
    return "\n".join(out)


def _container(path: str, key: str) -> str:
    """``input`` or ``strategy`` (the object a tagged class is), for messages."""
    parts = path.split(".")
    if key and len(parts) >= 2:
        return parts[-2].split("[")[0]
    return parts[-1].split("[")[0]


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars as the Python numbers they hold (Python callers pass them).

    Strict validation refuses ``np.int64(5)`` as a count; ``5`` from a computation is what the
    user meant, so it is unwrapped here, at the edge. A NumPy bool stays a bool (not a count).
    """
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    return value


def parse_config(model: type[M], data: Any, root: str) -> M:
    """Validate ``data`` (a dict, a model instance or None) as ``model``.

    Args:
        model: The pydantic model class.
        data: What the user gave. ``None`` means all defaults.
        root: The user-facing name of this config (``worker_config``...), used in messages.

    Raises:
        ConfigError: naming every wrong key and what would be accepted.
    """
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump(exclude_unset=True)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{root}: must be a mapping of keys to values, got {type(data).__name__}."
        )
    try:
        return model.model_validate(_plain(data))
    except ValidationError as e:
        raise ConfigError(format_validation_error(root, e, model)) from e
