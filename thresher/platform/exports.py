"""Exports of a tag's samples in Lightly's formats, paged by item offset.

Each export lists the tag's samples in sample order (``Sample.position``), from item
``page_offset`` on, at most ``page_size`` of them (all when None), so Lightly's client can page
with ``pageOffset = page * pageSize`` until a short page. The formats (platform_api.md §8):

* ``filenames``: one line per sample, the file name (``NAME``), its read URL
  (``REDIRECTED_READ_URL``) or its location in the INPUT datasource (``DATASOURCE_FULL``);
* ``filenames_and_read_urls``: ``{fileName, readUrl, datasourceUrl}``;
* ``label_studio_tasks``: ``{id, data: {image: url, lightlyFileName}}``, ``id`` the sample's
  position in the dataset (stable across pages and exports);
* ``label_box_data_rows`` (v3): ``{externalId, imageUrl}``;
* ``label_box_v4_data_rows``: ``{row_data, global_key, media_type: "IMAGE"}``.

Read URLs are the samples' signed links (:mod:`thresher.platform.samples`): they work without a
token until they expire (``expiresIn`` seconds, default ``THRESHER_READ_URL_SECONDS``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from thresher.platform import access, datasources, samples, tags
from thresher.platform.core import Platform
from thresher.platform.errors import Invalid, NotFound
from thresher.platform.locations import bucket_url, check_local_path
from thresher.platform.models import Sample, Tag, User
from thresher.wire import (
    DatasourceConfig,
    DatasourceConfigLocal,
    FilenameAndReadUrl,
    FileNameFormat,
    LabelBoxDataRow,
    LabelBoxV4DataRow,
    LabelStudioTask,
    LabelStudioTaskData,
)

#: At most this many positions go into one ``IN (...)`` query.
_CHUNK = 1000


@dataclass(frozen=True)
class ExportedSample:
    """A sample of the export: id, position and file name."""

    id: str
    position: int
    file_name: str


@dataclass(frozen=True)
class Page:
    """Which part of an export to answer: from item ``offset``, at most ``size`` (None: all)."""

    size: int | None = None
    offset: int = 0

    def check(self) -> Page:
        """This page, if its numbers are valid.

        Raises:
            Invalid: a negative offset or a size under 1.
        """
        if self.offset < 0:
            raise Invalid(f"pageOffset must be 0 or more, not {self.offset}.")
        if self.size is not None and self.size < 1:
            raise Invalid(f"pageSize must be 1 or more, not {self.size}.")
        return self


@dataclass(frozen=True)
class _Loaded:
    dataset_id: str
    samples: list[ExportedSample]
    input: DatasourceConfig | None
    local_root: Path | None  # where the server sees a LOCAL INPUT datasource


def _load(p: Platform, user: User, dataset_id: str, tag_id: str, page: Page) -> _Loaded:
    page.check()
    with p.session() as s:
        d = access.dataset_for(s, user, dataset_id, "export")
        t = s.get(Tag, tag_id)
        if t is None or t.dataset_id != d.id:
            raise NotFound(f"The dataset {dataset_id} has no tag {tag_id!r}.", "TAG_UNKNOWN")
        positions = tags.from_bitmask(t.bit_mask_data)
        end = None if page.size is None else page.offset + page.size
        wanted = positions[page.offset : end]
        found = _samples_at(s, d.id, wanted)
        cfg = datasources.resolve(p, s, d.id, datasources.INPUT_PURPOSES)
        root = datasources.input_root(p, d.type)
    return _Loaded(d.id, found, cfg, root)


def _samples_at(s: Session, dataset_id: str, positions: list[int]) -> list[ExportedSample]:
    by_position: dict[int, ExportedSample] = {}
    for i in range(0, len(positions), _CHUNK):
        chunk = positions[i : i + _CHUNK]
        q = select(Sample.id, Sample.position, Sample.file_name).where(
            Sample.dataset_id == dataset_id, Sample.position.in_(chunk)
        )
        for sid, pos, name in s.execute(q).all():
            by_position[pos] = ExportedSample(sid, pos, name)
    # A bit beyond the samples (a tag written by hand) names nothing: skipped.
    return [by_position[k] for k in positions if k in by_position]


def datasource_url(cfg: DatasourceConfig | None, root: Path | None, file_name: str) -> str:
    """Where the file lies in the INPUT datasource (``DATASOURCE_FULL``).

    ``s3://bucket/prefix/name`` for a bucket; for a LOCAL datasource the path on the server's
    view of the mount when it has one (``root``: ``datasources.input_root``), else
    ``full_path/name``.
    """
    if cfg is None:
        return file_name
    if isinstance(cfg, DatasourceConfigLocal):
        rel = posixpath.join(check_local_path(cfg.full_path), file_name)
        return str(root / rel) if root is not None else rel
    return bucket_url(cfg).rstrip("/") + "/" + file_name


def filenames(
    p: Platform,
    user: User,
    dataset_id: str,
    tag_id: str,
    base_url: str,
    file_name_format: FileNameFormat | str = FileNameFormat.NAME,
    expires_in: int | None = None,
    page: Page | None = None,
) -> list[str]:
    """The lines of ``export/basic/filenames``: names, read URLs or datasource URLs.

    Args:
        p: The platform.
        user: The caller (needs ``export`` on the dataset).
        dataset_id: The dataset.
        tag_id: The tag to export.
        base_url: The request's base URL (for read URLs; ``THRESHER_PUBLIC_URL`` wins).
        file_name_format: ``NAME``, ``REDIRECTED_READ_URL`` or ``DATASOURCE_FULL``.
        expires_in: Lifetime of read URLs in seconds (default: the setting).
        page: Which items (default: all).

    Raises:
        NotFound: no such dataset or tag (``TAG_UNKNOWN``).
        Forbidden: the caller may not export from the dataset.
        Invalid: an unknown format or bad page numbers.
    """
    try:
        fmt = FileNameFormat(file_name_format)
    except ValueError:
        allowed = ", ".join(f.value for f in FileNameFormat)
        raise Invalid(
            f"fileNameFormat must be one of {allowed}, not {file_name_format!r}."
        ) from None
    loaded = _load(p, user, dataset_id, tag_id, page or Page())
    if fmt is FileNameFormat.NAME:
        return [x.file_name for x in loaded.samples]
    if fmt is FileNameFormat.DATASOURCE_FULL:
        return [
            datasource_url(loaded.input, loaded.local_root, x.file_name) for x in loaded.samples
        ]
    return [
        samples.signed_url(p, loaded.dataset_id, x.id, base_url, expires_in) for x in loaded.samples
    ]


def filenames_and_read_urls(
    p: Platform,
    user: User,
    dataset_id: str,
    tag_id: str,
    base_url: str,
    expires_in: int | None = None,
    page: Page | None = None,
) -> list[FilenameAndReadUrl]:
    """``{fileName, readUrl, datasourceUrl}`` for each sample of the tag (see :func:`filenames`)."""
    loaded = _load(p, user, dataset_id, tag_id, page or Page())
    return [
        FilenameAndReadUrl(
            file_name=x.file_name,
            read_url=samples.signed_url(p, loaded.dataset_id, x.id, base_url, expires_in),
            datasource_url=datasource_url(loaded.input, loaded.local_root, x.file_name),
        )
        for x in loaded.samples
    ]


def label_studio_tasks(
    p: Platform,
    user: User,
    dataset_id: str,
    tag_id: str,
    base_url: str,
    expires_in: int | None = None,
    page: Page | None = None,
) -> list[LabelStudioTask]:
    """Label Studio tasks: ``data.image`` is a read URL (see :func:`filenames`)."""
    loaded = _load(p, user, dataset_id, tag_id, page or Page())
    return [
        LabelStudioTask(
            id=x.position,
            data=LabelStudioTaskData(
                image=samples.signed_url(p, loaded.dataset_id, x.id, base_url, expires_in),
                lightly_file_name=x.file_name,
            ),
        )
        for x in loaded.samples
    ]


def label_box_data_rows(
    p: Platform,
    user: User,
    dataset_id: str,
    tag_id: str,
    base_url: str,
    expires_in: int | None = None,
    page: Page | None = None,
) -> list[LabelBoxDataRow]:
    """Labelbox v3 data rows ``{externalId, imageUrl}`` (see :func:`filenames`)."""
    loaded = _load(p, user, dataset_id, tag_id, page or Page())
    return [
        LabelBoxDataRow(
            external_id=x.file_name,
            image_url=samples.signed_url(p, loaded.dataset_id, x.id, base_url, expires_in),
        )
        for x in loaded.samples
    ]


def label_box_v4_data_rows(
    p: Platform,
    user: User,
    dataset_id: str,
    tag_id: str,
    base_url: str,
    expires_in: int | None = None,
    page: Page | None = None,
) -> list[LabelBoxV4DataRow]:
    """Labelbox v4 data rows ``{row_data, global_key, media_type}`` (see :func:`filenames`)."""
    loaded = _load(p, user, dataset_id, tag_id, page or Page())
    return [
        LabelBoxV4DataRow(
            row_data=samples.signed_url(p, loaded.dataset_id, x.id, base_url, expires_in),
            global_key=x.file_name,
            media_type="IMAGE",
        )
        for x in loaded.samples
    ]
