"""Cheap per-image quality signals: what tells a labeler "skip this".

Computed from a small grey thumbnail (longest side at most :data:`THUMB_PX`) of an image that
is already decoded, so the corruption check adds them to its one decode per file. Every score
is in [0, 1], higher is worse; :data:`CUTOFF` (0.5) is where the report counts an image as
having the issue:

- ``thresher.dark_score``: ``1 - mean / 0.25`` of the grey levels in [0, 1]
  (0.5: mean below 0.125, i.e. 32 of 255).
- ``thresher.bright_score``: ``(mean - 0.75) / 0.25`` (0.5: mean above 0.875, 223 of 255).
- ``thresher.blur_score``: ``1 - log10(1 + v) / 3`` with ``v`` the variance of the 3x3
  Laplacian of the grey thumbnail on the 0..255 scale (0.5: ``v`` below 30.6).
- ``thresher.low_information_score``: ``1 - H / 8`` with ``H`` the entropy in bits of the
  256-level grey histogram (0.5: below 4 bits; a flat image is 1).
- ``thresher.odd_aspect_ratio_score``: ``log10(long side / short side)`` (0.5: more than
  3.16:1; 10:1 and beyond is 1).
- ``thresher.tiny_score``: ``log2(224 / short side) / log2(224 / 8)`` (0.5: short side below
  42 px; 8 px and less is 1; 224 px, the model's input, and more is 0).

Scores are clipped to [0, 1] and rounded to 4 decimals.

Example:
    >>> from PIL import Image
    >>> quality_signals(Image.new("RGB", (64, 64)))["thresher.dark_score"]
    1.0
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from thresher.config.selection import THRESHER_METADATA_KEYS

#: The thumbnail's longest side.
THUMB_PX = 256
#: The score at and above which the report counts an image as having the issue.
CUTOFF = 0.5
#: The short side below which nothing is resized for the model: a tiny score of 0.
MODEL_PX = 224


def _clip(x: float) -> float:
    return round(min(1.0, max(0.0, float(x))), 4)


def grey_thumbnail(img: Image.Image) -> np.ndarray:
    """The decoded ``img`` as a float32 grey thumbnail in [0, 255], longest side ≤ THUMB_PX."""
    return np.asarray(_grey_image(img), dtype=np.float32)


def _grey_image(img: Image.Image) -> Image.Image:
    """The decoded ``img`` as a grey (mode ``L``) image, longest side ≤ THUMB_PX."""
    from thresher.storage.pixels import readable

    im = readable(img)
    factor = max(1, max(im.size) // THUMB_PX)
    if factor > 1:
        try:
            im = im.reduce(factor)
        except ValueError:  # modes reduce() does not take (palette, 1-bit): convert first
            im = im.convert("RGBA").reduce(factor)
    if im.mode != "L":
        im = im.convert("RGBA").convert("L") if "A" in im.getbands() else im.convert("L")
    return im


def quality_signals(img: Image.Image) -> dict[str, float]:
    """The six quality scores of one decoded image (keys :data:`THRESHER_METADATA_KEYS`)."""
    w, h = img.size
    thumb = _grey_image(img)
    grey = np.asarray(thumb, dtype=np.uint8).astype(np.float32)  # as grey_thumbnail's
    mean = float(grey.mean()) / 255.0 if grey.size else 0.0
    if grey.shape[0] >= 3 and grey.shape[1] >= 3:
        lap = (
            grey[:-2, 1:-1]
            + grey[2:, 1:-1]
            + grey[1:-1, :-2]
            + grey[1:-1, 2:]
            - 4.0 * grey[1:-1, 1:-1]
        )
        var = float(lap.var())
    else:
        var = 0.0
    # The grey levels' counts: Pillow's histogram of the L image is numpy's bincount of its
    # pixels, without the copy to 64-bit integers (a third of the time of these scores).
    hist = np.asarray(thumb.histogram(), dtype=np.int64)
    p = hist[hist > 0] / max(1, grey.size)
    entropy = float(-(p * np.log2(p)).sum())
    short, long = max(1, min(w, h)), max(1, max(w, h))
    scores = (
        1.0 - mean / 0.25,
        (mean - 0.75) / 0.25,
        1.0 - math.log10(1.0 + var) / 3.0,
        1.0 - entropy / 8.0,
        math.log10(long / short),
        math.log2(MODEL_PX / short) / math.log2(MODEL_PX / 8),
    )
    return {k: _clip(v) for k, v in zip(THRESHER_METADATA_KEYS, scores, strict=True)}
