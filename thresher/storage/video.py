"""Videos as input: list a video's frames, name them as Lightly does, and decode them in order.

A video run works on **frames**: every frame of every video is one sample, named
``<video path without extension>-<frame index>-<extension>.png`` with the index zero-padded to
``len(str(n_frames))`` digits (Lightly's name, so per-frame predictions and metadata match):
``clips/drive.mp4`` with 120 frames gives ``clips/drive-000-mp4.png`` to
``clips/drive-119-mp4.png``.

Frames are numbered by decoding (PyAV, as Lightly recommends), the same way everywhere
(:func:`iter_frames`): one slot per decoded frame, and one slot per video packet that fails to
decode, so a broken frame keeps its place and the frames after it keep their numbers. The
listing (:func:`scan_video`) and the embedding (:class:`FrameReader`) count identically.

Nothing is extracted to disk: :class:`FrameReader` streams each video in order, keeping one
open container per process, so memory stays at one decoded frame plus the batch.

Example:
    >>> frame_name("clips/drive.mp4", 7, 120)
    'clips/drive-007-mp4.png'
    >>> parse_frame_name("clips/drive-007-mp4.png")
    ('clips/drive.mp4', 7)
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import IO, Any

from PIL import Image

from thresher.errors import CorruptMediaError, MediaError, StorageUnavailableError
from thresher.storage.location import Location

log = logging.getLogger("thresher.storage")

#: The video formats a video run lists (Lightly's list: exhaustive, any case).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".hevc", ".mpg", ".mpeg", ".avi", ".mov", ".webm")
#: The suffix of every frame name (Lightly's; the written image may use another format).
FRAME_SUFFIX = ".png"
_FRAME = re.compile(r"^(?P<stem>.+)-(?P<index>\d+)-(?P<ext>[^./-]+)\.png$")
_HASH_CHUNK = 1 << 20


class VideoOpenError(CorruptMediaError):
    """The file does not open as a video (not a container, no video stream, or no frames)."""


class FrameDecodeError(CorruptMediaError):
    """One frame of a video cannot be decoded (its ``frame`` says which)."""


def is_video(name: str) -> bool:
    """Whether ``name`` has one of :data:`VIDEO_EXTENSIONS` (any case)."""
    return name.lower().endswith(VIDEO_EXTENSIONS)


def frame_name(video: str, index: int, n_frames: int) -> str:
    """Lightly's name of frame ``index`` of ``video`` (a name relative to the INPUT root).

    Args:
        video: The video's name, e.g. ``clips/drive.mp4``.
        index: The frame's index, from 0.
        n_frames: The video's frame count (sets the zero padding).

    Returns:
        e.g. ``clips/drive-007-mp4.png`` for frame 7 of 120.
    """
    stem, _, ext = video.rpartition(".")
    return f"{stem}-{index:0{len(str(n_frames))}d}-{ext}{FRAME_SUFFIX}"


def parse_frame_name(name: str) -> tuple[str, int] | None:
    """``(video name, frame index)`` of a frame name, or None for a name that is not one."""
    m = _FRAME.match(name)
    if m is None or not is_video(f".{m['ext']}"):
        return None
    return f"{m['stem']}.{m['ext']}", int(m["index"])


@dataclass(frozen=True)
class VideoScan:
    """What reading one video found.

    Attributes:
        name: The video's name relative to the INPUT root.
        size: Its size in bytes.
        sha256: The SHA-256 of its bytes (exact-duplicate videos share it); "" if unreadable.
        n_frames: Its frame slots (decoded frames plus broken ones); 0 when ``error``.
        broken: Frame index -> why that frame cannot be used.
        error: Why the whole video cannot be used (does not open, no frame), else None.
        counted_by: ``"decoding"``, or ``"metadata"`` (``use_frame_count_metadata``: not
            decoded, so ``broken`` is not known yet).
        pts: Each frame slot's presentation timestamp in ``time_base`` units, as decoded
            (None for a broken slot or a frame without one); empty when not decoded.
        time_base: The video stream's time base, ``"num/den"`` (``""`` when unknown).
        rate: The stream's average frame rate, ``"num/den"`` (``""`` when unknown); estimates
            a timestamp a frame lacks.
    """

    name: str
    size: int
    sha256: str
    n_frames: int
    broken: dict[int, str] = field(default_factory=dict)
    error: str | None = None
    counted_by: str = "decoding"
    pts: tuple[int | None, ...] = ()
    time_base: str = ""
    rate: str = ""

    def frame_names(self) -> list[str]:
        """The names of its frames, in order (none when the video is unusable)."""
        return [frame_name(self.name, i, self.n_frames) for i in range(self.n_frames)]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (frame indices as strings)."""
        return {
            "size": self.size,
            "sha256": self.sha256,
            "n_frames": self.n_frames,
            "broken": {str(k): v for k, v in self.broken.items()},
            "error": self.error,
            "counted_by": self.counted_by,
            "pts": list(self.pts),
            "time_base": self.time_base,
            "rate": self.rate,
        }

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> VideoScan:
        """The inverse of :meth:`to_json`."""
        return cls(
            name,
            int(data["size"]),
            str(data["sha256"]),
            int(data["n_frames"]),
            {int(k): str(v) for k, v in data["broken"].items()},
            data["error"],
            str(data["counted_by"]),
            tuple(data.get("pts", ())),
            str(data.get("time_base", "")),
            str(data.get("rate", "")),
        )

    def timestamps(self, index: int) -> tuple[int | None, float | None]:
        """Frame ``index``'s ``(pts, seconds)``: as decoded, else estimated from the frame rate.

        Returns ``(None, None)`` when the scan holds neither (a scan that did not decode: use
        :func:`read_timestamps`).
        """
        pts = self.pts[index] if index < len(self.pts) else None
        if pts is not None and self.time_base:
            return pts, float(pts * Fraction(self.time_base))
        if self.rate and Fraction(self.rate) > 0:
            sec = float(index / Fraction(self.rate))
            tb = Fraction(self.time_base) if self.time_base else None
            return (round(sec / tb) if tb else None), sec
        return None, None


def _open_file(location: Location, name: str) -> IO[bytes]:
    """The video's bytes as a seekable file object (fsspec reads ranges on object stores)."""
    try:
        fh: IO[bytes] = location.fs.open(location.path(name), "rb")
    except FileNotFoundError as e:
        raise VideoOpenError(name, "unreadable: the file vanished") from e
    except PermissionError as e:
        raise VideoOpenError(name, f"unreadable: {e.strerror or e}") from e
    return fh


def _sha256(location: Location, name: str) -> str:
    h = hashlib.sha256()
    with _open_file(location, name) as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _first_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [""])[0] or type(e).__name__
    return re.sub(r"^\[Errno -?\d+\]\s*", "", text)[:300]


def open_container(location: Location, name: str) -> Any:
    """Open ``name`` with PyAV: ``(container, video stream, file object)``.

    Raises:
        VideoOpenError: The file is not a readable video container or has no video stream.
    """
    import av

    fh = _open_file(location, name)
    try:
        container = av.open(fh, mode="r")
    except (av.FFmpegError, OSError, ValueError, EOFError) as e:
        fh.close()
        why = _first_line(e).replace(f"'{location.path(name)}'", "").rstrip(": ")
        raise VideoOpenError(name, f"does not open as a video: {why}") from e
    if not container.streams.video:
        container.close()
        fh.close()
        raise VideoOpenError(name, "does not open as a video: the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream, fh


def iter_frames(
    container: Any, stream: Any, name: str
) -> Iterator[tuple[int, Any | None, str | None]]:
    """Every frame slot of ``stream`` in order: ``(index, frame, None)`` or ``(index, None, why)``.

    A video packet that fails to decode takes one slot with the reason; a frame the decoder
    flags as corrupt (concealed errors) is returned with its reason. When the container's
    stream ends early (a truncated file) or fails mid-way, the frames the container still
    lists are reported as missing, one slot each, so a truncated video's broken fraction is
    what is really lost.
    """
    import av

    index = 0
    failed: str | None = None
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError) as e:
                yield index, None, f"frame does not decode: {_first_line(e)}"
                index += 1
                continue
            for frame in frames:
                if frame.is_corrupt:
                    yield index, frame, "frame decodes with errors (damaged data)"
                else:
                    yield index, frame, None
                index += 1
    except (av.FFmpegError, OSError, EOFError) as e:
        failed = f"the stream fails after frame {index - 1}: {_first_line(e)}"
    listed = int(stream.frames or 0)
    if failed is not None or listed > index:
        reason = failed or (
            f"missing: the stream ends after {index} of the {listed} frames its container "
            "lists (truncated?)"
        )
        for missing in range(index, max(listed, index + 1 if failed else index)):
            yield missing, None, reason


def scan_video(
    location: Location, name: str, *, decode: bool = True, size: int | None = None
) -> VideoScan:
    """Open, hash and count the frames of one video; decode each frame unless ``decode`` is off.

    Args:
        location: The INPUT location.
        name: The video's name relative to its root.
        decode: Count frames by decoding every one (and find the broken ones); off, the
            container's frame count is used where it has one (``use_frame_count_metadata``),
            else the video is decoded anyway.
        size: Its listed size, if known.

    Returns:
        The scan; a video that cannot be used has ``error`` set, never an exception.

    Raises:
        StorageUnavailableError: The storage kept failing (not the video's fault).
    """
    size = size if size is not None else 0
    try:
        digest = _sha256(location, name)
        container, stream, fh = open_container(location, name)
    except MediaError as e:
        return VideoScan(name, size, "", 0, error=e.reason)
    except StorageUnavailableError:
        raise
    except OSError as e:
        return VideoScan(name, size, "", 0, error=f"unreadable: {_first_line(e)}")
    try:
        tb, rate = _clock(stream)
        listed = int(stream.frames or 0)
        if not decode and listed > 0:
            return VideoScan(
                name, size, digest, listed, counted_by="metadata", time_base=tb, rate=rate
            )
        broken: dict[int, str] = {}
        pts: list[int | None] = []
        n = 0
        for index, frame, why in iter_frames(container, stream, name):
            n = index + 1
            pts.append(None if why is not None or frame is None else frame.pts)
            if why is not None:
                broken[index] = why
    finally:
        container.close()
        fh.close()
    if n == 0:
        return VideoScan(name, size, digest, 0, error="no frame: the video stream is empty")
    if len(broken) == n:
        return VideoScan(name, size, digest, 0, error=f"no frame decodes ({broken[0]})")
    return VideoScan(name, size, digest, n, broken, pts=tuple(pts), time_base=tb, rate=rate)


def _clock(stream: Any) -> tuple[str, str]:
    """The stream's time base and average frame rate as ``"num/den"`` strings ("" if unknown)."""
    tb, rate = stream.time_base, stream.average_rate or stream.guessed_rate
    return (str(Fraction(tb)) if tb else "", str(Fraction(rate)) if rate else "")


def read_timestamps(location: Location, scan: VideoScan) -> VideoScan:
    """``scan`` with each frame's decoded ``pts`` (for a scan counted by metadata).

    Decodes the whole video once; a video that no longer opens keeps the scan as it was (its
    timestamps are then estimated from the frame rate, or unknown).
    """
    try:
        container, stream, fh = open_container(location, scan.name)
    except (MediaError, OSError):
        return scan
    try:
        pts = [
            None if why is not None or frame is None else frame.pts
            for _i, frame, why in iter_frames(container, stream, scan.name)
        ]
        tb, rate = _clock(stream)
        return replace(scan, pts=tuple(pts), time_base=tb, rate=rate)
    finally:
        container.close()
        fh.close()


class FrameReader:
    """Decodes frames by (video, index), streaming each video forward from one open container.

    Asking for frames in increasing order within a video (how the embed stage reads) decodes
    each frame once; a frame before the current position reopens the video. One reader
    serves one process (a DataLoader worker each has its own).

    Args:
        location: The INPUT location.
    """

    def __init__(self, location: Location) -> None:
        self.location = location
        self._video: str | None = None
        self._open: tuple[Any, Any, Any] | None = None
        self._frames: Iterator[tuple[int, Any | None, str | None]] | None = None
        self._next = 0

    def close(self) -> None:
        """Close the open video, if any."""
        if self._open is not None:
            container, _stream, fh = self._open
            container.close()
            fh.close()
        self._open = self._frames = self._video = None
        self._next = 0

    def _start(self, video: str) -> None:
        self.close()
        self._open = open_container(self.location, video)
        container, stream, _fh = self._open
        self._frames = iter_frames(container, stream, video)
        self._video = video

    def read(self, video: str, index: int) -> Image.Image:
        """Frame ``index`` of ``video`` as an RGB image.

        Raises:
            VideoOpenError: The video does not open.
            FrameDecodeError: That frame is broken or past the end.
        """
        if video != self._video or index < self._next:
            self._start(video)
        assert self._frames is not None
        for i, frame, why in self._frames:
            self._next = i + 1
            if i < index:
                continue  # decoded, not converted: only the asked frame becomes an image
            if why is not None or frame is None:
                raise FrameDecodeError(video, why or "frame does not decode", frame=index)
            image: Image.Image = frame.to_image().convert("RGB")
            return image
        self.close()
        raise FrameDecodeError(video, "past the last frame", frame=index)

    def read_frame(self, name: str) -> Image.Image:
        """The frame with Lightly's frame name ``name`` (see :func:`frame_name`).

        Raises:
            FrameDecodeError: ``name`` is not a frame name, or the frame cannot be decoded.
            VideoOpenError: Its video does not open.
        """
        parsed = parse_frame_name(name)
        if parsed is None:
            raise FrameDecodeError(name, "not a video frame name (<video>-<index>-<ext>.png)")
        return self.read(*parsed)


def read_frames(location: Location, names: list[str]) -> Iterator[tuple[str, Image.Image]]:
    """``(name, image)`` for each frame name, reading each video once in frame order.

    Args:
        location: The INPUT location.
        names: Frame names, in any order.

    Raises:
        CorruptMediaError: A frame cannot be decoded.
    """
    order = sorted(names, key=lambda n: parse_frame_name(n) or (n, -1))
    reader = FrameReader(location)
    try:
        for name in order:
            yield name, reader.read_frame(name)
    finally:
        reader.close()
