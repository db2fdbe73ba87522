"""Users and their API tokens.

A token is stored as its sha256 and looked up by it (so comparing it takes the same time
whatever the token), never logged or returned twice, and expires ``THRESHER_TOKEN_DAYS`` after
it was made; ``thresher user token EMAIL`` gives a user a new one.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from thresher.platform.core import Platform
from thresher.platform.errors import Conflict, Forbidden, Invalid, NotFound
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
    token = _checked(token)
    with p.session() as s:
        if s.scalar(select(User).where(User.email == email)) is not None:
            raise Conflict(
                f"A user with the e-mail {email} already exists; pick another address.",
                "USER_EXISTS",
            )
        user = User(id=new_id(), email=email, created_at=now_ms())
        s.add(user)
        s.flush()
        _add_token(p, s, user, token)
    return user, token


def new_token(p: Platform, email: str, token: str | None = None) -> tuple[User, str]:
    """Give an existing user another token (after one expired or leaked); old ones keep working.

    Args:
        p: The platform.
        email: The user's e-mail address.
        token: Use this token; None = a random one.

    Returns:
        The user and the new token in clear (shown once).

    Raises:
        NotFound: no user has this e-mail.
        Conflict: the token is taken.
        Invalid: the token is malformed.
    """
    token = _checked(token)
    with p.session() as s:
        user = s.scalar(select(User).where(User.email == email.strip()))
        if user is None:
            raise NotFound(
                f"No user has the e-mail {email}; create it with thresher user add {email}.",
                "USER_UNKNOWN",
            )
        _add_token(p, s, user, token)
    return user, token


def _checked(token: str | None) -> str:
    if token is not None and (len(token) < 16 or any(c.isspace() for c in token)):
        raise Invalid("--token must be at least 16 characters without spaces.")
    return token or secrets.token_hex(24)


def _add_token(p: Platform, s: Session, user: User, token: str) -> None:
    if s.scalar(select(Token).where(Token.token_hash == hash_token(token))) is not None:
        raise Conflict("That token is already in use; choose another.")
    now = now_ms()
    days = p.settings.token_days
    expires = now + int(days * 86_400_000) if days > 0 else None
    s.add(
        Token(
            id=new_id(),
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=expires,
        )
    )


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
    with p.read_session() as s:
        row = s.execute(
            select(User, Token.expires_at)
            .join(Token, Token.user_id == User.id)
            .where(Token.token_hash == hash_token(token))
        ).first()
    if row is None:
        raise Forbidden(
            "The API token is not valid; check it, or create one with thresher user add."
        )
    user, expires_at = row
    if expires_at is not None and expires_at <= time.time() * 1000:
        day = time.strftime("%Y-%m-%d", time.gmtime(expires_at / 1000))
        raise Forbidden(
            f"The API token expired on {day}; get a new one with thresher user token {user.email}."
        )
    return user
