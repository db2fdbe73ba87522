"""Shared machinery for the config models: strict keys, suggestions, one error format.

Every config model subclasses :class:`StrictModel`. Unknown keys are rejected with the closest
valid name suggested; :func:`parse_config` validates once at the edge (CLI, flow parameter,
client) and turns pydantic's errors into a single :class:`~thresher.errors.ConfigError` whose
message names each wrong key by its full dotted path.
"""

from __future__ import annotations

import difflib
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from thresher.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate that looks most like ``name``, or None if none is close."""
    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return matches[0] if matches else None


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and suggests the closest valid one."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False)

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
            raise ValueError(
                f"Unknown key '{key}'.{hint} Valid keys here: {', '.join(sorted(valid))}."
            )
        return data


def _loc_to_path(root: str, loc: tuple[Any, ...]) -> str:
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part:
            path += f".{part}" if path else str(part)
    return path


def format_validation_error(root: str, err: ValidationError) -> str:
    """One line per problem: ``worker_config.foo.bar: message (got X)``."""
    lines = []
    for item in err.errors(include_url=False):
        loc = tuple(item.get("loc", ()))
        # Discriminated unions put the tag value in loc; keep it, it tells which type was meant.
        msg = str(item.get("msg", "invalid value"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        got = item.get("input")
        detail = ""
        if item.get("type") not in ("value_error", "missing") and not isinstance(got, dict):
            detail = f" Got {got!r} instead."
        lines.append(f"{_loc_to_path(root, loc)}: {msg}.{detail}".replace("..", "."))
    return "\n".join(lines)


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
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(root, e)) from e
