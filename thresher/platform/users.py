"""Users and their API tokens (stored as sha256; a token is never logged or returned twice)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from thresher.platform.core import Platform
from thresher.platform.errors import Conflict, Forbidden, Invalid
from thresher.platform.models import Token, User
from thresher.wire import new_id, now_ms


def hash_token(token: str) -> str:
    """The stored form of a token: its sha256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(p: Platform, email: str, token: str | None = None) -> tuple[User, str]:
    """Create a user and its first token.

    Args:
        p: The platform.
        email: The user's e-mail address (unique).
        token: Keep this token (migrating teams keep their scripts); None = a random one.

    Returns:
        The user and the token in clear (shown once, to print).

    Raises:
        Conflict: a user with this e-mail exists, or the token is taken.
        Invalid: the e-mail or the token is malformed.
    """
    email = email.strip()
    if "@" not in email or len(email) > 320:
        raise Invalid(f"{email!r} is not an e-mail address, e.g. alice@example.com.")
    if token is not None and (len(token) < 16 or any(c.isspace() for c in token)):
        raise Invalid("--token must be at least 16 characters without spaces.")
    token = token or secrets.token_hex(24)
    with p.session() as s:
        if s.scalar(select(User).where(User.email == email)) is not None:
            raise Conflict(
                f"A user with the e-mail {email} already exists; pick another address.",
                "USER_EXISTS",
            )
        if s.scalar(select(Token).where(Token.token_hash == hash_token(token))) is not None:
            raise Conflict("That token is already in use by another user; choose another.")
        now = now_ms()
        user = User(id=new_id(), email=email, created_at=now)
        s.add(user)
        s.flush()
        s.add(Token(id=new_id(), user_id=user.id, token_hash=hash_token(token), created_at=now))
    return user, token


def authenticate(p: Platform, token: str | None) -> User:
    """The user a token belongs to.

    Raises:
        Forbidden: no token, or a token no user has.
    """
    if not token:
        raise Forbidden(
            "No API token: pass it as the 'token' query parameter or an "
            "'Authorization: Bearer <token>' header (thresher user add prints one)."
        )
    with p.session() as s:
        user = s.scalar(
            select(User)
            .join(Token, Token.user_id == User.id)
            .where(Token.token_hash == hash_token(token))
        )
    if user is None:
        raise Forbidden(
            "The API token is not valid; check it, or create one with thresher user add."
        )
    return user
