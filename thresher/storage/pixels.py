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

import struct

import numpy as np
from PIL import Image, ImageOps

#: Pillow modes whose samples are wider than 8 bits.
WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


def upright(img: Image.Image) -> Image.Image:
    """``img`` turned as its EXIF orientation says; unchanged when its EXIF is unreadable."""
    try:
        return ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError, TypeError, KeyError, struct.error):
        return img  # garbage EXIF: the pixels as stored are the best we have


def readable(img: Image.Image) -> Image.Image:
    """``img`` upright, with wide samples as 8 bits (mode ``L``); other modes unchanged."""
    img = upright(img)
    if img.mode in WIDE_MODES:
        wide = np.asarray(img, dtype=np.int64)
        img = Image.fromarray(np.clip(wide >> 8, 0, 255).astype(np.uint8), mode="L")
    return img
