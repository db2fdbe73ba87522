"""Stage ``list_input``: list the INPUT location and apply ``relevant_filenames_file``.

It runs on every run (the listing is what tells whether anything changed); its key
fingerprints the names, sizes and change tokens of the files, and keys every later stage.

For a video run (``dataset_type="videos"``) it lists the videos, applies the relevant
filenames to the video names, and reads each relevant video once
(:func:`thresher.storage.video.scan_video`: hash, frame count by decoding, broken frames),
then expands every video into its frames: the samples every later stage works on, named as
Lightly names them. A video that cannot be used at all (does not open, no frame) stays one
sample under its own name, so the corruption check can account for it. The scans are stored
with the listing (``names.json``) and reused while the videos are unchanged.
"""

from __future__ import annotations

import logging
import os
import posixpath
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from thresher.caching import digest, stage_dir, stage_key
from thresher.checks.corruption import local_file_problem
from thresher.config.selection import SelectionConfig
from thresher.config.worker import WorkerConfig
from thresher.cores import cpu_count
from thresher.errors import ConfigError, InputError, NotSupportedYetError, StorageError
from thresher.stages import _store
from thresher.storage.location import IMAGE_EXTENSIONS, TEMP_NAME, Location, modified_time
from thresher.storage.relevant import RelevantFilenames
from thresher.storage.video import VIDEO_EXTENSIONS, VideoScan, scan_video

DatasetType = Literal["images", "videos"]

log = logging.getLogger("thresher.stages")

#: A temporary file of an atomic write older than this is a killed run's leftover: no live
#: write takes that long between creating its temporary file and moving it into place.
STALE_TEMP_AGE_S = 3600.0


@dataclass(frozen=True)
class Listing:
    """The files a run works on. ``key`` fingerprints names, sizes and change tokens."""

    key: str
    input_url: str
    lightly_url: str
    n_input: int  # media files listed (before relevant_filenames; refused names not counted)
    n_filtered: int  # dropped by relevant_filenames_file
    n_relevant: int

    cached: str = ""  # the listing is never cached: it is how a run sees what changed
    dataset_type: DatasetType = "images"  # "videos": the names are frames (see the module)
    #: The datapool version a ``use_datapool`` run took its new files against ("" = no
    #: datapool; see :mod:`thresher.stages.datapool`).
    datapool: str = ""

    def _read(self, field: str) -> list[str]:
        lightly = _store.lightly_location(self.lightly_url)
        names: list[str] = _store.read_json(lightly, f"{stage_dir(self.key)}/names.json")[field]
        return names

    def names(self) -> list[str]:
        """The relevant files, sorted, relative to the INPUT root."""
        return self._read("names")

    def sizes(self) -> list[int] | None:
        """The listed size of each of :meth:`names`, in bytes (None for an older listing)."""
        lightly = _store.lightly_location(self.lightly_url)
        data = _store.read_json(lightly, f"{stage_dir(self.key)}/names.json")
        sizes: list[int] | None = data.get("sizes")
        return sizes

    def tokens(self) -> list[str]:
        """The change token of each of :meth:`names` (a video's frames share the video's)."""
        lightly = _store.lightly_location(self.lightly_url)
        data = _store.read_json(lightly, f"{stage_dir(self.key)}/names.json")
        tokens: list[str] = data.get("tokens") or [""] * len(data["names"])
        return tokens

    def filtered(self) -> list[str]:
        """The files dropped by ``relevant_filenames_file``."""
        return self._read("filtered")

    def refused(self) -> dict[str, str]:
        """Files not listed because of their name: printable name -> reason.

        See :func:`name_problem`. They are not part of ``n_input``.
        """
        lightly = _store.lightly_location(self.lightly_url)
        data = _store.read_json(lightly, f"{stage_dir(self.key)}/names.json")
        refused: dict[str, str] = data.get("refused", {})
        return refused

    def videos(self) -> dict[str, VideoScan]:
        """A video run's relevant videos: name -> what reading it found (empty for images)."""
        if self.dataset_type != "videos":
            return {}
        lightly = _store.lightly_location(self.lightly_url)
        data = _store.read_json(lightly, f"{stage_dir(self.key)}/names.json")
        return {n: VideoScan.from_json(n, v) for n, v in data["videos"].items()}


def name_problem(name: str) -> str | None:
    """Why a file name cannot be carried through the outputs, or None when it can.

    The file lists (``filenames/*.txt``, tags) hold one name per line, so a name with a line
    break would read back as two names; a name that is not valid UTF-8 (possible on Linux)
    cannot be written into any UTF-8 output. Such files are refused at listing, with this
    reason, instead of corrupting every output that names them.
    """
    if name.splitlines() != [name]:
        return (
            "its name contains a line break, which the one-name-per-line file lists cannot "
            "hold: rename the file"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8, which the outputs cannot hold: rename the file"
    return None


def printable_name(name: str) -> str:
    r"""``name`` for logs and messages: undecodable bytes and unprintable characters escaped.

    Line breaks, tabs and terminal escape sequences come out as ``\n``, ``\t``, ``\x1b``,
    so a hostile name cannot split a log line or restyle a terminal.
    """
    try:  # a byte that is not UTF-8 reached Python as a surrogate escape: show the byte
        escaped = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        escaped = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in escaped)


def remove_stale_temp_files(lightly: Location, max_age_s: float = STALE_TEMP_AGE_S) -> int:
    """Delete the temporary files of atomic writes that a killed run left in LIGHTLY.

    Only files named like one (``.tmp-<32 hex>``, ``.write-check-<8 hex>``) and last changed
    more than ``max_age_s`` ago go: a younger one may be another live run's write in progress,
    and a file whose age the backend does not tell is kept. Only ever called on the LIGHTLY
    location (INPUT is never written). A failure to list or delete is logged, never fatal.

    Args:
        lightly: The LIGHTLY location.
        max_age_s: The age in seconds past which a temporary file is a leftover.

    Returns:
        How many files were removed.
    """
    try:
        found = lightly.fs.find(lightly.root, withdirs=False, detail=True)
    except FileNotFoundError:
        return 0
    except (OSError, StorageError) as e:
        log.warning("could not look for leftover temporary files in %s: %s", lightly.display, e)
        return 0
    prefix = lightly.root.rstrip("/") + "/"
    cutoff = time.time() - max_age_s
    removed = 0
    for path, info in found.items():
        if info.get("type") == "directory" or not TEMP_NAME.match(posixpath.basename(path)):
            continue
        changed = modified_time(info)
        if changed is None or changed > cutoff:
            continue
        rel = path[len(prefix) :] if path.startswith(prefix) else posixpath.basename(path)
        try:
            lightly.remove(rel)
        except StorageError as e:
            log.warning("could not remove the leftover temporary file %s: %s", rel, e)
            continue
        removed += 1
    if removed:
        log.info(
            "removed %d temporary file(s) older than %.0f min left in %s by an interrupted run",
            removed,
            max_age_s / 60,
            lightly.display,
        )
    return removed


def _inside(inner: Location, outer: Location) -> bool:
    """Whether ``inner`` is ``outer`` or below it (local paths compared after resolving links)."""
    if type(inner.fs) is not type(outer.fs):
        return False
    a, b = outer.root, inner.root
    if getattr(outer.fs, "protocol", None) in ("file", ("file", "local")):
        a, b = os.path.realpath(a), os.path.realpath(b)
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return b.startswith(a)


def default_lightly_url(input_url: str) -> str:
    """The default LIGHTLY location: a folder beside the input, ``<input>-lightly``."""
    return input_url.rstrip("/") + "-lightly"


def _kind(dataset_type: str) -> tuple[tuple[str, ...], str]:
    """The extensions a run lists and the word for them."""
    if dataset_type == "videos":
        return VIDEO_EXTENSIONS, "videos"
    return IMAGE_EXTENSIONS, "images"


def preflight(input_url: str, lightly_url: str, dataset_type: str = "images") -> None:
    """Check in a second what can be checked before anything starts or is written.

    INPUT must exist and hold at least one image (a video for ``dataset_type="videos"``);
    LIGHTLY must be outside INPUT (INPUT is never written, not even on the way to an error).
    Nothing is written by this check.

    Raises:
        InputError: INPUT is missing or holds no image (or video).
        ConfigError: LIGHTLY is inside INPUT.
    """
    inp = Location(input_url)
    lightly = _store.lightly_location(lightly_url)
    if not inp.exists():
        raise InputError(
            f"The INPUT location {inp.display} does not exist. Check the path or URL "
            "(and the credentials for a bucket)."
        )
    if _inside(lightly, inp):
        raise ConfigError(
            f"The LIGHTLY location {lightly.display} is inside the INPUT location "
            f"{inp.display}, but INPUT is never written. Put LIGHTLY beside it, e.g. "
            f"{inp.display.rstrip('/')}-lightly."
        )
    extensions, what = _kind(dataset_type)
    if not inp.has_file(extensions):
        other = "--dataset-type images" if dataset_type == "videos" else "--dataset-type videos"
        hint = (
            f" (for {'images' if dataset_type == 'videos' else 'videos'}, run with {other})"
            if inp.has_file(_kind("images" if dataset_type == "videos" else "videos")[0])
            else ""
        )
        raise InputError(
            f"No {what} found in {inp.display} (looked recursively for "
            f"{', '.join(e.lstrip('.') for e in extensions)}, any case). Point INPUT at "
            f"the folder or bucket prefix that holds the {what}{hint}."
        )


def read_relevant(lightly: Location, path: str) -> RelevantFilenames:
    """Read and parse ``worker_config.relevant_filenames_file`` from the LIGHTLY location."""
    if path.startswith(("/", "./", "../")) or "://" in path:
        raise ConfigError(
            f"worker_config.relevant_filenames_file: '{path}' must be a path relative to the "
            "LIGHTLY location, such as '.lightly/relevant_filenames.txt'."
        )
    try:
        text = lightly.read_text(path)
    except StorageError as e:
        raise ConfigError(
            f"worker_config.relevant_filenames_file: '{path}' was not found in the LIGHTLY "
            f"location {lightly.display}. Upload it there (e.g. .lightly/relevant_filenames.txt)."
        ) from e
    return RelevantFilenames.parse(text, source=path)


def refuse_for_videos(worker: WorkerConfig, selection: SelectionConfig) -> None:
    """Refuse what a video run cannot do yet, before anything runs.

    Args:
        worker: The validated ``worker_config``.
        selection: The validated ``selection_config``.

    Raises:
        NotSupportedYetError: training on frames, int8 calibration on frames, or
            ``lightly.*`` metadata computed from frames.
    """
    if worker.enable_training:
        raise NotSupportedYetError(
            "worker_config.enable_training with dataset_type videos",
            "embed the frames with the pretrained model or a checkpoint",
        )
    if worker.embedding_precision != "fp32":
        raise NotSupportedYetError(
            "worker_config.embedding_precision int8 with dataset_type videos",
            "embed the frames in fp32",
        )
    for entry in selection.strategies or []:
        key = getattr(entry.input, "key", None)
        if getattr(entry.input, "type", None) == "METADATA" and str(key).startswith(
            ("lightly.", "thresher.")
        ):
            raise NotSupportedYetError(
                f"METADATA input {key} with dataset_type videos",
                "use your own per-frame metadata in .lightly/metadata/",
            )


def scan_videos(
    inp: Location,
    names: list[str],
    sizes: list[int],
    *,
    decode: bool,
    num_threads: int = -1,
    progress: Callable[[int], None] | None = None,
) -> list[VideoScan]:
    """:func:`thresher.storage.video.scan_video` for each video, in threads, in order.

    PyAV decodes without the GIL, so threads use every core.
    """
    workers = num_threads if num_threads > 0 else cpu_count()

    def one(name: str, size: int) -> VideoScan:
        # Never opened: FIFOs, devices, linked folders, links out of INPUT (a video is
        # streamed, so no size limit).
        problem = local_file_problem(inp, name, max_bytes=None)
        if problem is not None:
            scan = VideoScan(name, size, "", 0, error=problem)
        else:
            scan = scan_video(inp, name, decode=decode, size=size)
        if progress is not None:
            progress(1)
        return scan

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="thresher-video") as pool:
        return list(pool.map(one, names, sizes))


def expand_videos(scans: list[VideoScan]) -> list[str]:
    """The samples of a video run: each video's frame names; an unusable video's own name."""
    out: list[str] = []
    for scan in scans:
        out.extend(scan.frame_names() if scan.error is None else [scan.name])
    return out


def list_input(
    input_url: str,
    lightly_url: str,
    relevant_filenames_file: str = "",
    *,
    dataset_type: DatasetType = "images",
    use_frame_count_metadata: bool = False,
    num_threads: int = -1,
) -> Listing:
    """List every image (or video) below INPUT (recursively, sorted) and keep the relevant ones.

    A file whose name the outputs cannot hold (a line break, not UTF-8) is not listed: it is
    logged and kept in :meth:`Listing.refused` with the reason, outside the accounting.

    Args:
        input_url: The INPUT location.
        lightly_url: The LIGHTLY location.
        relevant_filenames_file: ``worker_config.relevant_filenames_file`` (video names for a
            video run).
        dataset_type: ``"images"`` or ``"videos"``: the samples are then the videos' frames.
        use_frame_count_metadata: ``worker_config.datasource.use_frame_count_metadata``: take
            a video's frame count from its container (no decoding here) where it has one.
        num_threads: Threads reading videos; -1 = one per core.

    Raises:
        InputError: INPUT is missing or holds no image (or video).
        ConfigError: the relevant filenames file is missing or malformed.
    """
    preflight(input_url, lightly_url, dataset_type)
    inp = Location(input_url)
    lightly = _store.lightly_location(lightly_url)
    lightly.check_writable()
    remove_stale_temp_files(lightly)
    extensions, what = _kind(dataset_type)
    files = inp.list_files(extensions)
    if not files:
        raise InputError(
            f"No {what} found in {inp.display} (looked recursively for "
            f"{', '.join(e.lstrip('.') for e in extensions)}, any case)."
        )
    refused = {printable_name(f.name): p for f in files if (p := name_problem(f.name))}
    for shown, reason in list(refused.items())[:20]:
        log.warning("not listed: %s: %s", shown, reason)
    files = [f for f in files if name_problem(f.name) is None]
    if not files:
        raise InputError(
            f"No usable {what} in {inp.display}: every {what[:-1]}'s name was refused "
            f"({'; '.join(f'{n}: {r}' for n, r in list(refused.items())[:3])})."
        )
    names = [f.name for f in files]
    filtered: list[str] = []
    rules_digest = ""
    if relevant_filenames_file:
        rules = read_relevant(lightly, relevant_filenames_file)
        rules_digest = digest(lightly.read_text(relevant_filenames_file))
        names, filtered = rules.filter(names)
        missing = sorted(rules.exact_names - set(names) - set(filtered))
        if missing:
            log.warning(
                "%d name(s) in %s are not in INPUT, e.g. %s",
                len(missing),
                relevant_filenames_file,
                ", ".join(missing[:5]),
            )
        if not names:
            raise InputError(
                f"{relevant_filenames_file} matches none of the {len(files)} {what} in "
                f"{inp.display}. Check the names: they are relative to the INPUT root."
            )
    keep = set(names)
    size_of = {f.name: f.size for f in files}
    token_of = {f.name: f.token for f in files}
    fingerprint = digest(
        inp.display,
        [(f.name, f.size, f.token) for f in files if f.name in keep],
        rules_digest,
        sorted(refused),
        *([dataset_type, use_frame_count_metadata] if dataset_type == "videos" else []),
    )
    key = stage_key("list_input", fingerprint)
    if dataset_type == "videos":
        return _list_videos(
            key, inp, lightly, names, [size_of[n] for n in names], filtered, refused,
            tokens=[token_of[n] for n in names], n_files=len(files),
            use_frame_count_metadata=use_frame_count_metadata, num_threads=num_threads,
        )  # fmt: skip
    listing = Listing(key, input_url, lightly_url, len(files), len(filtered), len(names))
    if _store.cached(lightly, key) is None:
        _store.write_json(
            lightly,
            f"{stage_dir(key)}/names.json",
            {
                "names": names,
                "sizes": [size_of[n] for n in names],
                "tokens": [token_of[n] for n in names],
                "filtered": filtered,
                "refused": refused,
            },
        )
        _store.finish(
            lightly, key, {"n_input": len(files), "n_filtered": len(filtered)}, ["names.json"]
        )
    log.info(
        "listed %d images in %s (%d filtered out by relevant filenames, %d not listed for "
        "their names)",
        len(files),
        inp.display,
        len(filtered),
        len(refused),
    )
    return listing


def _list_videos(
    key: str,
    inp: Location,
    lightly: Location,
    videos: list[str],
    sizes: list[int],
    filtered: list[str],
    refused: dict[str, str],
    *,
    tokens: list[str],
    n_files: int,
    use_frame_count_metadata: bool,
    num_threads: int,
) -> Listing:
    """The video branch of :func:`list_input`: read the relevant videos once, list frames.

    The samples are frames, so the accounting counts frames: ``n_input`` is every frame of
    the relevant videos, plus one per unusable video and one per filtered-out video (those
    are never opened, so their frames are unknown).
    """
    m = _store.cached(lightly, key)
    if m is not None:
        listing = Listing(
            key, inp.url, lightly.url, m["n_input"], m["n_filtered"],
            m["n_input"] - m["n_filtered"], dataset_type="videos",
        )  # fmt: skip
        log.info("listed %d videos in %s (frames counted before)", n_files, inp.display)
        return listing
    scans = scan_videos(
        inp, videos, sizes, decode=not use_frame_count_metadata, num_threads=num_threads
    )
    samples = expand_videos(scans)
    doc: dict[str, Any] = {
        "names": samples,
        "sizes": [s.size for s in scans for _ in range(max(1, s.n_frames))],
        "tokens": [
            t for s, t in zip(scans, tokens, strict=True) for _ in range(max(1, s.n_frames))
        ],
        "filtered": filtered,
        "refused": refused,
        "videos": {s.name: s.to_json() for s in scans},
    }
    n_input = len(samples) + len(filtered)
    _store.write_json(lightly, f"{stage_dir(key)}/names.json", doc)
    _store.finish(lightly, key, {"n_input": n_input, "n_filtered": len(filtered)}, ["names.json"])
    unusable = sum(1 for s in scans if s.error is not None)
    log.info(
        "listed %d videos in %s: %d frames in %d relevant videos (%d unusable), %d filtered "
        "out by relevant filenames, %d not listed for their names",
        n_files,
        inp.display,
        len(samples) - unusable,
        len(videos),
        unusable,
        len(filtered),
        len(refused),
    )
    return Listing(
        key, inp.url, lightly.url, n_input, len(filtered), len(samples), dataset_type="videos"
    )
