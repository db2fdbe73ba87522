"""Object crops: a box of an image is a sample, named as a frame of a video is.

An object-level run (``docs/objects.md``) works on **crops**: every box of an object task in
every kept image is one sample, named
``<image path without extension>-<task>-<box index>-<extension>.png`` with the index
zero-padded to ``len(str(n_boxes))`` digits and the extension in its original case:
``a/b/street.JPG`` with 12 boxes of task ``cars`` gives ``a/b/street-cars-00-JPG.png`` to
``a/b/street-cars-11-JPG.png``. The index is the box's position in the image's prediction
file (or in the auto task's list of boxes).

Boxes are ``(left, top, right, bottom)`` in whole pixels, right and bottom exclusive, inside the
image. They come from a detection task's predictions (``[x, y, w, h]`` in pixels, Lightly's
format, read by :mod:`thresher.storage.predictions`) grown by ``padding`` (Lightly's
``object_level.padding``: a padding of 0.1 makes the box 10 % wider and 10 % higher, around
the same centre, clipped to the image), or from an auto task: ``TILING`` (a grid of
``num_rows`` x ``num_cols`` tiles overlapping by ``overlap`` of a tile) or ``CROP`` (fixed
boxes ``[x, y, w, h]`` relative to the image size).

Example:
    >>> crop_name("a/street.JPG", "cars", 3, 12)
    'a/street-cars-03-JPG.png'
    >>> parse_crop_name("a/street-cars-03-JPG.png", "cars")
    ('a/street.JPG', 3)
    >>> pad_box([10, 20, 40, 20], 0.5, (100, 100))
    (0, 15, 60, 45)
    >>> tiling_boxes(2, 2, 0.0, (100, 60))
    [(0, 0, 50, 30), (50, 0, 100, 30), (0, 30, 50, 60), (50, 30, 100, 60)]
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence

from PIL import Image

from thresher.errors import CorruptMediaError
from thresher.storage.location import Location
from thresher.storage.pixels import readable

#: ``(left, top, right, bottom)`` in pixels; right and bottom exclusive.
Box = tuple[int, int, int, int]
#: The suffix of every crop name (the written crop is a PNG).
CROP_SUFFIX = ".png"
#: How far (pixels) a predicted box may reach past the image edge before it is refused;
#: rounding in a detector's output is forgiven, a box for another image size is not.
BOX_TOLERANCE = 1.0


def crop_name(image: str, task: str, index: int, n_boxes: int) -> str:
    """The name of box ``index`` of ``image`` in ``task``.

    Args:
        image: The image's name relative to the INPUT root, e.g. ``a/street.JPG``.
        task: The object task (a prediction task or an auto task's name).
        index: The box's position in the image's list of boxes, from 0.
        n_boxes: How many boxes the image has in the task (sets the zero padding).

    Returns:
        e.g. ``a/street-cars-03-JPG.png``.
    """
    stem, dot, ext = image.rpartition(".")
    if not dot:  # no extension: keep the name whole, and an empty extension part
        stem, ext = image, ""
    return f"{stem}-{task}-{index:0{len(str(max(n_boxes, 1)))}d}-{ext}{CROP_SUFFIX}"


def crop_file(task: str, name: str) -> str:
    """Where a selected crop is written, relative to LIGHTLY: ``.lightly/crops/<task>/<name>``."""
    return f".lightly/crops/{task}/{name}"


def parse_crop_name(name: str, task: str) -> tuple[str, int] | None:
    """``(image name, box index)`` of a crop name of ``task``, or None if it is not one."""
    m = re.match(rf"^(?P<stem>.+)-{re.escape(task)}-(?P<index>\d+)-(?P<ext>[^./-]*)\.png$", name)
    if m is None:
        return None
    image = f"{m['stem']}.{m['ext']}" if m["ext"] else m["stem"]
    return image, int(m["index"])


def box_problem(bbox: Sequence[float], size: tuple[int, int]) -> str | None:
    """Why a predicted ``[x, y, w, h]`` cannot be cropped from an image of ``size``, or None.

    A box must have a positive width and height and lie inside the image (up to
    :data:`BOX_TOLERANCE` pixels past an edge).
    """
    x, y, w, h = (float(v) for v in bbox)
    width, height = size
    if w <= 0 or h <= 0:
        return f"bbox {list(bbox)} has no area (width and height must be > 0 to crop it)"
    t = BOX_TOLERANCE
    if x < -t or y < -t or x + w > width + t or y + h > height + t:
        return (
            f"bbox {list(bbox)} ([x, y, w, h] in pixels) reaches outside the image, which is "
            f"{width}x{height} pixels"
        )
    return None


def pad_box(bbox: Sequence[float], padding: float, size: tuple[int, int]) -> Box:
    """A predicted ``[x, y, w, h]`` grown by ``padding`` around its centre, clipped to the image.

    Args:
        bbox: ``[x, y, w, h]`` in pixels from the top-left corner (Lightly's format).
        padding: Fraction of the box's width and height added (0.1: 10 % wider and higher).
        size: The image's ``(width, height)``.

    Returns:
        The pixel box, at least one pixel wide and high.
    """
    x, y, w, h = (float(v) for v in bbox)
    width, height = size
    dx, dy = w * padding / 2, h * padding / 2
    left = min(max(0, math.floor(x - dx + 1e-9)), width - 1)
    top = min(max(0, math.floor(y - dy + 1e-9)), height - 1)
    right = max(min(width, math.ceil(x + w + dx - 1e-9)), left + 1)
    bottom = max(min(height, math.ceil(y + h + dy - 1e-9)), top + 1)
    return left, top, right, bottom


def tiling_boxes(num_rows: int, num_cols: int, overlap: float, size: tuple[int, int]) -> list[Box]:
    """The tiles of a ``TILING`` auto task, row by row.

    ``num_cols`` tiles of width ``t`` overlapping by ``overlap * t`` span the width exactly:
    ``t = width / (num_cols - (num_cols - 1) * overlap)``; the same for the rows.
    """
    width, height = size

    def spans(n: int, length: int) -> list[tuple[int, int]]:
        tile = length / (n - (n - 1) * overlap)
        step = tile * (1 - overlap)
        out = []
        for i in range(n):
            lo = min(round(i * step), length - 1)
            out.append((lo, max(min(length, round(i * step + tile)), lo + 1)))
        return out

    return [
        (left, top, right, bottom)
        for top, bottom in spans(num_rows, height)
        for left, right in spans(num_cols, width)
    ]


def relative_boxes(bboxs: Sequence[Sequence[float]], size: tuple[int, int]) -> list[Box]:
    """The boxes of a ``CROP`` auto task: each ``[x, y, w, h]`` relative to the image size."""
    width, height = size
    return [
        pad_box([x * width, y * height, w * width, h * height], 0.0, size) for x, y, w, h in bboxs
    ]


def crop_image(image: Image.Image, box: Box) -> Image.Image:
    """The pixels of ``box`` (RGB)."""
    return image.crop(box).convert("RGB")


class CropReader:
    """Decodes crops by name, one source image at a time (the crops of an image come together).

    Args:
        location: The INPUT location the image names are relative to.
        crops: Crop name -> ``(image name, box)``.
    """

    def __init__(self, location: Location, crops: Mapping[str, tuple[str, Box]]) -> None:
        self.location = location
        self.crops = crops
        self._last: tuple[str, Image.Image] | None = None

    def image(self, name: str) -> Image.Image:
        """The decoded source image ``name`` (kept until another is asked for)."""
        if self._last is None or self._last[0] != name:
            try:
                with Image.open(io.BytesIO(self.location.read_bytes(name))) as img:
                    img.load()
                    self._last = (name, readable(img).convert("RGB"))
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                raise CorruptMediaError(name, f"cannot decode image: {e}") from e
        return self._last[1]

    def read_crop(self, name: str) -> Image.Image:
        """The crop ``name``.

        Raises:
            CorruptMediaError: Its image does not decode.
        """
        image, box = self.crops[name]
        return crop_image(self.image(image), box)
