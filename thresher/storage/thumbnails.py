"""Thumbnails of images, where Lightly puts them: ``.lightly/thumbnails/<name>_thumb.<ext>``.

Lightly's default ``thumbnail_suffix`` is ``.lightly/thumbnails/[filename]_thumb.[extension]``
(the file name relative to INPUT without its extension, then ``_thumb`` and the extension), so
``cars/a.jpg`` gets ``.lightly/thumbnails/cars/a_thumb.jpg`` in the LIGHTLY location.

A thumbnail is the image turned upright by its EXIF orientation and shrunk so its longest side
is at most :data:`MAX_SIDE` pixels (never enlarged). It keeps the source's format when a browser
can show it (JPEG, PNG, GIF, WebP, BMP); TIFF, which browsers cannot show, becomes PNG
(lossless, keeps transparency): ``scan.tif`` gets ``scan_thumb.tif.png``, so it cannot clash with
``scan.png``'s.

Example:
    >>> thumbnail_rel("cars/a.jpg")
    '.lightly/thumbnails/cars/a_thumb.jpg'
    >>> thumbnail_rel("scan.TIFF")
    '.lightly/thumbnails/scan_thumb.TIFF.png'
"""

from __future__ import annotations

import errno
import io
import logging
import posixpath
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from thresher.errors import CorruptMediaError, StorageError
from thresher.storage.location import Location
from thresher.storage.pixels import readable

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("thresher.storage")

THUMBNAIL_DIR = ".lightly/thumbnails"
#: The longest side of a thumbnail, in pixels (a gallery cell is about 200 px wide; 256 stays
#: sharp on a high-density screen and costs ~15 KB as a JPEG).
MAX_SIDE = 256
#: Source extension -> (thumbnail extension, Pillow format). Other extensions become PNG.
_FORMATS = {
    ".jpg": (".jpg", "JPEG"),
    ".jpeg": (".jpeg", "JPEG"),
    ".png": (".png", "PNG"),
    ".gif": (".gif", "GIF"),
    ".webp": (".webp", "WEBP"),
    ".bmp": (".bmp", "BMP"),
}
_FALLBACK = (".png", "PNG")
#: Images read from INPUT at once.
_BATCH = 64
#: Media types of the thumbnail extensions, for serving them.
MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}


def _format_of(filename: str) -> tuple[str, str]:
    return _FORMATS.get(posixpath.splitext(filename)[1].lower(), _FALLBACK)


def thumbnail_rel(filename: str) -> str:
    """Where the thumbnail of ``filename`` (relative to INPUT) lies, relative to LIGHTLY.

    The source's extension is kept as written, so ``a.jpg`` and ``a.JPG`` get two thumbnails;
    a format browsers cannot show keeps its extension before ``.png`` (``a_thumb.tif.png``), so
    it cannot take ``a.png``'s or ``a.tif.png``'s thumbnail.
    """
    stem, ext = posixpath.splitext(filename)
    if ext.lower() in _FORMATS:
        return f"{THUMBNAIL_DIR}/{stem}_thumb{ext}"
    return f"{THUMBNAIL_DIR}/{stem}_thumb{ext or '.'}{_FALLBACK[0]}"


def media_type(rel: str) -> str:
    """The HTTP media type of a thumbnail path (``image/jpeg``...)."""
    return MEDIA_TYPES.get(posixpath.splitext(rel)[1].lower(), "application/octet-stream")


def _web_mode(img: Image.Image, fmt: str) -> Image.Image:
    """``img`` (already :func:`~thresher.storage.pixels.readable`) in a mode ``fmt`` can store."""
    import numpy as np
    from PIL import Image

    if img.mode == "F":  # float samples have no fixed range: stretch them to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(scaled.astype(np.uint8), mode="L")
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if fmt == "JPEG":
        return img if img.mode in ("RGB", "L") else img.convert("RGB")
    if fmt == "GIF":
        return img if img.mode in ("P", "L") else img.convert("RGB").quantize()
    if img.mode in ("RGB", "RGBA", "L", "LA") or (fmt == "PNG" and img.mode == "P"):
        return img
    return img.convert("RGBA" if has_alpha else "RGB")


def make_thumbnail(data: bytes, filename: str, max_side: int = MAX_SIDE) -> bytes:
    """The thumbnail of one image's bytes, in the format :func:`thumbnail_rel` names.

    Args:
        data: The image file's content.
        filename: Its name (its extension picks the thumbnail's format; used in errors).
        max_side: The longest side of the thumbnail; smaller images keep their size.

    Raises:
        CorruptMediaError: The bytes are not an image Pillow can decode.
    """
    from PIL import Image, UnidentifiedImageError

    fmt = _format_of(filename)[1]
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.seek(0)  # the first frame of an animation
            img = readable(opened)
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            img = _web_mode(img, fmt)
            out = io.BytesIO()
            options = {"quality": 85, "optimize": True} if fmt in ("JPEG", "WEBP") else {}
            img.save(out, format=fmt, **options)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise CorruptMediaError(filename, f"cannot make a thumbnail: {e}") from e
    return out.getvalue()


@dataclass(frozen=True)
class ThumbnailsWritten:
    """What :func:`write_thumbnails` did.

    Attributes:
        written: How many thumbnails were written.
        failed: ``(file name, reason)`` of the images that could not be read or decoded.
    """

    written: int
    failed: list[tuple[str, str]] = field(default_factory=list)


def _name_too_long(error: BaseException) -> bool:
    """Whether ``error`` or an error it was raised from is ENAMETOOLONG."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENAMETOOLONG:
            return True
        seen = seen.__cause__
    return False


def write_thumbnails(
    inp: Location,
    lightly: Location,
    filenames: Sequence[str],
    max_side: int = MAX_SIDE,
    threads: int = 4,
) -> ThumbnailsWritten:
    """Write the thumbnail of each of ``filenames`` (read from ``inp``) into ``lightly``.

    Each thumbnail is written atomically (``Location.write_bytes``); ``inp`` is only read.
    A file that is missing or cannot be decoded, or whose name leaves no room for its
    thumbnail's, is skipped and listed in ``failed``: a missing thumbnail shows as a
    placeholder, it must not fail the run that selected the file.

    Args:
        inp: The INPUT location (read-only is fine).
        lightly: The LIGHTLY location (writable).
        filenames: File names relative to ``inp``.
        max_side: The longest side of a thumbnail.
        threads: Images decoded and resized at once (Pillow releases the GIL).
    """
    names = list(filenames)
    failed: list[tuple[str, str]] = []

    def one(k: int, data: bytes) -> tuple[str, str] | None:
        try:
            thumb = make_thumbnail(data, names[k], max_side)
        except CorruptMediaError as e:
            return names[k], e.reason
        try:
            lightly.write_bytes(thumbnail_rel(names[k]), thumb)
        except StorageError as e:
            # A name near the file system's 255-byte limit has no room for "_thumb": that one
            # image goes without a thumbnail. Any other write failure is the location's, and
            # ends the run.
            if not _name_too_long(e):
                raise
            return names[k], "the file name is too long for a thumbnail name beside it"
        return None

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        # One batch at a time, so only a batch of images is held in memory.
        for start in range(0, len(names), _BATCH):
            batch = names[start : start + _BATCH]
            read = list(inp.read_many(batch, chunk=_BATCH))
            got = {start + k for k, _ in read}
            results = pool.map(one, [start + k for k, _ in read], [d for _, d in read])
            failed += [r for r in results if r is not None]
            failed += [
                (names[k], "the file is missing")
                for k in range(start, start + len(batch))
                if k not in got
            ]
    return ThumbnailsWritten(written=len(names) - len(failed), failed=failed)
