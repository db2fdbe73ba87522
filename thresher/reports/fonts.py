"""The report's one font family (DejaVu Sans, shipped with matplotlib) and its coverage.

DejaVu covers Latin, Greek, Cyrillic and many symbols, but no CJK: a filename such as
``名前.jpg`` would print as empty boxes (and fpdf2 logs a missing-glyph warning per page).
:func:`displayable` swaps every character the font lacks for a visible placeholder, so the
PDF and the thumbnail sheets stay readable; report.json keeps the names as they are.

Example:
    >>> displayable("broken_ünïcødé_名前.jpg")
    'broken_ünïcødé_□□.jpg'
"""

from __future__ import annotations

import functools
import pathlib

import matplotlib

FONT_DIR = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf"

#: The regular, bold, oblique and monospaced faces.
FONT_FILES = {
    "": FONT_DIR / "DejaVuSans.ttf",
    "B": FONT_DIR / "DejaVuSans-Bold.ttf",
    "I": FONT_DIR / "DejaVuSans-Oblique.ttf",
    "mono": FONT_DIR / "DejaVuSansMono.ttf",
}

#: Shown in place of a character the font cannot draw (WHITE SQUARE, in DejaVu).
MISSING = "□"


@functools.lru_cache(maxsize=4)
def _codepoints(face: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(FONT_FILES[face]), lazy=True) as font:
        return frozenset(font.getBestCmap())


def displayable(text: str, face: str = "") -> str:
    """``text`` with every character DejaVu Sans (``face``) cannot draw replaced by □.

    Args:
        text: Any text, e.g. a filename.
        face: ``""``, ``"B"``, ``"I"`` or ``"mono"``.

    Returns:
        The text, unchanged when the font covers it (the common case costs one set lookup
        per character).
    """
    if text.isascii():
        return text
    have = _codepoints(face)
    return "".join(c if ord(c) in have or c in "\n\r\t" else MISSING for c in text)
