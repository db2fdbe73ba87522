"""The platform's settings, read from the environment once (``Settings.from_env``).

| variable | default | meaning |
|---|---|---|
| ``THRESHER_HOME`` | ``~/.thresher`` | the database, ``secret.key`` |
| ``THRESHER_DATABASE_URL`` | ``sqlite:///$THRESHER_HOME/thresher.db`` | SQLAlchemy URL |
| ``THRESHER_SECRET_KEY`` | ``$THRESHER_HOME/secret.key`` | Fernet key for datasource secrets |
| ``THRESHER_WORKER_TIMEOUT_S`` | 60 | silence after which a worker is OFFLINE |
| ``THRESHER_READ_URL_SECONDS`` | 604800 (7 days) | lifetime of every read URL |
| ``THRESHER_TOKEN_DAYS`` | 365 | lifetime of a new API token (0: never expires) |
| ``THRESHER_LOCAL_ROOT`` | unset | the worker's ``--input-mount``, if the server can see it |
| ``THRESHER_LIGHTLY_ROOT`` | ``THRESHER_LOCAL_ROOT`` | the worker's ``--lightly-mount`` |
| ``THRESHER_PUBLIC_URL`` | the request's base URL | base of the read URLs handed out |
| ``THRESHER_VERIFY_TIMEOUT_S`` | 60 | longest a permission check of the datasources may take |
| ``THRESHER_MAX_BODY_BYTES`` | 16 MiB | largest request body (413 above); a worker's selection |
|   | | report may be 32 times as large |
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from thresher.errors import ConfigError

Number = TypeVar("Number", int, float)


def env_number(
    name: str,
    default: Number,
    parse: Callable[[str], Number],
    example: str,
    *,
    zero: str = "",
) -> Number:
    """The positive number in the environment variable ``name``; ``default`` when unset or empty.

    The one parser of numeric settings (the platform's, the server's, the Prefect server's).

    Args:
        name: The variable, e.g. ``THRESHER_WORKER_TIMEOUT_S``.
        default: The value when it is unset or empty.
        parse: ``int`` (a whole number) or ``float``.
        example: A valid setting for the error message, e.g. ``"60 (seconds)"``.
        zero: What 0 means where 0 is allowed (e.g. ``"never expires"``); "" refuses 0.

    Raises:
        ConfigError: The value is not a number of that kind, or not positive (naming the
            variable and a valid setting).
    """
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    fix = f"set it to e.g. {example}, or unset it for the default {default}"
    try:
        value = parse(raw.strip())
    except ValueError as e:
        kind = "a whole number" if parse is int else "a number"
        raise ConfigError(f"{name}={raw!r} is not {kind}: {fix}.") from e
    if value != value or value in (float("inf"), float("-inf")):  # nan, inf
        raise ConfigError(f"{name}={raw!r} is not a finite number: {fix}.")
    if value < 0 or (value == 0 and not zero):
        allowed = f"positive, or 0 ({zero})" if zero else "positive"
        raise ConfigError(f"{name}={raw!r} must be {allowed}: {fix}.")
    return value


#: How much larger than ``max_body_bytes`` the worker's selection report may be.
SELECTION_BODY_FACTOR = 32


@dataclass(frozen=True)
class Settings:
    """Everything the service layer and the server need to know about their surroundings."""

    home: Path
    database_url: str
    secret_key: str | None = None  # None: read or create $home/secret.key
    worker_timeout_s: float = 60.0
    read_url_seconds: float = 7 * 24 * 3600.0
    token_days: float = 365.0
    local_root: Path | None = None
    lightly_root: Path | None = None
    public_url: str | None = None
    #: A storage that does not answer (no network, a wrong endpoint) fails the permission check
    #: after this long, well inside the 180 s Lightly's client waits for any answer.
    verify_timeout_s: float = 60.0
    #: The largest request body the server reads (``413`` above it); the worker's selection
    #: report (every picked file name of a run) may be :data:`SELECTION_BODY_FACTOR` as large.
    max_body_bytes: int = 16 * 1024 * 1024

    @classmethod
    def from_env(cls, database_url: str | None = None, home: Path | None = None) -> Settings:
        """Settings from the environment; ``database_url`` and ``home`` override it."""
        home = home or Path(os.environ.get("THRESHER_HOME") or Path.home() / ".thresher")
        url = (
            database_url
            or os.environ.get("THRESHER_DATABASE_URL")
            or f"sqlite:///{home / 'thresher.db'}"
        )
        local_root = os.environ.get("THRESHER_LOCAL_ROOT")
        lightly_root = os.environ.get("THRESHER_LIGHTLY_ROOT") or local_root
        return cls(
            home=home,
            database_url=url,
            secret_key=os.environ.get("THRESHER_SECRET_KEY") or None,
            worker_timeout_s=env_number("THRESHER_WORKER_TIMEOUT_S", 60.0, float, "60 (seconds)"),
            read_url_seconds=env_number(
                "THRESHER_READ_URL_SECONDS", 7 * 24 * 3600.0, float, "604800 (seconds: 7 days)"
            ),
            token_days=env_number(
                "THRESHER_TOKEN_DAYS", 365.0, float, "365 (days)", zero="never expires"
            ),
            local_root=Path(local_root) if local_root else None,
            lightly_root=Path(lightly_root) if lightly_root else None,
            public_url=os.environ.get("THRESHER_PUBLIC_URL") or None,
            verify_timeout_s=env_number("THRESHER_VERIFY_TIMEOUT_S", 60.0, float, "60 (seconds)"),
            max_body_bytes=env_number(
                "THRESHER_MAX_BODY_BYTES", 16 * 1024 * 1024, int, "16777216 (bytes: 16 MiB)"
            ),
        )
