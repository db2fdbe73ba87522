"""Datasource listing (Lightly's ``download_raw_samples`` family) and ``processedUntilTimestamp``.

Three listings, each of one datasource of a dataset:

* ``samples``: the INPUT (or INPUT_OUTPUT) datasource's images (videos for a video dataset),
  ``.lightly/`` left out;
* ``predictions``: the files below ``.lightly/predictions/<task name>/`` of LIGHTLY;
* ``metadata``: the files below ``.lightly/metadata/`` of LIGHTLY.

A file is listed when its last-modified time, in whole Unix seconds, lies in ``[from, to]``
(both inclusive, as in Lightly; a backend that gives no time counts as 0) and, with a
relevant-filenames file (read from LIGHTLY, parsed by :mod:`thresher.storage.relevant`), when
it is relevant. Names are relative to the datasource root, sorted. A link in a LOCAL
datasource pointing out of it (or a FIFO) is never listed (:func:`samples.is_served`).

Paging: an answer holds at most :data:`PAGE_SIZE` files and an opaque ``cursor`` (the query
and the last name handed out); pass it back while ``hasMore``. Divide and conquer
(``.../list/dnc``) hands out one first cursor per shard; a file belongs to shard
``crc32(name) % shards``, so the shards together hold every file exactly once. A listing is
read from storage once per divide-and-conquer call and kept a few minutes in memory for its
pages (:data:`_CACHE_SECONDS`); a page whose listing is gone (another server process, a
restart) lists again, with the same answer for files that did not change.

Read URLs are the server's signed read URLs (:func:`samples.public_token`, the one read-URL
key) over the subject ``datasource:<dataset>:<INPUT|LIGHTLY>:<name>``; they stream the file
from ``GET /v1/datasets/{id}/datasource/readurlRedirect?purpose=..&path=..&publicToken=..``
without an API token until they expire (``THRESHER_READ_URL_SECONDS``). ``useRedirectedReadUrl``
changes nothing: every URL thresher hands out is such a redirect-style link.

Who may do what (:func:`access.dataset_for`): listing and reading the timestamp need
``read`` (owner and collaborators); setting the timestamp needs ``schedule`` (owner and
collaborators: it says which files the next datapool run takes, which is scheduling work).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
import time
import uuid
import zlib
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from sqlalchemy.orm import Session

from thresher.errors import ConfigError, StorageError, ThresherError
from thresher.platform import access, datasources, samples
from thresher.platform.core import Platform
from thresher.platform.errors import Invalid, NotFound, Unprocessable
from thresher.platform.locations import fsspec_target, scrub
from thresher.platform.models import Dataset, User
from thresher.storage.location import IMAGE_EXTENSIONS, Location
from thresher.storage.relevant import RelevantFilenames
from thresher.storage.video import VIDEO_EXTENSIONS
from thresher.wire import (
    DatasetType,
    DatasourceConfig,
    DatasourceProcessedUntilTimestampResponse,
    DatasourceRawSamplesData,
    DatasourceRawSamplesDataRow,
    DivideAndConquerCursorData,
)

#: The most files one page holds.
PAGE_SIZE = 5000
#: The most shards a divide-and-conquer listing may ask for.
MAX_SHARDS = 1024
#: How long a listing is kept in memory for the pages that follow its first call.
_CACHE_SECONDS = 600.0
#: How many listings are kept at once (the oldest goes first).
_CACHE_ENTRIES = 8
#: The subject prefix of a datasource file's read URL.
SUBJECT_PREFIX = "datasource:"
#: Where predictions and metadata live in the LIGHTLY datasource.
PREDICTIONS_DIR = ".lightly/predictions"
METADATA_DIR = ".lightly/metadata"

Kind = Literal["samples", "predictions", "metadata"]
Purpose = Literal["INPUT", "LIGHTLY"]
_KINDS: tuple[str, ...] = ("samples", "predictions", "metadata")
_MOUNT_HINT = (
    "THRESHER_LOCAL_ROOT set to the worker's --input-mount folder (THRESHER_LIGHTLY_ROOT to its "
    "--lightly-mount folder)"
)


@dataclass(frozen=True)
class _Query:
    """What a cursor encodes: the listing asked for, the shard, and where the page starts."""

    kind: str
    task: str | None
    start: int  # ``from``, Unix seconds, inclusive
    end: int  # ``to``, Unix seconds, inclusive
    relevant: str | None
    shard: int
    shards: int
    after: str  # the last name handed out ("" = from the beginning)
    listing: str  # the id of the in-memory listing ("" = none)


def _encode(q: _Query) -> str:
    raw = json.dumps(asdict(q), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> _Query:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        q = _Query(**json.loads(raw))
    except (binascii.Error, ValueError, TypeError) as e:
        raise Invalid(
            "The cursor is not one this server handed out; start the listing again without "
            "a cursor (or from .../list/dnc)."
        ) from e
    if q.kind != kind:
        raise Invalid(
            f"The cursor belongs to a {q.kind} listing, not to a {kind} listing; pass it to "
            "the route that handed it out."
        )
    _check_range(q.start, q.end)
    _check_shards(q.shards)
    if not 0 <= q.shard < q.shards:
        raise Invalid(f"The cursor names shard {q.shard} of {q.shards}; start the listing again.")
    if q.task is not None:
        _check_task(q.task)
    if q.relevant is not None:
        samples.safe_relative(q.relevant, "relevant filenames file")
    return q


def _check_range(start: int, end: int) -> None:
    if start < 0 or end < 0:
        raise Invalid(f"from and to are Unix seconds (0 or more), not from={start}, to={end}.")


def _check_shards(shards: int) -> None:
    if not 1 <= shards <= MAX_SHARDS:
        raise Invalid(f"dncShards must be between 1 and {MAX_SHARDS}, not {shards}.")


def _check_task(task: str) -> None:
    samples.safe_relative(task, "prediction task name")
    if "/" in task or "\\" in task:
        raise Invalid(
            f"The prediction task name {task!r} is one folder name below "
            f"{PREDICTIONS_DIR}/ (no '/'), e.g. 'object-detection'."
        )


def _new_query(
    kind: str,
    task_name: str | None,
    from_: int | None,
    to: int | None,
    relevant_filenames_file_name: str | None,
    shards: int,
) -> _Query:
    if kind not in _KINDS:
        raise Invalid(f"Unknown listing {kind!r}; one of {', '.join(_KINDS)}.")
    start = 0 if from_ is None else from_
    end = int(time.time()) if to is None else to
    _check_range(start, end)
    _check_shards(shards)
    task = None
    if kind == "predictions":
        if not task_name:
            raise Invalid("Listing predictions needs taskName (the folder below .lightly/).")
        _check_task(task_name)
        task = task_name
    relevant = relevant_filenames_file_name or None
    if relevant is not None:
        samples.safe_relative(relevant, "relevant filenames file")
    return _Query(kind, task, start, end, relevant, 0, shards, "", "")


# --- where a listing reads ----------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """The datasource a listing reads, and how."""

    purpose: Purpose
    cfg: DatasourceConfig
    local_root: Path | None
    prefix: str  # the folder below the root that is listed ("" = the root)
    extensions: tuple[str, ...] | None
    lightly: DatasourceConfig | None  # where the relevant filenames file lies


def _source(p: Platform, s: Session, d: Dataset, q: _Query) -> _Source:
    lightly = datasources.resolve(p, s, d.id, datasources.LIGHTLY_PURPOSES)
    if q.kind == "samples":
        cfg = datasources.resolve(p, s, d.id, datasources.INPUT_PURPOSES)
        if cfg is None:
            raise NotFound(
                f"The dataset {d.id} has no INPUT datasource to list; set one with "
                "set_s3_config(..., purpose=DatasourcePurpose.INPUT) etc.",
                "DATASET_DATASOURCE_UNKNOWN",
            )
        ext = VIDEO_EXTENSIONS if d.type == DatasetType.VIDEOS else IMAGE_EXTENSIONS
        return _Source("INPUT", cfg, datasources.input_root(p, d.type), "", ext, lightly)
    if lightly is None:
        raise NotFound(
            f"The dataset {d.id} has no LIGHTLY datasource, where {q.kind} lie; set one with "
            "set_s3_config(..., purpose=DatasourcePurpose.LIGHTLY) etc.",
            "DATASET_DATASOURCE_UNKNOWN",
        )
    prefix = f"{PREDICTIONS_DIR}/{q.task}" if q.kind == "predictions" else METADATA_DIR
    return _Source("LIGHTLY", lightly, p.settings.lightly_root, prefix, None, lightly)


def _location(cfg: DatasourceConfig, local_root: Path | None, what: str) -> Location:
    target = fsspec_target(cfg, local_root)
    if target is None:
        raise Unprocessable(
            f"The {what} datasource is a LOCAL folder the server cannot see. Start the server "
            f"with {_MOUNT_HINT}.",
            "DATASET_DATASOURCE_UNAVAILABLE",
        )
    url, opts = target
    return Location(url, opts)


def _relevant(p: Platform, src: _Source, name: str) -> RelevantFilenames:
    if src.lightly is None:
        raise NotFound(
            f"The relevant filenames file {name} is read from the LIGHTLY datasource, and the "
            "dataset has none; set one first.",
            "DATASET_DATASOURCE_UNKNOWN",
        )
    loc = _location(src.lightly, p.settings.lightly_root, "LIGHTLY")
    try:
        return RelevantFilenames.parse(loc.read_text(name), source=name)
    except ConfigError as e:
        raise Invalid(str(e)) from e
    except StorageError as e:
        raise Invalid(
            f"The relevant filenames file {name} cannot be read from the LIGHTLY datasource: "
            f"{scrub(str(e), src.lightly)}. Upload it there (relative to the LIGHTLY root, "
            "e.g. .lightly/relevant_filenames.txt)."
        ) from e


def _keeps(rules: RelevantFilenames, src: _Source, rel: str) -> bool:
    """Whether a listed file is relevant.

    Samples by their name; predictions and metadata by the image or video their JSON
    describes (its name without ``.json``, with any known extension). ``schema.json`` stays.
    """
    if src.purpose == "INPUT":
        return rules.is_relevant(rel)
    inner = rel[len(src.prefix) + 1 :] if src.prefix else rel
    if inner == "schema.json" or not inner.endswith(".json"):
        return True
    stem = inner[: -len(".json")]
    return any(rules.is_relevant(stem + e) for e in (*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS))


def _list(p: Platform, src: _Source, q: _Query) -> list[str]:
    """Every matching name (relative to the datasource root), sorted: all shards."""
    loc = _location(src.cfg, src.local_root, src.purpose)
    listed = loc.child(src.prefix) if src.prefix else loc
    rules = None
    if q.relevant is not None:
        rules = _relevant(p, src, q.relevant)
    try:
        if src.prefix and not loc.exists(src.prefix):
            return []
        skip: tuple[str, ...] = (".lightly",) if src.purpose == "INPUT" else ()
        files = listed.list_files(src.extensions, skip_dirs=skip)
    except ThresherError as e:
        raise Unprocessable(
            f"Cannot list the {src.purpose} datasource: {scrub(str(e), src.cfg)}",
            "DATASET_DATASOURCE_UNAVAILABLE",
        ) from e
    fs, root = loc.fs, loc.root
    out: list[str] = []
    for f in files:
        rel = f"{src.prefix}/{f.name}" if src.prefix else f.name
        stamp = math.floor(f.modified) if f.modified is not None else 0
        if not q.start <= stamp <= q.end:
            continue
        if rules is not None and not _keeps(rules, src, rel):
            continue
        if not samples.is_served(fs, root, loc.path(rel)):
            continue  # a link out of the datasource, a FIFO: never listed
        out.append(rel)
    out.sort()
    return out


# --- the in-memory listings ---------------------------------------------------------------

_lock = threading.Lock()
_cache: OrderedDict[str, tuple[float, tuple[str, ...], list[str]]] = OrderedDict()


def _cache_key(dataset_id: str, q: _Query) -> tuple[str, ...]:
    return (dataset_id, q.kind, q.task or "", str(q.start), str(q.end), q.relevant or "")


def _remember(dataset_id: str, q: _Query, names: list[str]) -> str:
    listing = uuid.uuid4().hex
    with _lock:
        _cache[listing] = (time.monotonic(), _cache_key(dataset_id, q), names)
        while len(_cache) > _CACHE_ENTRIES:
            _cache.popitem(last=False)
    return listing


def _recall(dataset_id: str, q: _Query) -> list[str] | None:
    with _lock:
        now = time.monotonic()
        for key in [k for k, (t, _, _) in _cache.items() if now - t > _CACHE_SECONDS]:
            del _cache[key]
        hit = _cache.get(q.listing)
    if hit is None or hit[1] != _cache_key(dataset_id, q):
        return None
    return hit[2]


def _shard_of(name: str, shards: int) -> int:
    return zlib.crc32(name.encode("utf-8")) % shards if shards > 1 else 0


# --- the service functions ----------------------------------------------------------------


def divide_and_conquer(
    p: Platform,
    user: User,
    dataset_id: str,
    kind: Kind,
    *,
    dnc_shards: int,
    from_: int | None = None,
    to: int | None = None,
    relevant_filenames_file_name: str | None = None,
    task_name: str | None = None,
) -> DivideAndConquerCursorData:
    """The first cursor of each of ``dnc_shards`` shards of a listing (``.../list/dnc``).

    The datasource is listed here, once; the pages of every shard read that listing.

    Args:
        p: The platform.
        user: The caller (needs ``read`` on the dataset).
        dataset_id: The dataset.
        kind: ``samples``, ``predictions`` or ``metadata``.
        dnc_shards: How many shards (1 to :data:`MAX_SHARDS`).
        from_: Files modified at or after this Unix second (default 0).
        to: Files modified at or before this Unix second (default now).
        relevant_filenames_file_name: A file in LIGHTLY naming the relevant files.
        task_name: The prediction task (``predictions`` only, required there).

    Raises:
        NotFound: no such dataset (or a stranger's), or the datasource is not set.
        Invalid: a bad parameter, or an unreadable relevant filenames file.
        Unprocessable: the datasource cannot be listed (a LOCAL one the server cannot see).
    """
    q = _new_query(kind, task_name, from_, to, relevant_filenames_file_name, dnc_shards)
    with p.session() as s:
        d = access.dataset_for(s, user, dataset_id, "read")
        src = _source(p, s, d, q)
    listing = _remember(d.id, q, _list(p, src, q))
    return DivideAndConquerCursorData(
        cursors=[_encode(replace(q, shard=i, listing=listing)) for i in range(q.shards)]
    )


def list_page(
    p: Platform,
    user: User,
    dataset_id: str,
    kind: Kind,
    base_url: str,
    *,
    cursor: str | None = None,
    from_: int | None = None,
    to: int | None = None,
    relevant_filenames_file_name: str | None = None,
    task_name: str | None = None,
) -> DatasourceRawSamplesData:
    """One page of a listing: at most :data:`PAGE_SIZE` files with their read URLs.

    Without ``cursor`` the listing starts (one shard) from ``from_``/``to``/...; with one, the
    other parameters are ignored (the cursor holds them, as in Lightly).

    Args:
        p: The platform.
        user: The caller (needs ``read`` on the dataset).
        dataset_id: The dataset.
        kind: ``samples``, ``predictions`` or ``metadata``.
        base_url: The request's base URL (``THRESHER_PUBLIC_URL`` wins) for the read URLs.
        cursor: The ``cursor`` of the previous page, or one from :func:`divide_and_conquer`.
        from_: Files modified at or after this Unix second (default 0).
        to: Files modified at or before this Unix second (default now).
        relevant_filenames_file_name: A file in LIGHTLY naming the relevant files.
        task_name: The prediction task (``predictions`` only).

    Raises:
        NotFound: no such dataset (or a stranger's), or the datasource is not set.
        Invalid: a bad parameter or cursor, or an unreadable relevant filenames file.
        Unprocessable: the datasource cannot be listed.
    """
    if cursor:
        q = _decode(cursor, kind)
    else:
        q = _new_query(kind, task_name, from_, to, relevant_filenames_file_name, 1)
    with p.session() as s:
        d = access.dataset_for(s, user, dataset_id, "read")
        src = _source(p, s, d, q)
    names = _recall(d.id, q)
    if names is None:
        names = _list(p, src, q)
        q = replace(q, listing=_remember(d.id, q, names))
    page: list[str] = []
    has_more = False
    for name in _from(names, q.after):
        if _shard_of(name, q.shards) != q.shard:
            continue
        if len(page) == PAGE_SIZE:
            has_more = True
            break
        page.append(name)
    expires = samples.lifetime(p, None)
    base = samples.base_of(p, base_url)
    rows = [
        DatasourceRawSamplesDataRow(
            file_name=n, read_url=_read_url(p, base, d.id, src.purpose, n, expires)
        )
        for n in page
    ]
    after = page[-1] if page else q.after
    return DatasourceRawSamplesData(
        has_more=has_more, cursor=_encode(replace(q, after=after)), data=rows
    )


def _from(names: list[str], after: str) -> Iterator[str]:
    """The names after ``after`` (all of them when it is empty)."""
    start = bisect_right(names, after) if after else 0
    yield from names[start:]


def _subject(dataset_id: str, purpose: str, name: str) -> str:
    return f"{SUBJECT_PREFIX}{dataset_id}:{purpose}:{name}"


def _read_url(p: Platform, base: str, dataset_id: str, purpose: str, name: str, exp: int) -> str:
    token = samples.public_token(p, _subject(dataset_id, purpose, name), exp)
    return (
        f"{base}/v1/datasets/{dataset_id}/datasource/readurlRedirect?purpose={purpose}"
        f"&path={quote(name, safe='/')}&publicToken={token}"
    )


def open_file(
    p: Platform, dataset_id: str, purpose: str, path: str, token: str
) -> tuple[str, int | None, Iterator[bytes]]:
    """Check a listed file's read URL and open the file in its datasource.

    Returns:
        The file's name, its size if known, and an iterator over its bytes (unchanged).

    Raises:
        Forbidden: a wrong, malformed or expired ``publicToken`` (or one signed for another
            file, purpose or dataset).
        Invalid: ``path`` is not a plain relative path.
        NotFound: the dataset, its datasource or the file is gone; or the file is a link out
            of the datasource.
        Unprocessable: the file lies in a LOCAL datasource the server cannot see.
    """
    # The token first: a URL with a part missing or altered is refused as such (403).
    samples.check_public_token(p, _subject(dataset_id, purpose, path), token)
    if purpose not in ("INPUT", "LIGHTLY"):
        raise Invalid(f"purpose must be INPUT or LIGHTLY, not {purpose!r}.")
    with p.session() as s:
        d = s.get(Dataset, dataset_id)
        if d is None:
            raise access.unknown_dataset(dataset_id)
        if purpose == "INPUT":
            cfg = datasources.resolve(p, s, d.id, datasources.INPUT_PURPOSES)
            root = datasources.input_root(p, d.type)
        else:
            cfg = datasources.resolve(p, s, d.id, datasources.LIGHTLY_PURPOSES)
            root = p.settings.lightly_root
    size, chunks = samples.open_in_datasource(
        cfg, root, path, "datasource file", "DATASOURCE_FILE_UNAVAILABLE", _MOUNT_HINT
    )
    return path.rsplit("/", 1)[-1], size, chunks


def processed_until(p: Platform, user: User, dataset_id: str) -> int:
    """Lightly's ``processedUntilTimestamp`` of the dataset (Unix seconds; 0 = never set).

    Raises:
        NotFound: no such dataset, or a stranger's.
    """
    with p.session() as s:
        d = access.dataset_for(s, user, dataset_id, "read")
        return int(d.processed_until or 0)


def processed_until_response(
    p: Platform, user: User, dataset_id: str
) -> DatasourceProcessedUntilTimestampResponse:
    """:func:`processed_until` as the wire answer."""
    return DatasourceProcessedUntilTimestampResponse(
        processed_until_timestamp=processed_until(p, user, dataset_id)
    )


def set_processed_until(p: Platform, user: User, dataset_id: str, timestamp: int) -> None:
    """Set the dataset's ``processedUntilTimestamp`` (Unix seconds).

    Needs ``schedule``: the owner and the users the dataset is shared with.

    Raises:
        NotFound: no such dataset, or a stranger's.
        Invalid: a negative timestamp.
    """
    if timestamp < 0:
        raise Invalid(f"processedUntilTimestamp is Unix seconds (0 or more), not {timestamp}.")
    with p.session() as s:
        d = access.dataset_for(s, user, dataset_id, "schedule")
        d.processed_until = int(timestamp)
