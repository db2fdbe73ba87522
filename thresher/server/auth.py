"""The auth dependency: the user of the ``token`` query parameter or ``Authorization`` header."""

from __future__ import annotations

from fastapi import Request

from thresher.platform import users
from thresher.platform.core import Platform
from thresher.platform.models import User


def token_of(request: Request) -> str | None:
    """The token a request carries: ``?token=`` (Lightly's client) or ``Bearer``."""
    token = request.query_params.get("token")
    if token:
        return token
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def current_user(request: Request) -> User:
    """FastAPI dependency: the authenticated user (403 ``FORBIDDEN`` otherwise)."""
    platform: Platform = request.app.state.platform
    return users.authenticate(platform, token_of(request))
