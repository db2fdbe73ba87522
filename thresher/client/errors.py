"""The client's errors, with the names and attributes of Lightly's."""

from __future__ import annotations

import json
from collections.abc import Mapping


class ApiException(Exception):
    """The server answered with a status other than 2xx.

    Attributes:
        status: The HTTP status (403 for a bad token or a dataset that is not yours).
        reason: The HTTP reason phrase.
        body: The response body as text (an ``ApiErrorResponse``: ``{"code", "error"}``).
        headers: The response headers.
        code: The ``code`` of the error body (e.g. ``FORBIDDEN``), or "" if it has none.
        error: The ``error`` message of the error body, or "".
    """

    def __init__(
        self,
        status: int | None = None,
        reason: str | None = None,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = dict(headers or {})
        self.code, self.error = _error_fields(body)
        where = f" on {method} {path}" if method else ""
        text = self.error or (body or "")[:500]
        super().__init__(
            f"({status}) {reason}{where}"
            + (f": [{self.code}] {text}" if self.code else f": {text}")
        )


def _error_fields(body: str | None) -> tuple[str, str]:
    try:
        doc = json.loads(body or "")
    except ValueError:
        return "", ""
    if not isinstance(doc, dict):
        return "", ""
    return str(doc.get("code", "")), str(doc.get("error", ""))


class ServerUnreachableError(ConnectionError):
    """The server could not be reached (refused, timed out, DNS); no HTTP status came back."""


class ArtifactNotExist(Exception):
    """The run has no artifact of the asked type (yet)."""


class TagDoesNotExistError(ValueError):
    """No tag of the current dataset has the name asked for (Lightly's, a ``ValueError``)."""
