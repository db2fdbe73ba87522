"""Who may do what: the checks every service function applies before touching an object.

:func:`dataset_for` is the one rule for anything scoped to a dataset (its datasources, runs,
tags, samples, exports, downloads, artifacts): the service function names the action it is
about to do. Today only the owner may act; sharing widens :func:`dataset_for`, here, in one
place. Objects that belong to a user and not to a dataset (worker configs, workers) use
:func:`require_owner`.
"""

from __future__ import annotations

from typing import Literal, Protocol, TypeVar

from sqlalchemy.orm import Session

from thresher.platform.errors import Forbidden, NotFound
from thresher.platform.models import Dataset, User

#: What a caller may want to do with a dataset and everything in it. ``own`` is what only the
#: owner may do (delete, datasources, sharing).
Action = Literal["read", "schedule", "tag", "export", "download", "own"]


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


def dataset_for(s: Session, user: User, dataset_id: str, action: Action) -> Dataset:
    """The dataset ``dataset_id`` if ``user`` may do ``action`` with it.

    Args:
        s: An open session.
        user: The caller.
        dataset_id: The dataset asked for.
        action: What the caller is about to do.

    Raises:
        NotFound: no such dataset (``DATASET_UNKNOWN``).
        Forbidden: the caller may not do ``action`` with it.
    """
    return require_owner(
        s.get(Dataset, dataset_id), user.id, "dataset", "DATASET_UNKNOWN", dataset_id
    )
