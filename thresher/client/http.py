"""The HTTP transport shared by the client and the worker: base URL, token, errors.

The token travels in the ``token`` query parameter (what Lightly's client sends). It must never
appear in an exception or a log line: httpx's own log records and errors carry the full URL, so
log records of ``httpx`` are redacted and transport errors are re-raised without the URL.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from thresher.client.errors import ApiException, ServerUnreachableError

#: Where the server listens unless ``THRESHER_SERVER_URL`` or ``LIGHTLY_SERVER_LOCATION`` says.
DEFAULT_SERVER_URL = "http://127.0.0.1:8360"
#: Seconds before a request gives up (Lightly's client waits 180 s).
DEFAULT_TIMEOUT_S = 180.0
#: Extra tries of a read-only request after a dropped connection (Lightly retries too).
DEFAULT_RETRIES = 3
#: Backoff before retry n (1, 2, ...): ``factor * 2 ** (n - 1)`` seconds, as urllib3 and
#: Lightly's ``RetryConfig`` count it: 0.5 + 1 + 2 = 3.5 s of waiting for the default 3 retries.
RETRY_BACKOFF_FACTOR_S = 0.5
#: Methods that read only, so that sending them twice does no harm.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Transport errors after which a read is tried again: the connection was refused, reset or
#: dropped, or the answer timed out (a server restarting, a proxy recycling a connection).
RETRY_ERRORS: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.RemoteProtocolError,
    httpx.WriteError,
)

_TOKEN_RE = re.compile(r"(?i)((?:[?&]|\b)(?:token|publicToken)=)[^&\s'\"]+")


def redact_token(text: str) -> str:
    """``text`` with the value of every ``token=`` query parameter replaced by ``***``."""
    return _TOKEN_RE.sub(r"\1***", text)


class _RedactTokenFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_token(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = _RedactTokenFilter()
_LOG = logging.getLogger(__name__)


def _install_log_filter() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def server_url(explicit: str | None = None) -> str:
    """The server's base URL: ``explicit``, ``THRESHER_SERVER_URL``, ``LIGHTLY_SERVER_LOCATION``."""
    url = (
        explicit
        or os.environ.get("THRESHER_SERVER_URL")
        or os.environ.get("LIGHTLY_SERVER_LOCATION")
        or DEFAULT_SERVER_URL
    )
    return url.rstrip("/")


def resolve_token(explicit: str | None = None) -> str:
    """The API token: ``explicit``, else ``THRESHER_TOKEN``, else ``LIGHTLY_TOKEN``.

    Raises:
        ValueError: None of them is set.
    """
    token = explicit or os.environ.get("THRESHER_TOKEN") or os.environ.get("LIGHTLY_TOKEN")
    if not token:
        raise ValueError(
            "No API token: pass token=... or set THRESHER_TOKEN (or LIGHTLY_TOKEN). "
            "`thresher user add EMAIL` prints a token."
        )
    return token


class Http:
    """A small JSON-over-HTTP session against the thresher server.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:8360``.
        token: The API token (sent as the ``token`` query parameter).
        timeout_s: Seconds before a request gives up.
        retries: Extra tries of a read-only request (GET, HEAD, OPTIONS) whose connection was
            refused, reset or timed out; 0 turns retrying off.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        _install_log_filter()
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.retries = retries
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def __repr__(self) -> str:
        return f"Http({self.base_url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """Send one request; return the 2xx response.

        A read-only request (GET, HEAD, OPTIONS) whose connection is refused, reset or times out
        is sent again up to ``retries`` times, after 0.5 s, 1 s, 2 s... A request that creates or
        changes something (POST, PUT, PATCH, DELETE) is sent once: the server may have done it
        before the connection dropped, and a second try would schedule a second run or create a
        second tag.

        Raises:
            ApiException: The server answered with a status other than 2xx.
            ServerUnreachableError: No answer (connection refused, timeout...), after the retries.
        """
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        query["token"] = self._token
        kwargs: dict[str, Any] = {"params": query, "json": json}
        if timeout_s is not None:
            kwargs["timeout"] = timeout_s
        retries = self.retries if method.upper() in IDEMPOTENT_METHODS else 0
        attempt = 0
        while True:
            try:
                response = self._client.request(method, path, **kwargs)
                break
            except RETRY_ERRORS as e:
                if attempt >= retries:
                    raise self._unreachable(method, path, e, attempt + 1) from None
                attempt += 1
                wait_s = RETRY_BACKOFF_FACTOR_S * 2 ** (attempt - 1)
                _LOG.info(
                    "%s %s%s: %s; try %d of %d in %.1f s",
                    method,
                    self.base_url,
                    path,
                    type(e).__name__,
                    attempt + 1,
                    retries + 1,
                    wait_s,
                )
                time.sleep(wait_s)
            except httpx.HTTPError as e:
                raise self._unreachable(method, path, e, attempt + 1) from None
        if not response.is_success:
            raise ApiException(
                status=response.status_code,
                reason=response.reason_phrase,
                body=redact_token(response.text),
                headers=response.headers,
                method=method,
                path=path,
            )
        return response

    def _unreachable(
        self, method: str, path: str, error: httpx.HTTPError, tries: int
    ) -> ServerUnreachableError:
        # The original error holds the URL with the token: the caller does not chain it.
        after = f" after {tries} tries" if tries > 1 else ""
        return ServerUnreachableError(
            f"{method} {self.base_url}{path} failed{after}: "
            f"{redact_token(str(error)) or type(error).__name__}"
            " (is `thresher server start` running there? THRESHER_SERVER_URL sets the URL)"
        )

    def get_json(self, path: str, **params: Any) -> Any:
        """``GET path`` and return the decoded JSON body."""
        return self.request("GET", path, params=params).json()

    def send_json(self, method: str, path: str, body: Any = None) -> Any:
        """``POST``/``PUT``/``DELETE`` with a JSON body; the decoded answer, or None if empty."""
        response = self.request(method, path, json=body)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@contextmanager
def stream_download(url: str, timeout_s: float) -> Iterator[httpx.Response]:
    """Stream ``url`` (a signed read URL: no token needed); the error names no query string.

    Raises:
        ApiException: The URL answered with a status other than 2xx.
        ServerUnreachableError: No answer.
    """
    _install_log_filter()
    shown = url.split("?", 1)[0]
    try:
        with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=True) as response:
            if not response.is_success:
                response.read()
                raise ApiException(
                    status=response.status_code,
                    reason=response.reason_phrase,
                    body=redact_token(response.text),
                    headers=response.headers,
                    method="GET",
                    path=shown,
                )
            yield response
    except httpx.HTTPError as e:
        raise ServerUnreachableError(
            f"downloading {shown} failed: {type(e).__name__}: {str(e).split('?', 1)[0]}"
        ) from None
