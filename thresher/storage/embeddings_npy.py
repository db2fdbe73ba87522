"""Embeddings as ``.npy`` files: thresher's large-run input and its stage outputs.

``worker_config.embeddings`` may name a ``.npy`` in ``.lightly/embeddings/`` instead of a
Lightly CSV: a 2-D float32 or float16 array (``numpy.save(path, x)``, C order), one row per
file, and beside it ``<name>.filenames.txt`` (for ``big.npy``: ``big.filenames.txt``) with
the files' names, UTF-8, one per line, in row order, relative to the INPUT root with forward
slashes. The rows are matched to the files by the CSV's rule
(:func:`thresher.storage.embeddings_csv.match_rows`). A ``.npy`` is read by memory-mapping,
so a 1,000,000 x 1,280 input (5 GB) is never parsed or held whole: a 12 GB CSV would be.
The filenames are a text file, not a column of the array, because a ``.npy`` of strings is
not memory-mappable and a text file is what every tool writes.

Reading large arrays: :func:`iter_chunks` and :func:`read_rows` read rows with ordinary file
reads when the array is a memory-mapped file. Pages touched through a memory map stay in the
process's resident set (and its peak RSS) until it unmaps them, so a pass over a 5 GB map
would count 5 GB; file reads go through the page cache, which the kernel may drop.

Example:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "e.npy")
    >>> np.save(path, np.arange(6, dtype=np.float32).reshape(3, 2))
    >>> x = open_npy(path, "e.npy")
    >>> read_rows(x, [2, 0]).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from thresher.errors import ConfigError, SchemaError, StorageError
from thresher.storage.location import TEMP_PREFIX, Location, scrub

#: The filenames file beside ``<name>.npy``.
FILENAMES_SUFFIX = ".filenames.txt"
#: Element types accepted for a ``.npy`` input.
DTYPES = (np.dtype(np.float32), np.dtype(np.float16))
#: Rows read at a time by :func:`iter_chunks`.
CHUNK_ROWS = 16384
#: Rows :func:`read_rows` reads past to join two wanted rows into one read.
_GAP = 64


def is_npy(name: str) -> bool:
    """Whether ``name`` (``worker_config.embeddings``) names a ``.npy`` input."""
    return name.lower().endswith(".npy")


def filenames_rel(rel: str) -> str:
    """The filenames file of the ``.npy`` at ``rel``: ``x.npy`` -> ``x.filenames.txt``."""
    return rel[: -len(".npy")] + FILENAMES_SUFFIX


def _home() -> Path:
    # The rule of thresher.models.backends.thresher_home, without importing torch.
    return Path(os.environ.get("THRESHER_HOME") or Path.home() / ".thresher")


def is_local(loc: Location) -> bool:
    """Whether ``loc`` is on this machine's filesystem (its files can be memory-mapped)."""
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(loc.fs, LocalFileSystem)


def local_copy(loc: Location, rel: str) -> str:
    """A local path holding the file ``rel`` of ``loc``, for memory-mapping.

    The file itself where ``loc`` is local; else a copy under
    ``$THRESHER_HOME/cache/npy/``, named after the file's URL, size and change token, so a
    bucket's file is downloaded once per version (atomically: a temporary name, then a move).
    """
    if is_local(loc):
        return loc.path(rel)
    try:
        info = loc.fs.info(loc.path(rel))
    except FileNotFoundError as e:
        raise StorageError(f"File not found: {rel} in {loc.display}") from e
    token = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("created")
    key = hashlib.sha256(f"{loc.display}/{rel}|{info.get('size')}|{token}".encode()).hexdigest()
    cache = _home() / "cache" / "npy"
    target = cache / f"{key[:32]}.npy"
    if target.exists() and target.stat().st_size == int(info.get("size") or -1):
        return str(target)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    try:
        loc.fs.get_file(loc.path(rel), str(tmp))
        os.replace(tmp, target)
    except OSError as e:
        raise StorageError(
            scrub(f"Cannot copy {rel} from {loc.display} to {cache} to read it: {e}")
        ) from e
    finally:
        tmp.unlink(missing_ok=True)
    return str(target)


@contextlib.contextmanager
def streamed_write(loc: Location, rel: str) -> Iterator[BinaryIO]:
    """A file to write ``rel`` of ``loc`` into piece by piece; placed atomically on success.

    In a local location: a temporary sibling, moved into place. Elsewhere: a local temporary
    file, uploaded in one go (object stores make it visible only once complete). Either way
    a failed write leaves nothing behind.
    """
    local = is_local(loc)
    if local:
        loc.makedirs(rel.rpartition("/")[0])
        folder = os.path.dirname(loc.path(rel))
    else:
        folder = tempfile.gettempdir()
    tmp = os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as fh:
            yield fh
        if local:
            os.replace(tmp, loc.path(rel))
        else:
            _upload(loc, tmp, rel)
    except OSError as e:
        raise StorageError(scrub(f"Cannot write {rel} to {loc.display}: {e}")) from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _upload(loc: Location, local_path: str, rel: str) -> None:
    """Upload a local file to ``rel``: one upload where the store commits it atomically."""
    final = loc.path(rel)
    if getattr(loc.fs, "async_impl", False):  # object stores: visible once complete
        loc.fs.put_file(local_path, final)
        return
    parent = final.rpartition("/")[0]
    tmp = f"{parent}/{TEMP_PREFIX}{uuid.uuid4().hex}"
    loc.fs.makedirs(parent, exist_ok=True)
    loc.fs.put_file(local_path, tmp)
    loc.fs.mv(tmp, final)


def open_npy(path: str, display: str) -> np.memmap[Any, np.dtype[Any]]:
    """Memory-map the 2-D float32/float16 ``.npy`` at ``path``, read-only.

    Args:
        path: A local file.
        display: The file's name for messages (its place in LIGHTLY).

    Raises:
        SchemaError: Not a ``.npy``, not 2-D, not float32/float16, or in Fortran order; the
            message says how to write it.
    """
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise SchemaError(
            display, "<file>", f"is not a readable .npy array ({e}); write it with numpy.save"
        ) from e
    if not isinstance(arr, np.memmap) or arr.ndim != 2:
        raise SchemaError(
            display,
            "<file>",
            f"holds an array of shape {getattr(arr, 'shape', '?')}; it must be 2-D "
            "(rows, dimensions), one row per file",
        )
    if arr.dtype not in DTYPES:
        raise SchemaError(
            display,
            "<file>",
            f"holds {arr.dtype} values; they must be float32 or float16: save "
            "x.astype(numpy.float32)",
        )
    if not arr.flags.c_contiguous:
        raise SchemaError(
            display,
            "<file>",
            "is stored in Fortran order; save numpy.ascontiguousarray(x) instead",
        )
    return arr


def read_filenames(loc: Location, rel: str, n: int, display: str) -> list[str]:
    """The names in the filenames file at ``rel``, checked against ``n`` rows.

    Raises:
        SchemaError: The file is missing, has a blank line, or a count other than ``n``.
    """
    if not loc.exists(rel):
        raise SchemaError(
            display,
            "<file>",
            f"has no filenames file beside it: write the {n} file names, one per line in row "
            f"order, to {loc.child(rel).display}",
        )
    text = loc.read_text(rel)
    names = text.split("\n")
    if names and names[-1] == "":
        names.pop()
    names = [s.removesuffix("\r") for s in names]
    blank = next((i for i, s in enumerate(names) if not s), None)
    if blank is not None:
        raise SchemaError(
            loc.child(rel).display, "<line>", f"line {blank + 1} is empty; give one name a line"
        )
    if len(names) != n:
        raise SchemaError(
            display,
            "<file>",
            f"has {n} rows but {loc.child(rel).display} lists {len(names)} file names; "
            "they must be the same files in the same order",
        )
    return names


def _file_of(x: NDArray[Any]) -> tuple[str, int] | None:
    """``(path, header bytes)`` when ``x`` is a whole memory-mapped ``.npy``, else None."""
    if not isinstance(x, np.memmap) or not isinstance(x.base, mmap.mmap):
        return None
    filename, offset = getattr(x, "filename", None), getattr(x, "offset", None)
    if filename and offset is not None and x.flags.c_contiguous:
        return str(filename), int(offset)
    return None


def iter_chunks(
    x: NDArray[Any], rows: int = CHUNK_ROWS
) -> Iterator[tuple[int, NDArray[np.float32]]]:
    """``(first row, float32 rows)`` over all of ``x``, ``rows`` at a time.

    A memory-mapped file is read with file reads (its pages never join this process's
    resident set); anything else is sliced.
    """
    n = int(x.shape[0])
    src = _file_of(x)
    if src is None:
        for a in range(0, n, rows):
            yield a, np.asarray(x[a : a + rows], dtype=np.float32)
        return
    path, offset = src
    d = int(x.shape[1])
    with open(path, "rb") as fh:
        fh.seek(offset)
        for a in range(0, n, rows):
            b = min(a + rows, n)
            block = np.fromfile(fh, dtype=x.dtype, count=(b - a) * d).reshape(b - a, d)
            yield a, block.astype(np.float32, copy=False)


def read_rows(
    x: NDArray[Any], idx: Sequence[int] | NDArray[np.integer[Any]]
) -> NDArray[np.float32]:
    """Rows ``idx`` of ``x`` (in that order) as a float32 copy.

    A memory-mapped file is read with file reads: nearby rows (fewer than 64 apart) in one
    read of at most :data:`CHUNK_ROWS` rows, so a sorted slice costs a few reads and a random
    one a read per row.
    """
    ix = np.asarray(idx, dtype=np.int64)
    src = _file_of(x)
    if src is None or ix.size == 0:
        return np.asarray(x[ix], dtype=np.float32)
    n, d = int(x.shape[0]), int(x.shape[1])
    if ix.min() < 0 or ix.max() >= n:
        raise IndexError(f"row index out of range for {n} rows")
    path, offset = src
    row_bytes = d * x.dtype.itemsize
    out = np.empty((ix.size, d), np.float32)
    order = np.argsort(ix, kind="stable")
    s = ix[order]
    cuts = np.flatnonzero(np.diff(s) > _GAP) + 1
    with open(path, "rb") as fh:
        for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), s.size], strict=True):
            while a < b:  # one run of nearby rows, read CHUNK_ROWS rows at a time at most
                lo = int(s[a])
                end = a + int(np.searchsorted(s[a:b], lo + CHUNK_ROWS, side="left"))
                hi = int(s[end - 1]) + 1
                fh.seek(offset + lo * row_bytes)
                block = np.fromfile(fh, dtype=x.dtype, count=(hi - lo) * d).reshape(hi - lo, d)
                out[order[a:end]] = block[s[a:end] - lo]
                a = end
    return out


def read_header(loc: Location, rel: str) -> tuple[tuple[int, ...], np.dtype[Any], bool]:
    """``(shape, dtype, fortran_order)`` of the ``.npy`` at ``rel``, reading only its header.

    Raises:
        SchemaError: The file is not a ``.npy``.
    """
    display = loc.child(rel).display
    try:
        with loc.fs.open(loc.path(rel), "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except (ValueError, EOFError) as e:
        raise SchemaError(
            display, "<file>", f"is not a readable .npy array ({e}); write it with numpy.save"
        ) from e
    return tuple(int(s) for s in shape), np.dtype(dtype), bool(fortran)


def check_npy_input(loc: Location, rel: str, names: Sequence[str], key: str) -> int:
    """Check a ``.npy`` embeddings input without reading its rows; return its dimension.

    Args:
        loc: The LIGHTLY location.
        rel: The ``.npy``'s path in it (``.lightly/embeddings/<name>.npy``).
        names: The INPUT files; rows naming other files are refused.
        key: The config key for messages (``worker_config.embeddings``).

    Raises:
        ConfigError: The ``.npy`` is missing.
        SchemaError: Its shape, dtype or order is wrong, or its filenames file is missing or
            has another count of names.
        InputError: Rows name files that are not in INPUT.
    """
    from thresher.storage.embeddings_csv import match_rows

    display = loc.child(rel).display
    if not loc.exists(rel):
        raise ConfigError(
            f"{key}: {display} was not found. Put the .npy (and its {FILENAMES_SUFFIX}) in "
            ".lightly/embeddings/ of the LIGHTLY location, or correct the name."
        )
    shape, dtype, fortran = read_header(loc, rel)
    if len(shape) != 2:
        raise SchemaError(
            display,
            "<file>",
            f"holds an array of shape {shape}; it must be 2-D (rows, dimensions), one row per file",
        )
    if dtype not in DTYPES:
        raise SchemaError(
            display,
            "<file>",
            f"holds {dtype} values; they must be float32 or float16: save x.astype(numpy.float32)",
        )
    if fortran:
        raise SchemaError(
            display, "<file>", "is stored in Fortran order; save numpy.ascontiguousarray(x) instead"
        )
    file_names = read_filenames(loc, filenames_rel(rel), shape[0], display)
    listed = set(names)
    present = [f for f in file_names if f in listed]
    match_rows(file_names, present, source=key, what="embeddings .npy")
    return shape[1]
