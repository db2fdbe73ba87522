"""The built-in ``lightly.*`` metadata, computed from the image files.

- ``lightly.sizeInBytes``: the file size.
- ``lightly.sharpness``: standard deviation of the 3x3 Laplacian of the grayscale image
  (0..255 scale); blurry images score low (Lightly's example threshold is 20).
- ``lightly.snr``: mean over standard deviation of the grayscale intensities (0 for a
  constant black image, large for flat images).
- ``lightly.uniformRowRatio``: fraction of pixel rows whose values span at most
  :data:`UNIFORM_ROW_RANGE` levels in every channel; broken frames with grey or black bands
  score high.

Beside them, thresher's own quality scores ``thresher.*`` (``thresher.dark_score``,
``thresher.bright_score``, ``thresher.blur_score``, ``thresher.low_information_score``,
``thresher.odd_aspect_ratio_score``, ``thresher.tiny_score``; in [0, 1], higher is worse;
:mod:`thresher.checks.quality`), from the same decode.

Images are read through :class:`~thresher.storage.location.Location`, so any INPUT location
works.

Example:
    >>> import numpy as np
    >>> image_metrics(np.zeros((4, 4, 3), np.uint8), 100)["lightly.uniformRowRatio"]
    1.0
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from thresher.checks.quality import quality_signals
from thresher.config.selection import LIGHTLY_METADATA_KEYS
from thresher.errors import CorruptMediaError
from thresher.storage.location import Location

UNIFORM_ROW_RANGE = 2


def image_metrics(rgb: NDArray[np.uint8], size_in_bytes: int) -> dict[str, float]:
    """The four built-in metrics of one decoded image.

    Args:
        rgb: (H, W, 3) uint8 image.
        size_in_bytes: Size of the file it was decoded from.
    """
    img = rgb.astype(np.float32)
    gray = img @ np.array([0.299, 0.587, 0.114], np.float32)
    if gray.shape[0] >= 3 and gray.shape[1] >= 3:
        lap = (
            gray[:-2, 1:-1]
            + gray[2:, 1:-1]
            + gray[1:-1, :-2]
            + gray[1:-1, 2:]
            - 4.0 * gray[1:-1, 1:-1]
        )
        sharpness = float(lap.std())
    else:
        sharpness = 0.0
    mean, std = float(gray.mean()), float(gray.std())
    snr = mean / std if std > 0 else (0.0 if mean == 0 else float("1e6"))
    span = rgb.max(axis=1).astype(np.int16) - rgb.min(axis=1).astype(np.int16)  # (H, 3)
    uniform = float((span.max(axis=1) <= UNIFORM_ROW_RANGE).mean())
    return {
        "lightly.sharpness": sharpness,
        "lightly.snr": snr,
        "lightly.sizeInBytes": float(size_in_bytes),
        "lightly.uniformRowRatio": uniform,
    }


def compute_lightly_metadata(
    inp: Location,
    filenames: Sequence[str],
    keys: Sequence[str] = LIGHTLY_METADATA_KEYS,
) -> dict[str, NDArray[np.float64]]:
    """Compute built-in metadata for every file.

    Args:
        inp: The INPUT location.
        filenames: Names relative to it.
        keys: Which ``lightly.*`` and ``thresher.*`` keys to return.

    Returns:
        key -> (N,) float64.

    Raises:
        CorruptMediaError: a file cannot be decoded (the flow removes corrupt files earlier).
    """
    out = {k: np.zeros(len(filenames), np.float64) for k in keys}
    only_size = set(keys) <= {"lightly.sizeInBytes"}
    quality = any(k.startswith("thresher.") for k in keys)
    lightly = any(k.startswith("lightly.") for k in keys)
    for i, name in enumerate(filenames):
        if only_size:
            out["lightly.sizeInBytes"][i] = float(inp.size(name))
            continue
        raw = inp.read_bytes(name)
        try:
            with Image.open(io.BytesIO(raw)) as im:
                m = quality_signals(im) if quality else {}
                if lightly:
                    rgb = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise CorruptMediaError(name, f"cannot decode image for metadata ({e})") from e
        if lightly:
            m.update(image_metrics(rgb, len(raw)))
        for k in keys:
            out[k][i] = m[k]
    return out
