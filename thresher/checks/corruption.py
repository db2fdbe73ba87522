"""Read every input file once: decode it fully (the corruption check) and hash its bytes.

One pass serves two stages: corrupt files are excluded with a reason, and the content hashes
feed exact-duplicate removal.

A local INPUT is checked by one forked worker process per core, each reading its own files:
the quality scores (numpy on the decoded pixels) and the per-file Python around the decode hold
the GIL for half of each file's time, so threads reached 1.2x of one core on 2 cores, and
processes 1.9x (10,000 JPEGs: 4.1 s with threads, 2.4 s with processes; ``benchmarks/check.py``
measures it). Other locations (object stores, ``memory://``) use a thread pool: their reads
wait on the network, which threads overlap, and their clients are not fork-safe.
"""

from __future__ import annotations

import errno
import hashlib
import io
import multiprocessing
import os
import signal
import stat
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from thresher.checks.quality import quality_signals
from thresher.cores import cpu_count
from thresher.errors import CorruptMediaError
from thresher.storage.location import Location

# Pillow warns above MAX_IMAGE_PIXELS and raises above twice that. Treat the warning as an error:
# a decompression bomb is corrupt input, not something to decode.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
#: Larger files are refused unread: even uncompressed 16-bit RGBA at :data:`MAX_PIXELS` takes
#: 716 MB, and a file is read whole (a 100 GB file, or a sparse one, would exhaust memory).
MAX_FILE_BYTES = 1 << 30


@dataclass(frozen=True)
class FileCheck:
    """What one file's scan found."""

    name: str
    size: int
    sha256: str
    corrupt_reason: str | None  # None when the file decoded fine (or the check was off)
    #: The quality scores of the first frame (``thresher.checks.quality``, in the order of
    #: ``THRESHER_METADATA_KEYS``), from the check's own decode; None when not decoded.
    quality: tuple[float, ...] | None = None


def verify_image(data: bytes, name: str) -> dict[str, float] | None:
    """Decode ``data`` completely, raising CorruptMediaError with a reason if it cannot be used.

    Catches: empty files, non-image content, truncated data, decompression bombs and decoder
    errors. The frames of an animation are decoded in order until :data:`MAX_PIXELS` pixels
    in all (the first always): a run uses only the first frame, and an animation of thousands
    of frames must not take minutes to check.

    Returns:
        The first frame's quality scores (:func:`thresher.checks.quality.quality_signals`),
        computed on this decode; None when they could not be computed (the file is still fine).
    """
    if not data:
        raise CorruptMediaError(name, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if type(img).verify is not ImageFile.ImageFile.verify:
                # The format checks its structure and checksums (PNG's CRCs); verify() ends
                # the image, so it is opened again. JPEG and the others check nothing there:
                # one open of theirs saves a tenth of the check.
                img.verify()
                img = Image.open(io.BytesIO(data))
            with img:
                w, h = img.size
                if w <= 0 or h <= 0:
                    raise CorruptMediaError(name, f"invalid image size {w}x{h}")
                if w * h > MAX_PIXELS:
                    raise CorruptMediaError(
                        name, f"decompression bomb: {w}x{h} pixels exceeds the {MAX_PIXELS} limit"
                    )
                decoded = 0
                signals = None
                for frame in range(getattr(img, "n_frames", 1)):
                    if frame > 0 and decoded + w * h > MAX_PIXELS:
                        break  # the rest is never used: only the first frame is embedded
                    img.seek(frame)
                    img.load()
                    decoded += w * h
                    if frame == 0:
                        signals = _quality(img)
                return signals
    except CorruptMediaError:
        raise
    except UnidentifiedImageError as e:
        raise CorruptMediaError(name, "not an image: the content matches no image format") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise CorruptMediaError(name, f"decompression bomb: {e}") from e
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as e:
        msg = str(e) or type(e).__name__
        if "truncated" in msg.lower():
            msg = f"truncated: {msg}"
        raise CorruptMediaError(name, msg) from e


def _quality(img: Image.Image) -> dict[str, float] | None:
    """The quality scores of a decoded frame; None if they cannot be computed (odd modes)."""
    try:
        return quality_signals(img)
    except (OSError, ValueError, TypeError, ZeroDivisionError):
        return None


def _is_local(location: Location) -> bool:
    return getattr(location.fs, "protocol", None) in ("file", ("file", "local"))


def local_file_problem(
    location: Location, name: str, max_bytes: int | None = MAX_FILE_BYTES
) -> str | None:
    """Why the local file ``name`` must not be read, or None when it is a plain file to read.

    Only a local INPUT has these (object stores hold nothing but plain objects): a FIFO would
    block the read forever and a device file could be endless, so anything that is not a
    regular file is refused before it is opened. A symbolic link is followed only to a
    regular file inside INPUT: one pointing outside INPUT would feed a file the user did not
    hand over into the outputs (thumbnails, embeddings), so it is refused too.

    Args:
        location: The INPUT location.
        name: The file's name relative to its root.
        max_bytes: Larger files are refused (an image is read whole); None for no limit
            (a video is streamed).

    Returns:
        A short reason, or None.
    """
    if not _is_local(location):
        return None
    path = location.path(name)
    link = False
    try:
        link = stat.S_ISLNK(os.lstat(path).st_mode)
        st = os.stat(path)
    except FileNotFoundError:
        return "unreadable: the file vanished, or is a symbolic link to nothing (broken link)"
    except OSError as e:
        if link and e.errno == errno.ELOOP:
            return "unreadable: symbolic link loop (the link leads back to itself)"
        return f"unreadable: {e.strerror or e}"
    if stat.S_ISDIR(st.st_mode):
        return "not a file: a symbolic link to a folder (linked folders are not followed)"
    if stat.S_ISREG(st.st_mode) and max_bytes is not None and st.st_size > max_bytes:
        return _too_large(st.st_size)
    if link:
        root = os.path.realpath(location.root).rstrip("/") + "/"
        if not os.path.realpath(path).startswith(root):
            return (
                "symbolic link to a file outside INPUT: not followed (copy the file into "
                "INPUT, or point INPUT at a folder that holds it)"
            )
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "a device file"
        )
        return f"not a regular file: {kind}, which is never read"
    return None


def _too_large(size: int) -> str:
    return (
        f"too large: {size:,} bytes, more than any image within the pixel limit needs "
        f"({MAX_FILE_BYTES:,}); refused unread"
    )


def check_one(
    location: Location, name: str, check_corruption: bool, size: int | None = None
) -> FileCheck:
    """Read, hash and (optionally) verify one file.

    Unreadable files (missing, no permission, not a regular file, a link out of INPUT, over
    :data:`MAX_FILE_BYTES`) count as corrupt, with the reason, whether or not
    ``check_corruption`` is on.

    Args:
        location: The INPUT location.
        name: The file's name relative to its root.
        check_corruption: Decode the file fully; off, it is only hashed.
        size: Its size as listed, if known: a file too large is then refused unread.
    """
    if size is not None and size > MAX_FILE_BYTES:
        return FileCheck(name, size, "", _too_large(size))
    problem = local_file_problem(location, name)
    if problem is not None:
        return FileCheck(name, 0, "", problem)
    try:
        data = location.read_bytes(name)
    except OSError as e:
        return FileCheck(name, 0, "", f"unreadable: {e}")
    digest = hashlib.sha256(data).hexdigest()
    reason = None
    quality = None
    if check_corruption:
        try:
            signals = verify_image(data, name)
            quality = tuple(signals.values()) if signals is not None else None
        except CorruptMediaError as e:
            reason = e.reason
    return FileCheck(name, len(data), digest, reason, quality)


def check_files(
    location: Location,
    names: Sequence[str],
    *,
    check_corruption: bool = True,
    num_threads: int = -1,
    progress: Callable[[int], None] | None = None,
    sizes: Sequence[int] | None = None,
) -> list[FileCheck]:
    """Scan ``names`` in ``location`` in parallel. Results keep the order of ``names``.

    Args:
        location: Where the files are (read-only is fine).
        names: Relative filenames.
        check_corruption: Decode each file fully; off, only hashes are computed.
        num_threads: Worker threads; -1 = automatic: a local INPUT is decoded by one worker
            process per core (:func:`use_processes`), any other by two threads per core (I/O
            overlaps with decoding).
        progress: Called with the number of files finished, as they finish.
        sizes: The listed size of each file (same order as ``names``), to refuse files over
            :data:`MAX_FILE_BYTES` before reading them.
    """
    known: Sequence[int | None] = sizes if sizes is not None else [None] * len(names)
    if num_threads == -1 and use_processes(location, len(names), check_corruption):
        return _check_in_processes(location, names, known, check_corruption, progress)
    workers = num_threads if num_threads > 0 else 2 * cpu_count()
    results: list[FileCheck] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="thresher-scan") as pool:
        checks = pool.map(lambda n, z: check_one(location, n, check_corruption, z), names, known)
        for res in checks:
            results.append(res)
            if progress:
                progress(1)
    return results


#: The reason of a file whose check killed its worker process twice.
CRASHED = (
    "crashed the decoder: the process checking it died, twice (a fault in the image decoder, "
    "or out of memory)"
)

#: Files per task handed to a worker process (and per progress step).
CHUNK = 64

#: Fewer files than this are checked by threads: starting processes would cost more.
MIN_FILES_FOR_PROCESSES = 2 * CHUNK


def use_processes(location: Location, n_files: int, check_corruption: bool) -> bool:
    """Whether :func:`check_files` decodes in worker processes.

    Yes for a local INPUT with files to decode, at least :data:`MIN_FILES_FOR_PROCESSES` of
    them, on 2 or more cores, where ``fork`` exists, and not inside a daemonic process (a
    Dask or multiprocessing worker may not start children).
    """
    return (
        check_corruption
        and _is_local(location)
        and n_files >= MIN_FILES_FOR_PROCESSES
        and cpu_count() >= 2
        and "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


_CHILD_LOCATION: Location | None = None


def _child_start(location: Location) -> None:
    """In a worker process: leave Ctrl-C to the parent, and die with the thread that forked it.

    A parent killed outright (SIGKILL, the OOM killer) cannot stop its workers; on Linux the
    kernel then kills them (``PR_SET_PDEATHSIG``), so none is left decoding for nobody.
    """
    global _CHILD_LOCATION
    _CHILD_LOCATION = location
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
        if os.getppid() == 1:  # the parent died before the line above
            os._exit(1)


def _check_chunk(
    chunk: tuple[list[str], list[int | None], bool],
) -> list[FileCheck]:
    """In a worker process: :func:`check_one` for each file of one task."""
    names, sizes, check_corruption = chunk
    location = _CHILD_LOCATION
    if location is None:  # only _child_start's workers run this
        raise RuntimeError("_check_chunk runs in a worker process started by _child_start")
    return [check_one(location, n, check_corruption, z) for n, z in zip(names, sizes, strict=True)]


def _check_in_processes(
    location: Location,
    names: Sequence[str],
    known: Sequence[int | None],
    check_corruption: bool,
    progress: Callable[[int], None] | None,
) -> list[FileCheck]:
    """:func:`check_files` in one forked worker process per core, :data:`CHUNK` files a task.

    Forked, not spawned: a worker starts in milliseconds with the modules already imported.
    The workers only read, hash and decode (no OpenVINO, no network client), which is safe in a
    fork of a process that runs threads. A worker that dies (a decoder crashing on a file, the
    OOM killer) fails only its own tasks: their files are checked again one by one
    (:func:`_isolate`), and a file that kills its worker again is corrupt with that reason.
    """
    chunks = [
        (list(names[i : i + CHUNK]), list(known[i : i + CHUNK]), check_corruption)
        for i in range(0, len(names), CHUNK)
    ]
    results: list[FileCheck] = []
    done = 0  # chunks whose results are in
    while done < len(chunks):
        # A dead worker breaks the whole pool: every task not finished fails with it. The
        # first failed task is checked file by file, and a fresh pool takes the rest (the
        # file that killed the worker was in that task or in one running beside it).
        with _pool(location, min(cpu_count(), len(chunks) - done)) as pool:
            for part in _until_broken(location, pool, chunks[done:]):
                results.extend(part)
                done += 1
                if progress:
                    progress(len(part))
    return results


def _until_broken(
    location: Location,
    pool: ProcessPoolExecutor,
    chunks: Sequence[tuple[list[str], list[int | None], bool]],
) -> Iterator[list[FileCheck]]:
    """Each task's results, in order, until a task fails with the pool: its files isolated.

    After the broken task nothing more comes; the tasks after it need a fresh pool.
    """
    futures = [pool.submit(_check_chunk, chunk) for chunk in chunks]
    for chunk, future in zip(chunks, futures, strict=True):
        try:
            part = future.result()
        except BrokenProcessPool:
            for rest in futures:
                rest.cancel()
            yield _isolate(location, chunk)
            return
        yield part


def _pool(location: Location, workers: int) -> ProcessPoolExecutor:
    """Forked worker processes that check files of ``location`` (:func:`_child_start`)."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_child_start,
        initargs=(location,),
    )


def _isolate(
    location: Location, chunk: tuple[list[str], list[int | None], bool]
) -> list[FileCheck]:
    """The files of a task whose worker died, each checked in a worker of its own.

    A file whose worker dies again is corrupt: its decoder crashed the process (or the
    process ran out of memory on it), which a run must survive, not repeat.
    """
    names, sizes, check_corruption = chunk
    out: list[FileCheck] = []
    for name, size in zip(names, sizes, strict=True):
        with _pool(location, 1) as pool:
            try:
                out += pool.submit(_check_chunk, ([name], [size], check_corruption)).result()
            except BrokenProcessPool:
                out.append(FileCheck(name, size or 0, "", CRASHED))
    return out


def find_exact_duplicates(results: Sequence[FileCheck]) -> dict[str, str]:
    """Map each exact duplicate to the file it duplicates.

    Byte-identical files (same SHA-256) are duplicates; the first by sorted filename stays.
    Corrupt files never take part: they are already excluded with their own reason.
    """
    first: dict[str, str] = {}
    dups: dict[str, str] = {}
    for r in sorted(results, key=lambda r: r.name):
        if r.corrupt_reason is not None:
            continue
        if r.sha256 in first:
            dups[r.name] = first[r.sha256]
        else:
            first[r.sha256] = r.name
    return dups
