"""Samples and tags: what a finished run adds to its dataset, Lightly's way.

A dataset's samples are the files its completed runs selected, in the order they were first
added (``Sample.position``; a later run appends only files the dataset lacks). A tag is a
bitmask over that order (``hex(int)``, bit k = the k-th sample, LSB first), as in Lightly.

Tags made by runs:

* the dataset's first run with a selection creates ``initial-tag`` (no parent) holding its
  selection, and is linked to it;
* every later run creates a tag named after the run: its id (so ``.lightly/tags/<name>.txt`` in
  the LIGHTLY location is the same selection), parent ``initial-tag``, linked to the run;
* ``initial-tag`` stays the root of all tags: it grows to hold every sample.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thresher.platform.access import Action, dataset_for, require_owner, run_for
from thresher.platform.core import Platform
from thresher.platform.datasets import MAX_NAME_LENGTH
from thresher.platform.errors import Conflict, Invalid, NotFound
from thresher.platform.models import Run, Sample, Tag, User
from thresher.wire import TagCreateRequest, TagData, new_id, now_ms

INITIAL_TAG = "initial-tag"
#: The ``field`` values ``GET /v1/datasets/{d}/mappings`` answers.
MAPPING_FIELDS = ("fileName", "_id")


def to_bitmask(positions: Iterable[int]) -> str:
    """The hex bitmask with the bits at ``positions`` set (``"0x0"`` for none)."""
    value = 0
    for k in positions:
        value |= 1 << k
    return hex(value)


def from_bitmask(bit_mask_data: str) -> list[int]:
    """The set bits of a hex bitmask, lowest first."""
    value = int(bit_mask_data, 16)
    out = []
    k = 0
    while value:
        if value & 1:
            out.append(k)
        value >>= 1
        k += 1
    return out


def to_wire(t: Tag) -> TagData:
    """The wire form of a tag."""
    return TagData(
        id=t.id,
        dataset_id=t.dataset_id,
        prev_tag_id=t.prev_tag_id,
        name=t.name,
        bit_mask_data=t.bit_mask_data,
        tot_size=t.tot_size,
        created_at=t.created_at,
        last_modified_at=t.last_modified_at,
        run_id=t.run_id,
    )


def _count(s: Session, dataset_id: str) -> int:
    n = s.scalar(select(func.count()).select_from(Sample).where(Sample.dataset_id == dataset_id))
    return int(n or 0)


def _by_name(s: Session, dataset_id: str, name: str) -> Tag | None:
    return s.scalar(select(Tag).where(Tag.dataset_id == dataset_id, Tag.name == name))


def check_relative_names(names: list[str], what: str, datasource: str) -> None:
    """Refuse a reported file name that is not a plain relative path.

    Args:
        names: The names a worker reported.
        what: Words for one name in the message ("selected file name").
        datasource: What the names are relative to ("the INPUT datasource").

    Raises:
        Invalid: a leading ``/``, an empty, ``.`` or ``..`` part, or a NUL; nothing is recorded.
    """
    for name in names:
        parts = name.split("/")
        if "\x00" in name or name.startswith("/") or any(x in ("", ".", "..") for x in parts):
            raise Invalid(
                f"The {what} {name!r} is not a path relative to {datasource} (no leading "
                "'/', no empty, '.' or '..' parts, no NUL); nothing was recorded."
            )


def record_run_selection(p: Platform, user: User, run_id: str, filenames: list[str]) -> str:
    """Add a run's selected files to its dataset and write the run's tag (see the module doc).

    Only the user whose worker took the run may report it (the run's ``user_id``).

    Reporting the same run again changes nothing and returns the same tag.

    Returns:
        The id of the run's tag.
    """
    check_relative_names(filenames, "selected file name", "the INPUT datasource")
    with p.session() as s:
        r = require_owner(s.get(Run, run_id), user.id, "run", "DOCKER_RUN_UNKNOWN", run_id)
        return add_run_samples(s, r.dataset_id, r.id, filenames).id


def add_run_samples(s: Session, dataset_id: str, run_id: str, filenames: list[str]) -> Tag:
    """Add a run's picks to a dataset's samples and make the run's tag there (module doc).

    The names must be checked before (:func:`check_relative_names`); no access check here.
    When the run has a tag in the dataset already, nothing changes and that tag is returned.
    """
    known = s.scalar(select(Tag).where(Tag.run_id == run_id, Tag.dataset_id == dataset_id))
    if known is not None:
        return known
    positions = dict(
        s.execute(
            select(Sample.file_name, Sample.position).where(Sample.dataset_id == dataset_id)
        ).all()
    )
    now = now_ms()
    picked: list[int] = []
    for name in dict.fromkeys(filenames):  # de-duplicated, pick order kept
        if name not in positions:
            positions[name] = len(positions)
            s.add(
                Sample(
                    id=new_id(),
                    dataset_id=dataset_id,
                    position=positions[name],
                    file_name=name,
                    created_at=now,
                )
            )
        picked.append(positions[name])
    total = len(positions)
    initial = _by_name(s, dataset_id, INITIAL_TAG)
    if initial is None:
        tag = Tag(
            id=new_id(),
            dataset_id=dataset_id,
            name=INITIAL_TAG,
            prev_tag_id=None,
            bit_mask_data=to_bitmask(picked),
            tot_size=total,
            run_id=run_id,
            created_at=now,
            last_modified_at=now,
        )
    else:
        initial.bit_mask_data = to_bitmask(range(total))
        initial.tot_size = total
        initial.last_modified_at = now
        name = run_id
        while _by_name(s, dataset_id, name) is not None:  # a user took the name
            name += "_"
        tag = Tag(
            id=new_id(),
            dataset_id=dataset_id,
            name=name,
            prev_tag_id=initial.id,
            bit_mask_data=to_bitmask(picked),
            tot_size=total,
            run_id=run_id,
            created_at=now,
            last_modified_at=now,
        )
    s.add(tag)
    s.flush()
    return tag


def list_tags(p: Platform, user: User, dataset_id: str) -> list[TagData]:
    """The dataset's tags, newest first (as Lightly lists them)."""
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "read")
        q = select(Tag).where(Tag.dataset_id == d.id)
        return [to_wire(t) for t in s.scalars(q.order_by(Tag.created_at.desc(), Tag.id))]


def _load_tag(s: Session, user: User, dataset_id: str, tag_id: str, action: Action) -> Tag:
    d = dataset_for(s, user, dataset_id, action)
    t = s.get(Tag, tag_id)
    if t is None or t.dataset_id != d.id:
        raise NotFound(f"The dataset {dataset_id} has no tag {tag_id!r}.", "TAG_UNKNOWN")
    return t


def get_tag(p: Platform, user: User, dataset_id: str, tag_id: str) -> TagData:
    """One tag (NotFound ``TAG_UNKNOWN``)."""
    with p.session() as s:
        return to_wire(_load_tag(s, user, dataset_id, tag_id, "read"))


def delete_tag(p: Platform, user: User, dataset_id: str, tag_id: str) -> None:
    """Delete a tag; the samples stay."""
    with p.session() as s:
        s.delete(_load_tag(s, user, dataset_id, tag_id, "tag"))


def create_tag(p: Platform, user: User, dataset_id: str, req: TagCreateRequest) -> str:
    """Create a tag from a bitmask over the dataset's samples.

    Raises:
        Conflict: ``TAG_NAME_EXISTS``.
        Invalid: the parent is not a tag of the dataset, or the bitmask names a sample
            the dataset lacks.
    """
    if len(req.name) > MAX_NAME_LENGTH:
        raise Invalid(
            f"The tag name is {len(req.name)} characters long; at most {MAX_NAME_LENGTH} are "
            "allowed.",
            "BAD_REQUEST",
        )
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "tag")
        if _by_name(s, d.id, req.name) is not None:
            raise Conflict(
                f"There already exists a tag with tag_name {req.name}.", "TAG_NAME_EXISTS"
            )
        parent = s.get(Tag, req.prev_tag_id)
        if parent is None or parent.dataset_id != d.id:
            raise Invalid(
                f"The dataset {d.id} has no tag {req.prev_tag_id!r} (prevTagId).",
                "TAG_PREVTAG_NOT_IN_DATASET",
            )
        total = _count(s, d.id)
        if int(req.bit_mask_data, 16) >> total:
            raise Invalid(
                f"The bitmask {req.bit_mask_data} sets a bit beyond the dataset's {total} samples."
            )
        now = now_ms()
        t = Tag(
            id=new_id(),
            dataset_id=d.id,
            name=req.name,
            prev_tag_id=parent.id,
            bit_mask_data=hex(int(req.bit_mask_data, 16)),
            tot_size=total,
            run_id=req.run_id,
            created_at=now,
            last_modified_at=now,
        )
        s.add(t)
    return t.id


def run_tags(p: Platform, user: User, run_id: str) -> list[TagData]:
    """The tags a run made, newest first."""
    with p.session() as s:
        r = run_for(s, user, run_id, "read")
        q = select(Tag).where(Tag.run_id == r.id).order_by(Tag.created_at.desc(), Tag.id)
        return [to_wire(t) for t in s.scalars(q)]


def mappings(
    p: Platform,
    user: User,
    dataset_id: str,
    field: str,
    page_size: int | None = None,
    page_offset: int = 0,
) -> list[str]:
    """The samples' file names (``fileName``) or ids (``_id``), in sample order, paged.

    Raises:
        Invalid: another ``field``.
    """
    if field not in MAPPING_FIELDS:
        raise Invalid(f"field must be one of {', '.join(MAPPING_FIELDS)}, not {field!r}.")
    column = Sample.file_name if field == "fileName" else Sample.id
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "read")
        q = (
            select(column)
            .where(Sample.dataset_id == d.id)
            .order_by(Sample.position)
            .offset(max(page_offset, 0))
        )
        if page_size is not None and page_size > 0:
            q = q.limit(page_size)
        return list(s.scalars(q))
