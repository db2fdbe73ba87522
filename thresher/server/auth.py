"""The auth dependency: the user of a request's token.

The token comes as the ``token`` query parameter, an ``Authorization: Bearer`` header, or the
web page's sign-in cookie.
"""

from __future__ import annotations

from fastapi import Request

from thresher.platform import users
from thresher.platform.core import Platform
from thresher.platform.models import User

#: The web page's sign-in cookie: the API token (HttpOnly, SameSite=Strict; see server.web).
COOKIE = "thresher_token"


def token_of(request: Request) -> str | None:
    """The token a request carries: ``?token=`` (Lightly's client), ``Bearer``, or the cookie."""
    token = request.query_params.get("token")
    if token:
        return token
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


def current_user(request: Request) -> User:
    """FastAPI dependency: the authenticated user (403 ``FORBIDDEN`` otherwise)."""
    platform: Platform = request.app.state.platform
    return users.authenticate(platform, token_of(request))
