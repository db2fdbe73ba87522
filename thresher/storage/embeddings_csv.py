"""Embeddings CSVs in the Lightly format (reference section 3.6).

One row per file: ``filenames,embedding_0,...,embedding_{D-1},labels``, UTF-8, ``labels``
always 0, filenames relative to the INPUT root with forward slashes. thresher writes its
``embeddings.csv`` in this format, and ``worker_config.embeddings`` reads a user's CSV in it
to replace the embed stage.

Example:
    >>> import io, numpy as np
    >>> buf = io.BytesIO()
    >>> write_embeddings_csv(buf, ["a.png", "b.png"], np.eye(2, dtype=np.float32))
    >>> buf.getvalue().decode().splitlines()[:2]
    ['filenames,embedding_0,embedding_1,labels', 'a.png,1,0,0']
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Collection, Mapping, Sequence
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from thresher.errors import InputError, SchemaError, StorageError
from thresher.storage.location import Location

logger = logging.getLogger("thresher.storage")

# Columns of the archived Lightly format that thresher accepts and ignores.
_IGNORED_COLUMNS = ("labels", "masked", "selected", "al_score")
_EMBEDDING_COLUMN = re.compile(r"embedding_(\d+)")
_MAX_LISTED = 10


def _quote(name: str) -> str:
    # Minimal quoting, as Python's csv module writes it: only when the name needs it.
    if any(c in name for c in ',"\r\n'):
        return '"' + name.replace('"', '""') + '"'
    return name


def _header(d: int) -> str:
    return ",".join(["filenames", *(f"embedding_{i}" for i in range(d)), "labels"])


def _encode(filenames: Sequence[str], embeddings: np.ndarray, *, header: bool = True) -> bytes:
    n, d = embeddings.shape
    if n == 0:
        return (_header(d) + "\n").encode("utf-8") if header else b""
    columns: dict[str, pa.Array] = {f"embedding_{i}": pa.array(embeddings[:, i]) for i in range(d)}
    columns["labels"] = pa.array(np.zeros(n, dtype=np.int64))
    # pyarrow formats floats with the shortest repr that round-trips, and fast; the filename
    # column is added by hand because pyarrow quotes every string.
    numeric = io.BytesIO()
    pacsv.write_csv(
        pa.table(columns), numeric, pacsv.WriteOptions(include_header=False, delimiter=",")
    )
    rows = numeric.getvalue().decode("utf-8").splitlines()
    lines = [f"{_quote(f)},{row}" for f, row in zip(filenames, rows, strict=True)]
    if header:
        lines.insert(0, _header(d))
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_embeddings_csv_rows(
    target: Location,
    rel: str,
    filenames: Sequence[str],
    embeddings: np.ndarray,
    *,
    chunk_rows: int = 1024,
) -> None:
    """Write a Lightly embeddings CSV a chunk of rows at a time, atomically.

    Like :func:`write_embeddings_csv` (same bytes), for arrays too large to format at once:
    ``embeddings`` may be a memory map, read :data:`chunk_rows` rows at a time with file
    reads, and the text is streamed to the file. A chunk's text is held several times while
    it is formatted (about 70 MB for 1,024 rows of 1,280 floats, 600 MB for 8,192): the run
    writes this file beside its report, so chunks stay small.

    Raises:
        ValueError: The shapes do not agree or a value is not finite.
        StorageError: The file cannot be written.
    """
    from thresher.storage.embeddings_npy import iter_chunks, streamed_write

    n, d = embeddings.shape
    if n != len(filenames):
        raise ValueError(
            f"embeddings must have shape (len(filenames), D) = ({len(filenames)}, D), "
            f"got {embeddings.shape}"
        )
    with streamed_write(target, rel) as fh:
        fh.write((_header(d) + "\n").encode("utf-8"))
        for a, chunk in iter_chunks(embeddings, chunk_rows):
            if not np.isfinite(chunk).all():
                raise ValueError(
                    "embeddings contain NaN or infinite values; they cannot be written"
                )
            fh.write(_encode(filenames[a : a + len(chunk)], chunk, header=False))


def _location(
    target: Location | str | os.PathLike[str],
    rel: str,
    storage_options: Mapping[str, Any] | None,
    writable: bool,
) -> tuple[Location, str]:
    """A Location and a name in it for ``target`` (a Location, or a file's path or URL)."""
    if isinstance(target, Location):
        return target, rel
    url = os.fspath(target)
    if rel:
        return Location(url, dict(storage_options or {}), writable), rel
    parent, _, base = url.rstrip("/").rpartition("/")
    return Location(parent or ".", dict(storage_options or {}), writable), base


def write_embeddings_csv(
    target: Location | str | os.PathLike[str] | IO[bytes] | IO[str],
    filenames: Sequence[str],
    embeddings: np.ndarray,
    rel: str = "",
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Write embeddings in the Lightly CSV format.

    Args:
        target: A writable Location (then ``rel`` names the file in it), a local path or
            fsspec URL of the file, or an open binary or text file.
        filenames: One name per row, relative to the INPUT root.
        embeddings: ``(N, D)`` array, N = len(filenames).
        rel: The file's name inside ``target`` when it is a Location.
        storage_options: fsspec options when ``target`` is a URL.

    Raises:
        ValueError: The shapes do not agree or a value is not finite.
        StorageError: The file cannot be written.
    """
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[0] != len(filenames):
        raise ValueError(
            f"embeddings must have shape (len(filenames), D) = ({len(filenames)}, D), "
            f"got {emb.shape}"
        )
    if not np.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or infinite values; they cannot be written")
    data = _encode(list(filenames), emb.astype(np.float32, copy=False))
    if isinstance(target, (Location, str, os.PathLike)):
        loc, name = _location(target, rel, storage_options, writable=True)
        loc.write_bytes(name, data)
    elif isinstance(target, io.TextIOBase):
        target.write(data.decode("utf-8"))
    else:
        target.write(data)  # type: ignore[arg-type]


def read_embeddings_csv(
    source: Location | str | os.PathLike[str],
    rel: str = "",
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[list[str], np.ndarray]:
    """Read an embeddings CSV in the Lightly format: the one reader for every such CSV.

    Args:
        source: A Location (then ``rel`` names the CSV in it), or the CSV's local path or
            fsspec URL.
        rel: The CSV's name inside ``source`` when it is a Location, e.g.
            ``.lightly/embeddings/mine.csv``.
        storage_options: fsspec options (credentials, endpoint) when ``source`` is a URL.

    Returns:
        The filenames and a float32 ``(N, D)`` array of their embeddings, in file order.

    Raises:
        StorageError: The file cannot be read.
        SchemaError: The header, a value or a filename is wrong; the message names the
            column.
    """
    loc, name = _location(source, rel, storage_options, writable=False)
    url = loc.child(name).display
    if not loc.exists(name):
        raise StorageError(
            f"embeddings CSV {url}: file not found. worker_config.embeddings and "
            "input.query_embeddings name a CSV relative to .lightly/embeddings/ in the "
            "LIGHTLY location."
        )
    return parse_embeddings_csv(loc.read_bytes(name), url)


def parse_embeddings_csv(raw: bytes, url: str) -> tuple[list[str], np.ndarray]:
    """Parse the bytes of an embeddings CSV; ``url`` names it in messages.

    Raises:
        SchemaError: The header, a value or a filename is wrong; the message names the
            column.
    """
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM, as spreadsheet programs write
        raw = raw[3:]
    header = raw.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip().split(",")
    header = [h.strip().strip('"') for h in header]
    if not header or header[0] != "filenames":
        raise SchemaError(
            url,
            "filenames",
            f"the first column must be 'filenames', got '{header[0]}'; the header must be "
            "filenames,embedding_0,...,embedding_{D-1},labels",
        )
    dims: list[int] = []
    for col in header[1:]:
        m = _EMBEDDING_COLUMN.fullmatch(col)
        if m:
            dims.append(int(m.group(1)))
        elif col not in _IGNORED_COLUMNS:
            raise SchemaError(
                url,
                col,
                "unknown column; the header must be filenames,embedding_0,...,embedding_{D-1},"
                "labels: remove or rename it",
            )
    if not dims:
        raise SchemaError(
            url, "embedding_0", "missing: the header must name the columns embedding_0..."
        )
    if dims != list(range(len(dims))):
        raise SchemaError(
            url,
            "embedding_*",
            f"the columns must be embedding_0..embedding_{len(dims) - 1} in order, each once",
        )
    emb_cols = [f"embedding_{i}" for i in dims]
    try:
        table = pacsv.read_csv(
            io.BytesIO(raw),
            convert_options=pacsv.ConvertOptions(
                column_types={"filenames": pa.string(), **{c: pa.float64() for c in emb_cols}},
                include_columns=["filenames", *emb_cols],
                strings_can_be_null=False,
                null_values=[""],  # "nan" is a NaN (refused below, naming it), not a blank
            ),
        )
    except pa.ArrowInvalid as e:
        msg = str(e)
        bad_row = _row_with_wrong_width(raw, len(header))
        if bad_row is not None:
            row, width = bad_row
            raise SchemaError(
                url,
                f"row {row}",
                f"has {width} columns, but the header has {len(header)}; every row must have "
                "the filename, one value per embedding_<i> column and the labels",
            ) from e
        m = re.search(r"column #(\d+)", msg)
        col = header[int(m.group(1))] if m and int(m.group(1)) < len(header) else "embedding_*"
        raise SchemaError(
            url, col, f"must be a number: {msg.splitlines()[0]}; fix the value there"
        ) from e
    filenames = [str(f) for f in table.column("filenames").to_pylist()]
    if table.num_rows == 0:
        return filenames, np.zeros((0, len(dims)), dtype=np.float32)
    for col in emb_cols:
        nulls = table.column(col).is_null().to_numpy(zero_copy_only=False)
        if nulls.any():
            row = int(np.argmax(nulls)) + 1
            raise SchemaError(
                url,
                col,
                f"empty in row {row} ({filenames[row - 1]!r}); every value must be a number: "
                "recompute that file's embedding or drop its row",
            )
    emb = np.stack([table.column(c).to_numpy() for c in emb_cols], axis=1).astype(np.float32)
    if not np.isfinite(emb).all():
        row, j = np.argwhere(~np.isfinite(emb))[0]
        raise SchemaError(
            url,
            f"embedding_{j}",
            f"NaN or infinite value in row {row + 1} ({filenames[row]!r}); every value must be "
            "a finite number: recompute that file's embedding or drop its row",
        )
    seen: set[str] = set()
    for row, name in enumerate(filenames, start=1):
        if name in seen:
            raise SchemaError(
                url,
                "filenames",
                f"'{name}' appears more than once (again in row {row}); keep one row per file",
            )
        seen.add(name)
    return filenames, emb


def _row_with_wrong_width(raw: bytes, width: int) -> tuple[int, int] | None:
    """The first data row (1-based) whose column count is not ``width``, and its count."""
    text = raw.decode("utf-8", errors="replace")
    for i, row in enumerate(csv.reader(io.StringIO(text))):
        if i and row and len(row) != width:
            return i, len(row)
    return None


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return shown + more


def match_rows(
    file_filenames: Sequence[str],
    input_filenames: Sequence[str],
    *,
    also_known: Collection[str] = (),
    source: str = "worker_config.embeddings",
    what: str = "embeddings CSV",
) -> np.ndarray:
    """The row of an embeddings file for each input file: the one matching rule.

    Used for the Lightly CSV (:func:`match_embeddings`) and for thresher's ``.npy`` input
    (:mod:`thresher.storage.embeddings_npy`), which gathers the rows without copying them all.

    Args:
        file_filenames: The file's filenames, one per row.
        input_filenames: The input files, in the order the result must have.
        also_known: Other files rows may name (listed files the run dropped as corrupt,
            duplicate or filtered); their rows are ignored.
        source: Name of the file for messages.
        what: What the file is, for messages (``embeddings CSV``, ``embeddings .npy``).

    Returns:
        ``(N,)`` int64: row ``out[i]`` of the file holds ``input_filenames[i]``.

    Raises:
        InputError: Input files without a row, or rows for files that are neither input
            files nor ``also_known``; up to 10 of each are listed.
    """
    index = {name: i for i, name in enumerate(file_filenames)}
    missing = [f for f in input_filenames if f not in index]
    wanted = set(input_filenames)
    extra = [f for f in file_filenames if f not in wanted and f not in also_known]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} input files have no row: {_listing(missing)}")
        if extra:
            parts.append(f"{len(extra)} rows name files not in the input: {_listing(extra)}")
        raise InputError(
            f"{source}: the {what} does not match the input files; "
            + "; ".join(parts)
            + ". Filenames must be relative to the input root with forward slashes, "
            "exactly as listed there."
        )
    return np.fromiter((index[f] for f in input_filenames), np.int64, len(input_filenames))


def match_embeddings(
    csv_filenames: Sequence[str],
    csv_embeddings: np.ndarray,
    input_filenames: Sequence[str],
    *,
    also_known: Collection[str] = (),
    source: str = "worker_config.embeddings",
) -> np.ndarray:
    """Reorder a CSV's rows to the input files (the rule is :func:`match_rows`).

    Args:
        csv_filenames: The CSV's filenames.
        csv_embeddings: ``(M, D)`` rows of the CSV.
        input_filenames: The input files, in the order the result must have.
        also_known: Other files rows may name (listed files the run dropped as corrupt,
            duplicate or filtered); their rows are ignored.
        source: Name of the CSV for messages.

    Returns:
        ``(N, D)`` float32 embeddings, row i for ``input_filenames[i]``.

    Raises:
        InputError: Input files without a row, or rows for files that are neither input
            files nor ``also_known``; up to 10 of each are listed.
    """
    rows = match_rows(csv_filenames, input_filenames, also_known=also_known, source=source)
    emb = np.asarray(csv_embeddings, dtype=np.float32)
    return emb[rows] if len(input_filenames) else emb[:0]


__all__ = [
    "match_embeddings",
    "match_rows",
    "parse_embeddings_csv",
    "read_embeddings_csv",
    "write_embeddings_csv",
    "write_embeddings_csv_rows",
]
