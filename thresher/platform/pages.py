"""What the web page shows: a dataset's runs and tags, a tag's samples, a sample's thumbnail.

Plain queries for the server-rendered page (``thresher.server.web``); every function checks
access with :func:`thresher.platform.access.dataset_for` (``read``), so whoever may read a
dataset through the API may see its page, and nobody else.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from sqlalchemy import select

from thresher.platform import datasets, datasources
from thresher.platform.access import dataset_for
from thresher.platform.core import Platform
from thresher.platform.errors import Invalid, NotFound
from thresher.platform.locations import fsspec_target
from thresher.platform.models import Artifact, Run, Sample, Tag, User
from thresher.platform.samples import is_served
from thresher.platform.tags import from_bitmask
from thresher.storage.thumbnails import media_type, thumbnail_rel
from thresher.wire import END_STATES, DatasetData, now_ms

log = logging.getLogger("thresher.server")

#: Thumbnails on one gallery page.
GALLERY_PAGE_SIZE = 48


@dataclass(frozen=True)
class ArtifactRow:
    """A file of a run (report.pdf, log.txt...)."""

    id: str
    type: str
    file_name: str


@dataclass(frozen=True)
class RunRow:
    """A run as the dataset page lists it.

    Attributes:
        duration_s: From taken to ended (or to now while it runs).
        ended: The run is in an end state (COMPLETED, FAILED, CRASHED, ABORTED).
        prefect_flow_run_id: The Prefect flow run executing it, when the worker reported one.
        tags: ``(tag id, tag name)`` of the tags the run made.
    """

    id: str
    state: str
    message: str | None
    created_at: int
    duration_s: float
    ended: bool
    prefect_flow_run_id: str | None
    artifacts: list[ArtifactRow] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class TagRow:
    """A tag and how many samples it holds."""

    id: str
    name: str
    size: int
    tot_size: int
    run_id: str | None
    created_at: int


@dataclass(frozen=True)
class DatasetPage:
    """Everything the dataset page shows (runs newest first, tags newest first)."""

    dataset: DatasetData
    owned: bool
    runs: list[RunRow]
    tags: list[TagRow]


@dataclass(frozen=True)
class GallerySample:
    """A sample on a gallery page."""

    id: str
    file_name: str


@dataclass(frozen=True)
class GalleryPage:
    """One page of a tag's samples, in sample order.

    Attributes:
        page: This page's number, from 1.
        pages: How many pages there are (at least 1).
    """

    dataset: DatasetData
    tag: TagRow
    samples: list[GallerySample]
    page: int
    pages: int
    page_size: int


def _tag_row(t: Tag) -> TagRow:
    return TagRow(
        id=t.id,
        name=t.name,
        size=int(t.bit_mask_data, 16).bit_count(),
        tot_size=t.tot_size,
        run_id=t.run_id,
        created_at=t.created_at,
    )


def dataset_page(p: Platform, user: User, dataset_id: str) -> DatasetPage:
    """The dataset's runs (newest first, with artifacts and tags) and tags.

    Raises:
        NotFound: no such dataset.
        Forbidden: the user may not read it.
    """
    now = now_ms()
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "read")
        tag_rows = s.scalars(
            select(Tag).where(Tag.dataset_id == d.id).order_by(Tag.created_at.desc(), Tag.id)
        ).all()
        run_rows = s.scalars(
            select(Run).where(Run.dataset_id == d.id).order_by(Run.created_at.desc(), Run.id)
        ).all()
        arts: dict[str, list[ArtifactRow]] = {}
        ids = [r.id for r in run_rows]
        if ids:
            q = (
                select(Artifact)
                .where(Artifact.run_id.in_(ids))
                .order_by(Artifact.created_at, Artifact.id)
            )
            for a in s.scalars(q):
                arts.setdefault(a.run_id, []).append(ArtifactRow(a.id, a.type, a.file_name))
        by_run: dict[str, list[tuple[str, str]]] = {}
        for t in tag_rows:
            if t.run_id is not None:
                by_run.setdefault(t.run_id, []).append((t.id, t.name))
        runs = [
            RunRow(
                id=r.id,
                state=r.state,
                message=r.message,
                created_at=r.created_at,
                duration_s=max(
                    0.0,
                    ((r.last_modified_at if r.state in END_STATES else now) - r.created_at) / 1000,
                ),
                ended=r.state in END_STATES,
                prefect_flow_run_id=r.prefect_flow_run_id,
                artifacts=arts.get(r.id, []),
                tags=by_run.get(r.id, []),
            )
            for r in run_rows
        ]
        return DatasetPage(
            dataset=datasets.to_wire(d),
            owned=d.user_id == user.id,
            runs=runs,
            tags=[_tag_row(t) for t in tag_rows],
        )


def gallery(
    p: Platform,
    user: User,
    dataset_id: str,
    tag_id: str,
    page: int = 1,
    page_size: int = GALLERY_PAGE_SIZE,
) -> GalleryPage:
    """One page of the tag's samples (a page past the last one is the last one).

    Raises:
        NotFound: no such dataset, or the dataset has no such tag (``TAG_UNKNOWN``).
        Forbidden: the user may not read the dataset.
    """
    page_size = max(1, page_size)
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "read")
        t = s.get(Tag, tag_id)
        if t is None or t.dataset_id != d.id:
            raise NotFound(f"The dataset {dataset_id} has no tag {tag_id!r}.", "TAG_UNKNOWN")
        positions = from_bitmask(t.bit_mask_data)
        pages = max(1, math.ceil(len(positions) / page_size))
        page = min(max(1, page), pages)
        wanted = positions[(page - 1) * page_size : page * page_size]
        rows = s.scalars(
            select(Sample)
            .where(Sample.dataset_id == d.id, Sample.position.in_(wanted))
            .order_by(Sample.position)
        ).all()
        return GalleryPage(
            dataset=datasets.to_wire(d),
            tag=_tag_row(t),
            samples=[GallerySample(x.id, x.file_name) for x in rows],
            page=page,
            pages=pages,
            page_size=page_size,
        )


def _safe_rel(name: str) -> bool:
    parts = name.split("/")
    return not (name.startswith("/") or "\\" in name or any(x in ("", ".", "..") for x in parts))


def thumbnail(p: Platform, user: User, dataset_id: str, sample_id: str) -> tuple[bytes, str] | None:
    """The sample's thumbnail from the LIGHTLY datasource, and its media type.

    None when there is none to show: the run wrote none, the dataset has no LIGHTLY datasource,
    or it is LOCAL and the server does not know the mount (``THRESHER_LIGHTLY_ROOT``).

    Raises:
        NotFound: no such dataset, or no such sample in it (``SAMPLE_UNKNOWN``).
        Forbidden: the user may not read the dataset.
    """
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "read")
        sample = s.get(Sample, sample_id)
        if sample is None or sample.dataset_id != d.id:
            raise NotFound(
                f"The dataset {dataset_id} has no sample {sample_id!r}.", "SAMPLE_UNKNOWN"
            )
        name = sample.file_name
        out = datasources.resolve(p, s, d.id, datasources.LIGHTLY_PURPOSES)
    if out is None or not _safe_rel(name):
        return None
    try:
        target = fsspec_target(out, p.settings.lightly_root)
    except Invalid as e:
        log.warning("no thumbnails for dataset %s: %s", dataset_id, e.message)
        return None
    if target is None:
        return None
    from fsspec.core import url_to_fs

    rel = thumbnail_rel(name)
    url, opts = target
    try:
        fs, root = url_to_fs(url, **opts)
        path = root.rstrip("/") + "/" + rel
        if not is_served(fs, root, path):  # a link out of LIGHTLY, a FIFO: never opened
            return None
        data = fs.cat_file(path)
    except FileNotFoundError:
        return None
    except OSError as e:  # storage trouble: a placeholder, and the reason in the server log
        log.warning("thumbnail %s of dataset %s unreadable: %s", rel, dataset_id, type(e).__name__)
        return None
    return bytes(data), media_type(rel)
