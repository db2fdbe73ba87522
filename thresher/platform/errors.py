"""The service layer's errors: each carries Lightly's error code; the server maps them to HTTP.

``NotFound`` -> 404, ``Forbidden`` -> 403, ``Invalid`` -> 400, ``Conflict`` -> 409,
``Unprocessable`` -> 422. Messages never contain a secret or a token.
"""

from __future__ import annotations

from thresher.errors import ThresherError


class PlatformError(ThresherError):
    """Base of the service layer's errors.

    Args:
        message: What is wrong and how to fix it.
        code: Lightly's ``ApiErrorCode`` (e.g. ``DATASET_UNKNOWN``).
    """

    default_code = "BAD_REQUEST"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class NotFound(PlatformError):
    """An id names nothing (``DATASET_UNKNOWN``, ``DOCKER_RUN_UNKNOWN``, ...)."""

    default_code = "NOT_FOUND"


class Forbidden(PlatformError):
    """A missing or wrong token, or an object the user does not own."""

    default_code = "FORBIDDEN"


class Invalid(PlatformError, ValueError):
    """A request that cannot be valid (bad config, bad path)."""

    default_code = "BAD_REQUEST"


class Conflict(PlatformError):
    """A request that clashes with the current state (a name taken, a run already locked)."""

    default_code = "CONFLICT"


class Unprocessable(PlatformError):
    """A well-formed request the datasources cannot serve (a missing permission)."""

    default_code = "DATASET_DATASOURCE_CREDENTIALS_ERROR"
