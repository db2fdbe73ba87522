"""Who may do what: the checks every service function applies before touching an object.

:func:`dataset_for` is the one rule for anything scoped to a dataset (its datasources, runs,
tags, samples, exports, downloads, artifacts): the service function names the action it is
about to do.

* The dataset's **owner** may do everything.
* A user the dataset is **shared with** (a :class:`~thresher.platform.models.DatasetShare` row
  with the user's e-mail, see :mod:`thresher.platform.sharing`) may ``read``, ``schedule``,
  ``tag``, ``export`` and ``download``; not ``own`` (delete it, set its datasources, share it).
* **Anyone else** is told the dataset does not exist: the same
  :class:`~thresher.platform.errors.NotFound` (404, ``DATASET_UNKNOWN``, same message) as for
  an id that names nothing, so a stranger cannot learn which ids exist by probing.

Runs and artifacts follow their dataset (:func:`run_for`). Objects that belong to a user and
not to a dataset (worker configs, workers) use :func:`require_owner`; so do the routes a
worker calls about a run it took (the run's ``user_id`` is the user whose worker took it).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypeVar, get_args

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from thresher.platform.errors import Forbidden, NotFound
from thresher.platform.models import Dataset, DatasetShare, Run, User

#: What a caller may want to do with a dataset and everything in it. ``own`` is what only the
#: owner may do (delete, datasources, sharing).
Action = Literal["read", "schedule", "tag", "export", "download", "own"]

#: Everything a collaborator (a user the dataset is shared with) may do.
COLLABORATOR_ACTIONS: frozenset[Action] = frozenset(a for a in get_args(Action) if a != "own")

#: What each action means, for messages ("Only the owner may {...}").
_OWN_MEANS = "delete it, set its datasources or change whom it is shared with"


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


def is_shared_with(s: Session, dataset_id: str, user: User) -> bool:
    """Whether the dataset is shared with ``user`` (by e-mail)."""
    row = s.get(DatasetShare, (dataset_id, user.email))
    return row is not None


def unknown_dataset(dataset_id: str) -> NotFound:
    """The one answer for a dataset that does not exist or that the caller may not read."""
    return NotFound(
        f"No dataset with id {dataset_id!r} exists, or it is not shared with you: check the id, "
        "or ask its owner to share it with you (share_dataset_only_with).",
        "DATASET_UNKNOWN",
    )


def unknown_run(run_id: str) -> NotFound:
    """The one answer for a run that does not exist or whose dataset the caller may not read."""
    return NotFound(
        f"No run with id {run_id!r} exists, or its dataset is not shared with you: check the "
        "id, or ask the dataset's owner to share it with you.",
        "DOCKER_RUN_UNKNOWN",
    )


def dataset_for(s: Session, user: User, dataset_id: str, action: Action) -> Dataset:
    """The dataset ``dataset_id`` if ``user`` may do ``action`` with it.

    Args:
        s: An open session.
        user: The caller.
        dataset_id: The dataset asked for.
        action: What the caller is about to do.

    Raises:
        NotFound: no such dataset, or one the caller may not read (``DATASET_UNKNOWN``: the
            same answer for both, :func:`unknown_dataset`).
        Forbidden: a collaborator asked for ``own``.
    """
    d = s.get(Dataset, dataset_id)
    if d is None:
        raise unknown_dataset(dataset_id)
    if d.user_id == user.id:
        return d
    if is_shared_with(s, d.id, user):
        if action in COLLABORATOR_ACTIONS:
            return d
        raise Forbidden(
            f"The dataset {dataset_id!r} is shared with you, but only its owner may "
            f"{_OWN_MEANS}; ask the owner."
        )
    raise unknown_dataset(dataset_id)


def readable_dataset_ids(user: User) -> Select[Any]:
    """A query for the ids of the datasets ``user`` may read: own and shared with them."""
    shared = select(DatasetShare.dataset_id).where(DatasetShare.email == user.email)
    return select(Dataset.id).where(or_(Dataset.user_id == user.id, Dataset.id.in_(shared)))


def run_for(s: Session, user: User, run_id: str, action: Action) -> Run:
    """The run ``run_id`` if ``user`` may do ``action`` with its dataset.

    A run outlives its dataset: once the dataset is deleted, only the user whose worker took
    the run (the run's ``user_id``) may still see it.

    Raises:
        NotFound: no such run, or one whose dataset the caller may not read
            (``DOCKER_RUN_UNKNOWN``: the same answer for both, :func:`unknown_run`).
        Forbidden: a collaborator asked for ``own``.
    """
    r = s.get(Run, run_id)
    if r is None:
        raise unknown_run(run_id)
    if s.get(Dataset, r.dataset_id) is None:
        if r.user_id != user.id:
            raise unknown_run(run_id)
        return r
    try:
        dataset_for(s, user, r.dataset_id, action)
    except NotFound as e:
        raise unknown_run(run_id) from e
    return r
