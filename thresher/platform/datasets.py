"""Datasets: create, list (own, shared with the caller, or both), read, delete."""

from __future__ import annotations

from sqlalchemy import select, update

from thresher.platform.access import dataset_for
from thresher.platform.core import Platform
from thresher.platform.errors import Conflict, Invalid
from thresher.platform.models import Dataset, DatasetShare, ScheduledRun, User
from thresher.wire import DatasetCreateRequest, DatasetData, new_id, now_ms


def to_wire(d: Dataset, shared: bool = False) -> DatasetData:
    """The wire form of a dataset.

    Args:
        d: The dataset.
        shared: The caller sees it because it is shared with them: ``accessType`` is
            ``WRITE`` (Lightly's only access type); an owner's dataset has none.
    """
    return DatasetData(
        id=d.id,
        name=d.name,
        user_id=d.user_id,
        type=d.type,
        created_at=d.created_at,
        last_modified_at=d.last_modified_at,
        img_type=d.img_type,
        access_type="WRITE" if shared else None,
        datasource_processed_until_timestamp=d.processed_until,
    )


#: The longest dataset, tag or artifact file name accepted (characters).
MAX_NAME_LENGTH = 255


def create(p: Platform, user: User, req: DatasetCreateRequest) -> str:
    """Create a dataset; its name must be new among the user's datasets.

    Raises:
        Conflict: ``DATASET_NAME_EXISTS``.
        Invalid: a name longer than ``MAX_NAME_LENGTH``.
    """
    if len(req.name) > MAX_NAME_LENGTH:
        raise Invalid(
            f"The dataset name is {len(req.name)} characters long; at most {MAX_NAME_LENGTH} "
            "are allowed."
        )
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
    """The datasets the user may see, newest change first (Lightly's ``shared`` flag).

    Args:
        p: The platform.
        user: The caller.
        shared: False = the user's own datasets; True = the datasets shared with the user
            (never their own); None = both.
        team: ``getAssetsOfTeam`` without ``InclusiveSelf``: team datasets (thresher has no
            teams: always empty).
        name: Only datasets with this name (``exact``) or name prefix.
        exact: See ``name``.
        page_size: At most this many (None = all).
        page_offset: Skip this many first.
    """
    if team:
        return []
    with_me = select(DatasetShare.dataset_id).where(DatasetShare.email == user.email)
    own = Dataset.user_id == user.id
    shared_with_me = Dataset.id.in_(with_me) & (Dataset.user_id != user.id)
    if shared is None:
        q = select(Dataset).where(own | shared_with_me)
    else:
        q = select(Dataset).where(shared_with_me if shared else own)
    if name is not None:
        q = q.where(
            Dataset.name == name if exact else Dataset.name.startswith(name, autoescape=True)
        )
    q = q.order_by(Dataset.last_modified_at.desc(), Dataset.id).offset(max(page_offset, 0))
    if page_size is not None and page_size > 0:
        q = q.limit(page_size)
    with p.session() as s:
        return [to_wire(d, shared=d.user_id != user.id) for d in s.scalars(q)]


def get(p: Platform, user: User, dataset_id: str) -> DatasetData:
    """One dataset, its owner's or shared with the caller (NotFound / Forbidden)."""
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "read")
        return to_wire(d, shared=d.user_id != user.id)


def delete(p: Platform, user: User, dataset_id: str) -> None:
    """Delete a dataset and its datasources.

    Its OPEN scheduled runs are canceled and its running ones asked to abort; finished runs
    stay listed under ``GET /v1/docker/runs``.
    """
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "own")
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
