"""Datasets: create, list (owned; sharing comes later), read, delete."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from thresher.platform.access import require_owner
from thresher.platform.core import Platform
from thresher.platform.errors import Conflict
from thresher.platform.models import Dataset, ScheduledRun, User
from thresher.wire import DatasetCreateRequest, DatasetData, new_id, now_ms


def to_wire(d: Dataset) -> DatasetData:
    """The wire form of a dataset."""
    return DatasetData(
        id=d.id,
        name=d.name,
        user_id=d.user_id,
        type=d.type,
        created_at=d.created_at,
        last_modified_at=d.last_modified_at,
        img_type=d.img_type,
    )


def load(s: Session, user: User, dataset_id: str) -> Dataset:
    """The dataset ``dataset_id`` if ``user`` owns it (NotFound / Forbidden otherwise)."""
    return require_owner(
        s.get(Dataset, dataset_id), user.id, "dataset", "DATASET_UNKNOWN", dataset_id
    )


def create(p: Platform, user: User, req: DatasetCreateRequest) -> str:
    """Create a dataset; its name must be new among the user's datasets.

    Raises:
        Conflict: ``DATASET_NAME_EXISTS``.
    """
    with p.session() as s:
        taken = s.scalar(
            select(Dataset.id).where(Dataset.user_id == user.id, Dataset.name == req.name)
        )
        if taken is not None:
            raise Conflict(
                f"A dataset with the name {req.name!r} already exists (id {taken}); pick "
                "another name or use that dataset.",
                "DATASET_NAME_EXISTS",
            )
        now = now_ms()
        d = Dataset(
            id=new_id(),
            user_id=user.id,
            name=req.name,
            type=str(req.type),
            img_type=req.img_type or "full",
            created_at=now,
            last_modified_at=now,
        )
        s.add(d)
    return d.id


def list_datasets(
    p: Platform,
    user: User,
    *,
    shared: bool | None = False,
    team: bool = False,
    name: str | None = None,
    exact: bool = True,
    page_size: int | None = None,
    page_offset: int = 0,
) -> list[DatasetData]:
    """The user's datasets, newest change first.

    Args:
        p: The platform.
        user: The caller.
        shared: True = datasets shared with the user (none yet: sharing is the next issue).
        team: ``getAssetsOfTeam`` without ``InclusiveSelf``: team datasets (none yet).
        name: Only datasets with this name (``exact``) or name prefix.
        exact: See ``name``.
        page_size: At most this many (None = all).
        page_offset: Skip this many first.
    """
    if shared or team:
        return []
    q = select(Dataset).where(Dataset.user_id == user.id)
    if name is not None:
        q = q.where(
            Dataset.name == name if exact else Dataset.name.startswith(name, autoescape=True)
        )
    q = q.order_by(Dataset.last_modified_at.desc(), Dataset.id).offset(max(page_offset, 0))
    if page_size is not None and page_size > 0:
        q = q.limit(page_size)
    with p.session() as s:
        return [to_wire(d) for d in s.scalars(q)]


def get(p: Platform, user: User, dataset_id: str) -> DatasetData:
    """One dataset (NotFound ``DATASET_UNKNOWN`` / Forbidden)."""
    with p.session() as s:
        return to_wire(load(s, user, dataset_id))


def delete(p: Platform, user: User, dataset_id: str) -> None:
    """Delete a dataset and its datasources.

    Its OPEN scheduled runs are canceled and its running ones asked to abort; finished runs
    stay listed under ``GET /v1/docker/runs``.
    """
    with p.session() as s:
        d = load(s, user, dataset_id)
        now = now_ms()
        s.execute(
            update(ScheduledRun)
            .where(ScheduledRun.dataset_id == d.id, ScheduledRun.state == "OPEN")
            .values(state="CANCELED", last_modified_at=now)
        )
        s.execute(
            update(ScheduledRun)
            .where(ScheduledRun.dataset_id == d.id, ScheduledRun.state == "LOCKED")
            .values(abort_requested=True, last_modified_at=now)
        )
        s.delete(d)
