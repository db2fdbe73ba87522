"""The ownership check every service function applies before touching a user's object.

Today only the owner may act; the sharing issue widens :func:`require_owner` here, in one place.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from thresher.platform.errors import Forbidden, NotFound


class _Owned(Protocol):
    user_id: str


T = TypeVar("T", bound=_Owned)


def require_owner(obj: T | None, user_id: str, what: str, code: str, obj_id: str) -> T:
    """``obj`` if it exists and ``user_id`` owns it.

    Args:
        obj: The loaded object, or None when the id named nothing.
        user_id: The calling user's id.
        what: A word for the object in messages ("dataset", "run").
        code: The error code for an unknown id (``DATASET_UNKNOWN``...).
        obj_id: The id that was asked for.

    Raises:
        NotFound: ``obj`` is None.
        Forbidden: another user owns it.
    """
    if obj is None:
        raise NotFound(f"No {what} with id {obj_id!r} exists.", code)
    if obj.user_id != user_id:
        raise Forbidden(f"The {what} {obj_id!r} belongs to another user; use a token of its owner.")
    return obj
