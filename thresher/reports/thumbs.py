"""Sheets of thumbnails (selected images, selected-vs-removed pairs, findings), by Pillow.

A sheet of 30 thumbnails as a matplotlib figure costs 30 axes (about 1 s to lay out and draw);
pasting the thumbnails and their labels with Pillow costs a few milliseconds per thumbnail and
gives the same picture: a grid of framed thumbnails, a label under each (its name, shortened
in the middle to fit), optionally a title above each and a label per row on the left.

Example:
    >>> rows = [[Tile("a.jpg", below="1. a.jpg", frame="#DD8452")]]
    >>> tile_sheet(rows, None, pathlib.Path("plots/grid.png"))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from thresher.reports.fonts import FONT_FILES, displayable

#: Pixels per typographic point on a sheet; sheets are placed at about 150 dpi in the PDF.
_PX_PER_PT = 150 / 72


@dataclass(frozen=True)
class Tile:
    """One thumbnail on a sheet.

    Attributes:
        name: The image, as the loader knows it (a relative filename).
        below: Label under the thumbnail (shortened in the middle to the thumbnail's width).
        above: Title over the thumbnail (e.g. a distance or a score), or empty.
        frame: Frame colour (``"#RRGGBB"``), or None for a thin grey frame.
    """

    name: str
    below: str = ""
    above: str = ""
    frame: str | None = None


@functools.lru_cache(maxsize=8)
def _font(points: float, face: str = "") -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_FILES[face]), max(6, round(points * _PX_PER_PT)))


def thumbnail(load_image: Callable[[str], Image.Image] | None, name: str, size: int) -> np.ndarray:
    """An RGB thumbnail ``size`` x ``size`` (letterboxed on white), or a crossed placeholder.

    The placeholder (grey with a cross) stands for an image that cannot be opened.

    Args:
        load_image: Opens a file by relative name; None draws the placeholder.
        name: The file.
        size: Side in pixels.

    Returns:
        A (size, size, 3) uint8 array.
    """
    if load_image is not None:
        try:
            with contextlib.ExitStack() as stack:
                img = load_image(name)
                if hasattr(img, "close"):
                    stack.callback(img.close)
                if hasattr(img, "draft"):  # JPEG: decode at a reduced scale, much faster
                    img.draft("RGB", (size, size))
                img = img.convert("RGB")
                # Fit the tile both ways: a 28 x 28 image would otherwise be a speck in a
                # 150-pixel frame. Small images are enlarged with crisp pixels.
                scale = size / max(img.width, img.height, 1)
                if scale <= 1:
                    img.thumbnail((size, size))
                else:
                    new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
                    up = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.BICUBIC
                    img = img.resize(new, up)
                canvas = Image.new("RGB", (size, size), (255, 255, 255))
                canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
                return np.asarray(canvas)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError):
            pass  # a missing or broken image becomes a placeholder; the report still renders
    ph = np.full((size, size, 3), 225, dtype=np.uint8)
    idx = np.arange(size)
    ph[idx, idx] = 150
    ph[idx, size - 1 - idx] = 150
    return ph


def fit_text(text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """``text`` shortened in the middle (``…``) until it is at most ``width`` pixels wide.

    Filenames keep their start and their extension, unlike a cut at the end.
    """
    text = displayable(text)
    if font.getlength(text) <= width:
        return text
    lo, hi = 1, len(text)
    while lo < hi:  # the most characters that still fit
        mid = (lo + hi + 1) // 2
        head = (mid - 1) // 2
        cand = text[:head] + "…" + text[len(text) - (mid - 1 - head) :]
        if font.getlength(cand) <= width:
            lo = mid
        else:
            hi = mid - 1
    head = (lo - 1) // 2
    return text[:head] + "…" + text[len(text) - (lo - 1 - head) :]


def tile_sheet(
    rows: Sequence[Sequence[Tile | None]],
    load_image: Callable[[str], Image.Image] | None,
    path: pathlib.Path,
    *,
    thumb_px: int = 150,
    row_labels: Sequence[str] = (),
    label_pt: float = 6.0,
    title_pt: float = 7.0,
    empty_text: str = "",
) -> pathlib.Path:
    """Draw thumbnails in a grid and write the sheet as PNG, atomically.

    The sheet goes to a temporary file in the same folder first, then is renamed.

    Args:
        rows: Rows of tiles; None leaves a cell empty.
        load_image: Opens a file by relative name; None or a failure draws a placeholder.
        path: Target PNG; parent folders are created.
        thumb_px: Side of each thumbnail in pixels.
        row_labels: A label per row, written on the left (e.g. "removed").
        label_pt: Size of the labels under the thumbnails, in points at 150 dpi.
        title_pt: Size of the titles above the thumbnails and of the row labels.
        empty_text: Written on the sheet when ``rows`` holds no tile.

    Returns:
        ``path``.
    """
    small, big = _font(label_pt), _font(title_pt)
    ncols = max([len(r) for r in rows] or [1])
    has_above = any(t is not None and t.above for r in rows for t in r)
    pad, frame = 8, 3
    line_small = int(small.size) + 4
    line_big = int(big.size) + 4
    left = 0
    if row_labels:
        left = int(max(big.getlength(displayable(s)) for s in row_labels)) + 2 * pad
    cell_w = thumb_px + 2 * frame + pad
    cell_h = thumb_px + 2 * frame + line_small + (line_big if has_above else 0) + pad
    width = left + ncols * cell_w + pad
    height = max(1, len(rows)) * cell_h + pad
    if not any(t is not None for r in rows for t in r):
        width, height = max(width, 600), 80
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if height == 80 and empty_text:
        draw.text((pad, 30), empty_text, fill=(0, 0, 0), font=big)
    for i, row in enumerate(rows):
        y0 = pad + i * cell_h
        if i < len(row_labels):
            ty = y0 + (line_big if has_above else 0) + frame + thumb_px // 2
            draw.text((pad, ty), displayable(row_labels[i]), fill=(0, 0, 0), font=big, anchor="lm")
        for j, tile in enumerate(row):
            if tile is None:
                continue
            x0 = left + pad + j * cell_w
            y = y0
            cx = x0 + frame + thumb_px / 2
            if has_above:
                text = fit_text(tile.above, big, thumb_px + 2 * frame)
                draw.text((cx, y + line_big / 2), text, fill=(0, 0, 0), font=big, anchor="mm")
                y += line_big
            colour = tile.frame or "#BBBBBB"
            draw.rectangle(
                [x0, y, x0 + thumb_px + 2 * frame - 1, y + thumb_px + 2 * frame - 1], fill=colour
            )
            sheet.paste(
                Image.fromarray(thumbnail(load_image, tile.name, thumb_px)), (x0 + frame, y + frame)
            )
            y += thumb_px + 2 * frame
            text = fit_text(tile.below, small, thumb_px + 2 * frame + pad - 2)
            draw.text((cx, y + 2), text, fill=(40, 40, 40), font=small, anchor="ma")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sheet.save(tmp, format="PNG", compress_level=1)
    tmp.replace(path)
    return path
