"""The bad media corpus: unusual and hostile files, each with its expected fate beside it.

:func:`build_corpus` writes every :data:`ENTRIES` entry into an INPUT folder (and, for the
symbolic link that leaves INPUT, a file beside it). Each entry says what a run must do with it:

- ``processed``: listed, passes the corruption check, embedded, selectable, thumbnailed;
- ``duplicate``: byte-identical to ``duplicate_of``, which stays (first by sorted name);
- ``corrupt``: listed and reported in ``corruptness_check_information.json`` with a reason
  containing ``reason``;
- ``not_listed``: refused at listing because of its name, reported under ``not_listed`` with
  a reason containing ``reason``, and outside the accounting;
- ``not_a_file``: a folder that only looks like an image; its contents are listed instead.

Everything is generated here with Pillow and the standard library; the one exception is the
arithmetic-coded JPEG (Pillow cannot write one), kept as 230 literal bytes.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

Fate = Literal["processed", "duplicate", "corrupt", "not_listed", "not_a_file"]

#: Running as root, a file without read permission is readable anyway.
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

#: Made by ``jpegtran -arithmetic -copy none`` (libjpeg-turbo 2.1.5) from a 16x16 baseline JPEG
#: Pillow wrote: left half (200, 30, 30), right half (30, 30, 200). Markers: SOF9 (ffc9,
#: arithmetic sequential) and DAC (ffcc). Decodes to those colours within a few levels.
ARITHMETIC_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb0043000302020302020303030304030304050805050404"
    "050a070706080c0a0c0c0b0a0b0b0d0e12100d0e110e0b0b1016101113141515150c0f171816141812141514ff"
    "db00430103040405040509050509140d0b0d141414141414141414141414141414141414141414141414141414"
    "1414141414141414141414141414141414141414141414ffc90011080010001003012200021101031101ffcc00"
    "0a0010100501101105ffda000c03010002110311003f00ff00c825b5b967c5808dad19b2b989d7eca105f32c86"
    "456b12ffd9"
)


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    """``img`` saved in ``fmt`` as bytes."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def noise(seed: int, size: tuple[int, int] = (40, 30)) -> Image.Image:
    """A random RGB image (distinct per seed, so no two are duplicates)."""
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr)


def two_colours(size: tuple[int, int] = (16, 16)) -> Image.Image:
    """Left half (200, 30, 30), right half (30, 160, 60): easy to check after decoding."""
    img = Image.new("RGB", size, (200, 30, 30))
    img.paste((30, 160, 60), (size[0] // 2, 0, size[0], size[1]))
    return img


def upright_photo() -> Image.Image:
    """An asymmetric 48x32 'photo': a red block top-left, so any rotation shows."""
    arr = np.full((32, 48, 3), 40, dtype=np.uint8)
    arr[:12, :16] = (220, 20, 20)
    arr[20:, 30:] = (20, 20, 220)
    return Image.fromarray(arr)


def exif_rotated_jpeg() -> bytes:
    """:func:`upright_photo` stored rotated, with EXIF orientation 6 ("rotate 90 CW to view")."""
    stored = upright_photo().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=95, exif=exif)


def cmyk_jpeg() -> bytes:
    """:func:`two_colours` as a CMYK JPEG (Pillow writes Adobe's inverted CMYK)."""
    return encode(two_colours().convert("CMYK"), "JPEG", quality=95)


def ycck_jpeg() -> bytes:
    """:func:`two_colours` as a YCCK JPEG (Adobe transform 2), as Photoshop writes CMYK.

    Pillow cannot write YCCK, so the YCC values are computed here and stored as a CMYK JPEG
    whose Adobe marker then says "transform 2". The decoder turns (Y, Cb, Cr) back into the
    inverted C, M, Y; Pillow's Adobe polarity stores each channel as 255 - value.
    """
    c, m, y, k = two_colours().convert("CMYK").split()
    ycc = Image.merge("RGB", (c, m, y)).convert("YCbCr").split()
    stored = Image.merge(
        "CMYK", [Image.fromarray(255 - np.asarray(ch, dtype=np.uint8)) for ch in ycc] + [k]
    )
    data = bytearray(encode(stored, "JPEG", quality=95))
    at = data.find(b"Adobe")
    assert at > 0, "Pillow wrote no Adobe marker"
    data[at + 11] = 2  # "Adobe", version, flags0, flags1, then the transform byte
    return bytes(data)


def gradient16() -> Image.Image:
    """A 16-bit grey ramp 0..65280 (8-bit equivalent: 0..255 across 256 columns)."""
    arr = np.tile((np.arange(256, dtype=np.uint16) * 256), (8, 1))
    return Image.fromarray(arr)


def palette_with_transparency() -> bytes:
    """A palette PNG whose index 0 is transparent (tRNS chunk)."""
    img = noise(20).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(img, "PNG", transparency=0)


def animated(fmt: str) -> bytes:
    """Two frames, red then green: the first frame is the one to use."""
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int, body: bytes) -> bytes:
    """A PNG signature and a valid IHDR for ``width`` x ``height`` RGB, then ``body``."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + body


def garbage(n: int, seed: int = 7) -> bytes:
    """``n`` random bytes."""
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def jpeg_headers(img: Image.Image) -> bytes:
    """``img`` as a JPEG cut right after its start-of-scan header (no image data)."""
    data = encode(img, "JPEG")
    sos = data.index(b"\xff\xda")
    return data[: sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")]


def text_bomb_png() -> bytes:
    """A small PNG carrying a zTXt chunk that inflates to 2 MB of zeros."""
    png = encode(noise(33), "PNG")
    idat = png.index(b"IDAT") - 4
    bomb = png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"\0" * 2_000_000, 9))
    return png[:idat] + bomb + png[idat:]


def big_grey_jpeg(width: int, height: int) -> bytes:
    """A flat grey JPEG of ``width`` x ``height`` (small on disk, large when decoded)."""
    return encode(Image.new("L", (width, height), 128), "JPEG", quality=50)


@dataclass(frozen=True)
class Entry:
    """One corpus file and what a run must do with it.

    Attributes:
        name: Its name relative to INPUT (may hold a line break or undecodable bytes, given as
            surrogate escapes, the way Python's ``os`` functions spell them).
        make: Creates the entry, given INPUT's root and a folder outside INPUT.
        fate: The expected fate (see the module docstring).
        reason: For ``corrupt`` and ``not_listed``: a substring of the reported reason.
        duplicate_of: For ``duplicate``: the file that stays.
        why: The expectation, worked out.
        thumbnail: For ``processed``: whether a thumbnail can exist (else it is reported as
            missing in the log, and the run still completes).
    """

    name: str
    make: Callable[[Path, Path], None]
    fate: Fate
    reason: str = ""
    duplicate_of: str = ""
    why: str = ""
    thumbnail: bool = True


def _bytes(data: bytes | Callable[[], bytes]) -> Callable[[Path, Path], None]:
    """A ``make`` that writes ``data`` (or what it returns) at the entry's name."""

    def make(path: Path, _outside: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data() if callable(data) else data)

    return make


def _symlink(target: str) -> Callable[[Path, Path], None]:
    """A ``make`` that creates a symbolic link to ``target`` (relative, or ``{outside}/...``)."""

    def make(path: Path, outside: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target.format(outside=outside), path)

    return make


def _outside_file(path: Path, outside: Path) -> None:
    (outside / "secret.png").write_bytes(encode(noise(99), "PNG"))
    os.symlink(outside / "secret.png", path)


def _sparse(path: Path, _outside: Path) -> None:
    with path.open("wb") as fh:
        fh.write(encode(noise(32), "PNG"))  # a real PNG at the start, then holes
        fh.truncate(SPARSE_BYTES)


def _fifo(path: Path, _outside: Path) -> None:
    os.mkfifo(path)


def _unreadable(path: Path, outside: Path) -> None:
    _bytes(lambda: encode(noise(30), "PNG"))(path, outside)
    path.chmod(0)


def _folder(path: Path, outside: Path) -> None:
    path.mkdir()
    (path / "inner.png").write_bytes(encode(noise(31), "PNG"))


def _png(seed: int) -> Callable[[Path, Path], None]:
    return _bytes(lambda: encode(noise(seed), "PNG"))


def _jpeg(seed: int) -> Callable[[Path, Path], None]:
    return _bytes(lambda: encode(noise(seed), "JPEG", quality=90))


SPARSE_BYTES = (1 << 30) + 1  # one byte over thresher.checks.corruption.MAX_FILE_BYTES
LONG_NAME = "long_" + "x" * 243 + ".png"  # 252 bytes; Linux allows 255
NFC = "caf\u00e9.png"  # é as one code point
NFD = "cafe\u0301.png"  # e + combining acute: the same name to a reader, another file on Linux

ENTRIES: list[Entry] = [
    # Plain images around the odd ones, so selection has something to choose from.
    *(Entry(f"normal_{i:02d}.png", _png(i), "processed", why="a plain RGB PNG") for i in range(6)),
    *(
        Entry(f"normal_{i:02d}.jpg", _jpeg(i), "processed", why="a plain JPEG")
        for i in range(6, 10)
    ),
    # Colour models and bit depths: decodable, embedded from their RGB rendering.
    Entry("cmyk.jpg", _bytes(cmyk_jpeg), "processed", why="CMYK JPEG, Adobe polarity"),
    Entry("ycck.jpg", _bytes(ycck_jpeg), "processed", why="YCCK JPEG (Adobe transform 2)"),
    Entry("gray16.png", _bytes(lambda: encode(gradient16(), "PNG")), "processed", why="I;16 PNG"),
    Entry("gray16.tif", _bytes(lambda: encode(gradient16(), "TIFF")), "processed", why="16-bit"),
    Entry("palette_transparent.png", _bytes(palette_with_transparency), "processed"),
    Entry("la.png", _bytes(lambda: encode(noise(21).convert("LA"), "PNG")), "processed"),
    Entry("rgba.png", _bytes(lambda: encode(noise(22).convert("RGBA"), "PNG")), "processed"),
    Entry("exif_rotated.jpg", _bytes(exif_rotated_jpeg), "processed", why="orientation 6"),
    Entry(
        "progressive.jpg",
        _bytes(lambda: encode(noise(23), "JPEG", progressive=True, quality=90)),
        "processed",
    ),
    Entry(
        "arithmetic.jpg",
        _bytes(ARITHMETIC_JPEG),
        "processed",
        why="libjpeg-turbo (Pillow's) decodes arithmetic coding; were it not built in, the "
        "decoder's error would make it corrupt with a reason instead",
    ),
    Entry("animated.gif", _bytes(lambda: animated("GIF")), "processed", why="first frame"),
    Entry("animated.webp", _bytes(lambda: animated("WEBP")), "processed", why="first frame"),
    Entry("jpeg_named.png", _jpeg(24), "processed", why="content decides, not the extension"),
    Entry("UPPER.JPG", _jpeg(25), "processed", why="extensions match in any case"),
    # Sizes.
    Entry(
        "tiny_1x1.png",
        _bytes(lambda: encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG")),
        "processed",
    ),
    Entry(
        "wide_20000x20.png",
        _bytes(lambda: encode(noise(26, (20000, 20)), "PNG")),
        "processed",
        why="400,000 pixels, aspect 1000:1",
    ),
    Entry(
        "big_under_bomb_limit.jpg",
        _bytes(lambda: big_grey_jpeg(11_000, 8_000)),
        "processed",
        why="88.0 M pixels, under Pillow's 89.48 M limit",
    ),
    Entry(
        "bomb_over_limit.jpg",
        _bytes(lambda: big_grey_jpeg(9_500, 9_500)),
        "corrupt",
        reason="decompression bomb",
        why="90.25 M pixels, over the 89.48 M limit (Pillow's warning range)",
    ),
    Entry(
        "bomb_header.png",
        _bytes(lambda: png_header_only(40_000, 40_000, png_chunk(b"IDAT", garbage(64)))),
        "corrupt",
        reason="decompression bomb",
        why="a header claiming 1.6 G pixels (Pillow refuses it at open)",
    ),
    # Valid headers, unusable bodies.
    Entry(
        "garbage_body.png",
        _bytes(lambda: png_header_only(32, 32, png_chunk(b"IDAT", garbage(200)))),
        "corrupt",
        reason="truncated",
        why="a valid signature and IHDR, then an IDAT of random bytes",
    ),
    Entry(
        "garbage_body.jpg",
        _bytes(lambda: jpeg_headers(noise(27)) + garbage(800) + b"\xff\xd9"),
        "corrupt",
        reason="broken data stream",
        why="every JPEG header up to the start of scan, then random bytes",
    ),
    Entry(
        "text_bomb.png",
        _bytes(text_bomb_png),
        "corrupt",
        reason="Decompressed data too large",
        why="a zTXt chunk inflating to 2 MB, over Pillow's 1 MB text limit",
    ),
    Entry(
        "sparse_huge.png",
        _sparse,
        "corrupt",
        reason="too large",
        why="1 GiB + 1 byte of holes: refused unread, where reading it would take 1 GiB",
    ),
    Entry(
        "bad_exif.jpg",
        _bytes(lambda: encode(noise(29), "JPEG", exif=b"Exif\x00\x00" + garbage(100))),
        "processed",
        why="a garbage EXIF block is ignored (Pillow warns), the pixels are fine",
    ),
    Entry("empty.png", _bytes(b""), "corrupt", reason="empty file"),
    Entry("text.jpg", _bytes(b"just some text\n" * 20), "corrupt", reason="not an image"),
    Entry(
        "truncated.jpg",
        _bytes(lambda: encode(noise(28, (256, 256)), "JPEG")[:1500]),
        "corrupt",
        reason="truncated",
    ),
    # Names: every one round-trips through the file lists, the CSV and the thumbnails.
    Entry("with space.png", _png(40), "processed"),
    Entry(NFC, _png(41), "processed", why="NFC and NFD are two files on Linux: both kept"),
    Entry(NFD, _png(42), "processed", why="NFC and NFD are two files on Linux: both kept"),
    Entry("-rf.png", _png(43), "processed", why="a leading dash is not an option"),
    Entry("--help.jpg", _jpeg(44), "processed"),
    Entry("#hash.png", _png(45), "processed", why="# is not a comment or a URL fragment"),
    Entry("a#b.png", _png(46), "processed"),
    Entry("x[1].png", _png(47), "processed", why="[1] is not a glob"),
    Entry("x1.png", _png(48), "processed", why="what the glob x[1].png would match"),
    Entry("star*.png", _png(49), "processed"),
    Entry("question?.png", _png(50), "processed"),
    Entry("comma,name.png", _png(51), "processed", why="the CSV quotes it"),
    Entry('quote".png', _png(52), "processed"),
    Entry("percent%20.png", _png(53), "processed", why="not URL-decoded"),
    Entry("tab\tname.png", _png(54), "processed", why="a tab is not a line break"),
    Entry("emoji_\U0001f600.png", _png(55), "processed"),
    Entry("deep/a/b/c/d.png", _png(56), "processed"),
    Entry(".hidden.png", _png(57), "processed", why="a dot file is still a file"),
    Entry("back\\slash.png", _png(64), "processed", why="a backslash is no separator here"),
    Entry("file:x.png", _png(65), "processed", why="not a URL scheme inside INPUT"),
    Entry("s3:colon.png", _png(66), "processed"),
    Entry("esc\x1b[31mred.png", _png(58), "processed", why="kept as written; escaped in logs"),
    Entry(
        LONG_NAME,
        _png(59),
        "processed",
        thumbnail=False,
        why="252 bytes: fine on disk, but <name>_thumb.png would be 258 (> 255)",
    ),
    Entry("esc\x1b[2J.png", _bytes(b"not an image"), "corrupt", reason="not an image"),
    Entry(
        "line\nbreak.png",
        _png(60),
        "not_listed",
        reason="line break",
        why="filenames/*.txt hold one name per line",
    ),
    Entry("carriage\rreturn.png", _png(61), "not_listed", reason="line break"),
    Entry("sep\u2028.png", _png(62), "not_listed", reason="line break", why="U+2028 too"),
    Entry("bad\udcff.png", _png(63), "not_listed", reason="UTF-8", why="byte 0xff in the name"),
    # Duplicates.
    Entry("zz_copy.png", _png(3), "duplicate", duplicate_of="normal_03.png"),
    Entry(
        "zz_link_inside.png",
        _symlink("normal_04.png"),
        "duplicate",
        duplicate_of="normal_04.png",
        why="a link inside INPUT is read like its target: the same bytes",
    ),
    # Things that are not plain files.
    Entry("album.jpg", _folder, "not_a_file", why="a folder: album.jpg/inner.png is listed"),
    Entry("album.jpg/inner.png", lambda p, o: None, "processed", why="made with album.jpg"),
    Entry("fifo.png", _fifo, "corrupt", reason="FIFO", why="reading it would block forever"),
    Entry("loop.png", _symlink("loop.png"), "corrupt", reason="symbolic link loop"),
    Entry("broken_link.png", _symlink("nowhere.png"), "corrupt", reason="broken link"),
    Entry(
        "outside_link.png",
        _outside_file,
        "corrupt",
        reason="outside INPUT",
        why="INPUT is the boundary: a file beside it is not the user's data set",
    ),
    Entry(
        "folder_link.jpg",
        _symlink("album.jpg"),
        "corrupt",
        reason="symbolic link to a folder",
        why="listed as a file by the (non-following) walk; never read",
    ),
    Entry("dir_loop.jpg", _symlink("."), "corrupt", reason="symbolic link to a folder"),
    Entry(
        "no_permission.png",
        _unreadable,
        "processed" if AS_ROOT else "corrupt",
        reason="" if AS_ROOT else "Permission denied",
        why="as root, permissions do not stop a read: then it is simply processed",
    ),
]


def build_corpus(root: Path, outside: Path) -> list[Entry]:
    """Write every entry of :data:`ENTRIES` below ``root``; ``outside`` is a folder beside it.

    Returns:
        The entries, in creation order.
    """
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    for entry in ENTRIES:
        entry.make(root / entry.name, outside)
    return ENTRIES


def fates(entries: list[Entry], fate: Fate) -> list[Entry]:
    """The entries with ``fate``."""
    return [e for e in entries if e.fate == fate]
