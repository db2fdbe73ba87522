"""Locations: an fsspec URL plus its (secret) storage options, read-only or read-write.

INPUT is opened read-only, so the code cannot write to it by mistake; LIGHTLY is read-write and
every write is atomic (temporary name, then a move), so a run that dies leaves no half-written
file in place. Nothing here branches on the URL scheme: fsspec picks the backend, and a missing
backend package gives an install hint.

Retries are the backends' own, one mechanism per backend: s3fs retries throttling (``SlowDown``)
and dropped connections around botocore's own retries, gcsfs retries 429s, 5xx and timeouts,
adlfs uses the Azure SDK's retry policy, all with exponential backoff; each request has a
connect and a read timeout (s3fs: 5 s and 15 s), so a stalled request is retried too. What is
here is what happens when the retries run out: an error that names the object. A missing or
forbidden object is a :class:`StorageError` (an OSError: the corruption check counts that one
file as unreadable), while a store that keeps throttling, failing or timing out raises
:class:`StorageUnavailableError` (not an OSError), which ends the run instead of passing a
healthy file off as corrupt. No message carries a credential: URLs lose their user info and
query strings (SAS tokens, signatures).
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from thresher.errors import StorageError, StorageUnavailableError, ThresherError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

_CLOUD_HINTS = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
}


#: A file being written is a sibling ``.tmp-<32 hex>`` until it is moved into place; the probe
#: that checks a location is writable is ``.lightly/.write-check-<8 hex>``.
TEMP_PREFIX = ".tmp-"
TEMP_NAME = re.compile(r"^\.tmp-[0-9a-f]{32}$|^\.write-check-[0-9a-f]{8}$")
#: Characters fsspec expands as glob patterns in the paths of batched calls.
_GLOB_CHARS = frozenset("*?[")


def redact_url(url: str) -> str:
    """The URL without credentials: user info and query strings (SAS tokens) are removed."""
    url = re.sub(r"(?<=://)[^/@]*@", "", url)
    return url.split("?", 1)[0]


_SECRET_PARAMS = re.compile(
    r"(?i)((?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|"
    r"x-goog-signature|x-goog-credential|accountkey|sharedaccesssignature|access_token)=)"
    r"[^&;\s'\"]+"
)
# Exception families the cloud backends raise besides OSError, by module; looked up only in
# modules already imported, so naming them here imports nothing.
_BACKEND_ERRORS = (
    ("botocore.exceptions", "BotoCoreError"),
    ("aiohttp", "ClientError"),
    ("google.auth.exceptions", "TransportError"),
    ("azure.core.exceptions", "AzureError"),
)
_PER_OBJECT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
# A backend error of these names is the network's; others (NoCredentialsError...) are not.
_CONNECTION_NAMES = re.compile(
    r"Connect|Endpoint|Disconnect|Reset|IncompleteRead|Streaming|ClientOSError|HTTPClient|Payload"
)


def scrub(text: str) -> str:
    """``text`` (an error message) without credentials.

    URLs lose user info and query strings; signature, credential and account-key parameters
    lose their values.
    """
    text = re.sub(r"(?<=://)[^/@\s'\"]*@", "", text)
    text = re.sub(r"(\w+://[^\s?'\"]*)\?[^\s'\"]*", r"\1", text)
    return _SECRET_PARAMS.sub(r"\1***", text)


def _io_errors() -> tuple[type[BaseException], ...]:
    """OSError and the error families of the backends imported so far."""
    found: list[type[BaseException]] = [OSError]
    for module, name in _BACKEND_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _status(err: BaseException) -> int | None:
    """The HTTP status an exception carries, in any backend's spelling."""
    response = getattr(err, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if isinstance(status, int) else None
    for attr in ("status_code", "status", "code"):  # azure-core, aiohttp, gcsfs
        value = getattr(err, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def transient_reason(err: BaseException) -> str | None:
    """Why ``err`` is the storage's fault rather than the object's, or None.

    Throttling (429, 503 SlowDown), server errors (5xx), timeouts and dropped connections are
    transient: the backends retry them, so one that still arrives means the retries ran out.
    A missing or forbidden object is not.
    """
    if isinstance(err, _PER_OBJECT):
        return None
    backend = tuple(c for c in _io_errors() if c is not OSError)
    seen: set[int] = set()
    node: BaseException | None = err
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        status = _status(node)
        if status is not None:
            if status in (408, 429) or status >= 500:
                return f"HTTP {status}"
            return None
        name = type(node).__name__
        if isinstance(node, TimeoutError) or "timeout" in name.lower():
            return "timeouts"
        if isinstance(node, ConnectionError) or (
            backend and isinstance(node, backend) and _CONNECTION_NAMES.search(name)
        ):
            return f"connection failures ({name})"
        node = node.__cause__ or node.__context__
    return None


@dataclass(frozen=True)
class FileInfo:
    """One listed file: its name relative to the location root, size and a change token.

    ``modified`` is the object's last-modified time in Unix seconds (None where the backend
    gives none); it takes no part in comparisons.
    """

    name: str
    size: int
    token: str  # etag / mtime: anything that changes when the content changes
    modified: float | None = field(default=None, compare=False)


def modified_time(info: dict[str, Any]) -> float | None:
    """The last-modified time (Unix seconds) in an fsspec ``info`` dict, any backend's spelling.

    Local files and memory give ``mtime``/``created`` as numbers, s3fs ``LastModified`` and
    adlfs ``last_modified`` as datetimes, gcsfs ``updated`` (or ``mtime``) as a datetime or an
    ISO 8601 text. None when there is none.
    """
    from datetime import UTC, datetime

    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
            return stamp.timestamp()
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                try:
                    return float(value)
                except ValueError:
                    continue
            stamp = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            return stamp.timestamp()
    return None


@dataclass(eq=False)
class Location:
    """A folder addressed by an fsspec URL.

    Args:
        url: A local path or fsspec URL (``s3://bucket/prefix``, ``memory://x``...).
        storage_options: Passed to the fsspec filesystem. Never logged or shown.
        writable: False for INPUT: every write method then raises StorageError.
    """

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    writable: bool = False

    def __repr__(self) -> str:
        mode = "rw" if self.writable else "ro"
        return f"Location({redact_url(self.url)!r}, {mode})"

    @property
    def display(self) -> str:
        """The URL as it may be shown in logs and reports."""
        return redact_url(self.url)

    @cached_property
    def _fs_root(self) -> tuple[fsspec.AbstractFileSystem, str]:
        try:
            fs, root = url_to_fs(self.url, **self.storage_options)
        except (ImportError, ValueError) as e:
            proto = self.url.split("://", 1)[0] if "://" in self.url else ""
            pkg = _CLOUD_HINTS.get(proto)
            hint = f" Install it with: pip install 'thresher[cloud]' (needs {pkg})." if pkg else ""
            raise StorageError(scrub(f"Cannot open {self.display}: {e}.{hint}")) from e
        return fs, root.rstrip("/") or "/"

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem (for the few callers that need its own API)."""
        return self._fs_root[0]

    @property
    def root(self) -> str:
        """The root folder's path on :attr:`fs`, without a trailing slash."""
        return self._fs_root[1]

    def path(self, rel: str = "") -> str:
        """The filesystem path of ``rel`` (a forward-slash name relative to the root)."""
        if not rel:
            return self.root
        return posixpath.join(self.root, rel) if self.root != "/" else "/" + rel

    def child(self, rel: str) -> Location:
        """A location for a subfolder, with the same options and mode."""
        return Location(self.url.rstrip("/") + "/" + rel, self.storage_options, self.writable)

    def _error(self, err: BaseException, verb: str, what: str, message: str) -> ThresherError:
        """The error to raise for ``err``.

        StorageUnavailableError where the storage is failing (the retries ran out), else a
        StorageError with ``message``.
        """
        why = transient_reason(err)
        if why is None:
            if "credential" in type(err).__name__.lower():
                message += (
                    ". Give thresher credentials for it in the environment (AWS_*, "
                    "GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*) or in fsspec's config."
                )
            return StorageError(scrub(message))
        where = f"{what} in {self.display}" if what else self.display
        return StorageUnavailableError(
            f"Cannot {verb} {where}: the storage still answered with {why} after retrying "
            f"with backoff ({type(err).__name__}: {scrub(str(err))[:300]}). This is the "
            "storage or the network, not the file: check the service's status, your "
            "connection and request-rate limits, then run the same command again; finished "
            "stages are reused."
        )

    # -- reading -------------------------------------------------------------------------------
    def exists(self, rel: str = "") -> bool:
        """Whether ``rel`` (a file or folder) exists."""
        try:
            return bool(self.fs.exists(self.path(rel)))
        except _io_errors() as e:
            raise self._error(e, "reach", rel, f"Cannot reach {self.display}: {e}") from e

    @contextlib.contextmanager
    def _reading(self, rel: str) -> Iterator[None]:
        """Turn a failed read of ``rel`` into an error that names it."""
        try:
            yield
        except FileNotFoundError as e:
            raise StorageError(f"File not found: {rel} in {self.display}") from e
        except _io_errors() as e:
            raise self._error(e, "read", rel, f"Cannot read {rel} in {self.display}: {e}") from e

    def size(self, rel: str) -> int:
        """The size of the file ``rel`` in bytes."""
        with self._reading(rel):
            return int(self.fs.size(self.path(rel)))

    def read_bytes(self, rel: str) -> bytes:
        """The content of the file ``rel``."""
        with self._reading(rel):
            return bytes(self.fs.cat_file(self.path(rel)))

    def read_text(self, rel: str) -> str:
        """The content of the UTF-8 text file ``rel``."""
        return self.read_bytes(rel).decode("utf-8")

    def read_many(self, rels: Sequence[str], chunk: int = 512) -> Iterator[tuple[int, bytes]]:
        """``(index, content)`` for each of ``rels`` that exists, in order; missing ones skipped.

        Files are fetched ``chunk`` at a time with one batched ``cat`` (one round of
        concurrent requests on object stores), so many small files cost few round trips.
        """
        for start in range(0, len(rels), chunk):
            paths = [self.path(r) for r in rels[start : start + chunk]]
            # A batched cat expands its paths as globs: x[1].png would name x1.png, or nothing.
            literal = [p for p in paths if not _GLOB_CHARS.intersection(p)]
            try:
                blobs = self.fs.cat(literal, on_error="omit") if literal else {}
            except _io_errors() as e:
                raise self._error(e, "read", "", f"Cannot read from {self.display}: {e}") from e
            for offset, path in enumerate(paths):
                raw = blobs.get(path)
                if raw is None:
                    # fsspec may key results by a normalised path, and omits a file whose
                    # read failed: a direct read names it (or finds it missing).
                    if not self.exists(rels[start + offset]):
                        continue
                    raw = self.read_bytes(rels[start + offset])
                yield start + offset, bytes(raw)

    def has_file(
        self, extensions: tuple[str, ...], *, skip_dirs: tuple[str, ...] = (".lightly",)
    ) -> bool:
        """Whether any file below the root ends with one of ``extensions`` (any case).

        Stops at the first one found, so it answers in a moment where :meth:`list_files`
        would list a whole bucket.
        """
        try:
            for _root, dirs, files in self.fs.walk(self.root):
                dirs[:] = [d for d in dirs if d not in skip_dirs]
                if any(f.lower().endswith(extensions) for f in files):
                    return True
        except _io_errors() as e:
            raise self._error(e, "list", "", f"Cannot list {self.display}: {e}") from e
        return False

    def list_files(
        self,
        extensions: tuple[str, ...] | None = None,
        *,
        skip_dirs: tuple[str, ...] = (".lightly",),
    ) -> list[FileInfo]:
        """Every file below the root, recursively, sorted by relative name.

        Args:
            extensions: Lower-case suffixes to keep (any case matches); None keeps all.
            skip_dirs: Folder names whose contents are never listed (thresher's own outputs).
        """
        try:
            if not self.fs.exists(self.root):
                raise FileNotFoundError(self.root)
            found = self.fs.find(self.root, withdirs=False, detail=True)
        except FileNotFoundError as e:
            raise StorageError(f"{self.display} does not exist.") from e
        except _io_errors() as e:
            raise self._error(e, "list", "", f"Cannot list {self.display}: {e}") from e
        prefix = self.root.rstrip("/") + "/"
        out: list[FileInfo] = []
        for path, info in found.items():
            if info.get("type") == "directory":
                continue
            rel = path[len(prefix) :] if path.startswith(prefix) else posixpath.basename(path)
            parts = rel.split("/")
            if any(p in skip_dirs for p in parts[:-1]):
                continue
            if extensions is not None and not rel.lower().endswith(extensions):
                continue
            token = str(
                info.get("ETag")
                or info.get("etag")
                or info.get("mtime")
                or info.get("created")
                or info.get("LastModified")
                or info.get("last_modified")
                or ""
            )
            out.append(FileInfo(rel, int(info.get("size") or 0), token, modified_time(info)))
        out.sort(key=lambda f: f.name)
        return out

    # -- writing (atomic) -----------------------------------------------------------------------
    def _check_writable(self, rel: str) -> None:
        if not self.writable:
            raise StorageError(
                f"Refusing to write {rel} into {self.display}: this location is read-only "
                "(INPUT is never written)."
            )

    def makedirs(self, rel: str = "") -> None:
        """Create the folder ``rel`` and its parents (no-op where it exists)."""
        self._check_writable(rel)
        try:
            self.fs.makedirs(self.path(rel), exist_ok=True)
        except _io_errors() as e:
            where = self.child(rel).display if rel else self.display
            reason = getattr(e, "strerror", None) or e
            raise self._error(
                e,
                "create",
                rel,
                f"Cannot create {where} ({reason}). Give thresher write access there, or pass "
                "another --lightly location.",
            ) from e

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``rel`` atomically.

        A temporary sibling, then a move into place; object stores get one upload, which they
        commit atomically.
        """
        self._check_writable(rel)
        final = self.path(rel)
        parent = posixpath.dirname(final)
        # Not named after the final name: that may hold glob characters (fsspec's move expands
        # them) or be too long for the filesystem once a suffix is added.
        tmp = posixpath.join(parent, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        message = f"Cannot write {rel} to {self.display}"
        if getattr(self.fs, "async_impl", False):
            # Object stores (the async backends: s3fs, gcsfs, adlfs) make an object visible
            # only when its upload completes, so a direct write is already atomic; a move
            # there would be a second full copy.
            try:
                self.fs.pipe_file(final, data)
            except _io_errors() as e:
                raise self._error(e, "write", rel, f"{message}: {e}") from e
            return
        try:
            self.fs.makedirs(parent, exist_ok=True)
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, final)
        except BaseException as e:  # Ctrl-C too: never leave the temporary file behind
            try:
                if self.fs.exists(tmp):
                    self.fs.rm_file(tmp)
            except _io_errors():
                pass  # the original error is the one to report
            if isinstance(e, _io_errors()):
                raise self._error(e, "write", rel, f"{message}: {e}") from e
            raise

    def write_text(self, rel: str, text: str) -> None:
        """Write ``text`` as UTF-8 to ``rel`` atomically."""
        self.write_bytes(rel, text.encode("utf-8"))

    def put_file(self, local_path: str, rel: str) -> None:
        """Copy a local file to ``rel`` atomically."""
        with open(local_path, "rb") as fh:
            self.write_bytes(rel, fh.read())

    def remove(self, rel: str) -> None:
        """Delete the file ``rel`` (the embed stage drops its shards once they are joined)."""
        self._check_writable(rel)
        try:
            self.fs.rm_file(self.path(rel))
        except _io_errors() as e:
            raise self._error(
                e, "delete", rel, f"Cannot delete {rel} in {self.display}: {e}"
            ) from e

    def check_writable(self) -> None:
        """Prove the location can be written, with a message that says how to fix it if not."""
        probe = f".lightly/.write-check-{uuid.uuid4().hex[:8]}"
        try:
            self.write_bytes(probe, b"ok")
            self.fs.rm_file(self.path(probe))
        except (StorageError, OSError) as e:
            raise StorageError(
                f"The LIGHTLY location {self.display} is not writable ({e}). Give thresher "
                "LIST, READ and WRITE access there, or pass another --lightly location."
            ) from e
