"""How a decoded image's pixels are read, the same for embedding, thumbnails and reports.

Two rules: the image is turned upright by its EXIF orientation (what a viewer shows, so what
the embedding must see), and 16- and 32-bit samples become 8-bit by keeping their high byte
(``value >> 8``), so a 16-bit grey of 25,600 is the 8-bit grey 100 it stands for, instead of
Pillow's ``convert`` clipping everything above 255 to white.

Example:
    >>> from PIL import Image
    >>> import numpy as np
    >>> img = Image.fromarray(np.full((2, 2), 25_600, dtype=np.uint16))
    >>> readable(img).getpixel((0, 0))
    100
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import ExifTags, Image, ImageOps

from thresher.errors import CorruptMediaError

#: Pillow modes whose samples are wider than 8 bits.
WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
#: The EXIF orientations that turn or mirror the stored pixels (1 keeps them as stored).
_TURNED = frozenset(range(2, 9))


def upright(img: Image.Image) -> Image.Image:
    """``img`` (loaded) turned as its EXIF orientation says.

    A new image when it is turned; ``img`` itself when it is not, or when its EXIF is
    unreadable (Pillow's ``exif_transpose`` copies every image, turned or not).
    """
    try:
        img.load()
        if img.getexif().get(ExifTags.Base.Orientation, 1) in _TURNED:
            return ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError, TypeError, KeyError, struct.error):
        pass  # garbage EXIF: the pixels as stored are the best we have
    return img


def readable(img: Image.Image) -> Image.Image:
    """``img`` upright, with wide samples as 8 bits (mode ``L``); other modes unchanged."""
    img = upright(img)
    if img.mode in WIDE_MODES:
        wide = np.asarray(img, dtype=np.int64)
        img = Image.fromarray(np.clip(wide >> 8, 0, 255).astype(np.uint8), mode="L")
    return img


def decode_image(data: bytes, filename: str, min_size: int | None = None) -> Image.Image:
    """Decode one image's bytes as RGB, upright and 8-bit (:func:`readable`).

    Args:
        data: The file's bytes.
        filename: Its name relative to the input root, for errors.
        min_size: If given, JPEGs may be decoded at a reduced scale whose short side is
            still at least this many pixels (much faster for large photos).

    Raises:
        CorruptMediaError: The bytes are not a decodable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            if min_size is not None and img.format == "JPEG":
                img.draft("RGB", (min_size, min_size))
            img.load()
            return readable(img).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise CorruptMediaError(filename, f"cannot decode image: {e}") from e


def model_pixels(img: Image.Image, size: int) -> np.ndarray:
    """An RGB image as the model's input pixels: ``(3, size, size)`` uint8.

    The short side is resized to ``size`` (bilinear, antialiased: Pillow's resampling, which
    torchvision's ``Resize(antialias=True)`` follows), then the center square is cut, as
    ``thresher.models.inference.eval_transform`` does before it scales and normalises. Done
    with Pillow on 8-bit pixels it costs about half as much as on tensors.

    Args:
        img: An RGB image.
        size: Side of the square input.
    """
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)  # torchvision's rule for the long side
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top = round((new_h - size) / 2.0)
    left = round((new_w - size) / 2.0)
    if (new_w, new_h) != (size, size):
        img = img.crop((left, top, left + size, top + size))
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))
