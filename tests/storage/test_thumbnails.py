"""Thumbnails: Lightly's path, size, EXIF orientation, formats, and INPUT is only read."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thresher.errors import CorruptMediaError
from thresher.storage.location import Location
from thresher.storage.thumbnails import (
    MAX_SIDE,
    make_thumbnail,
    media_type,
    thumbnail_rel,
    write_thumbnails,
)


def _image(size: tuple[int, int], fmt: str, mode: str = "RGB", exif_orientation: int = 0) -> bytes:
    img = Image.new(mode, size, "red" if mode in ("RGB", "RGBA") else 128)
    out = io.BytesIO()
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(out, format=fmt, exif=exif)
    else:
        img.save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "rel"),
    [
        ("a.jpg", ".lightly/thumbnails/a_thumb.jpg"),
        ("cars/b.PNG", ".lightly/thumbnails/cars/b_thumb.PNG"),  # b.png is another file
        ("x/y/z.webp", ".lightly/thumbnails/x/y/z_thumb.webp"),
        ("scan.tif", ".lightly/thumbnails/scan_thumb.tif.png"),  # browsers cannot show TIFF
        ("scan.TIFF", ".lightly/thumbnails/scan_thumb.TIFF.png"),
        ("dots.in.name.jpeg", ".lightly/thumbnails/dots.in.name_thumb.jpeg"),
    ],
)
def test_thumbnail_path_is_lightlys_suffix(name: str, rel: str) -> None:
    assert thumbnail_rel(name) == rel


def test_longest_side_is_max_side_and_small_images_keep_their_size() -> None:
    # 1000x500 -> 256x128: the longest side becomes MAX_SIDE, the aspect ratio stays 2:1
    with Image.open(io.BytesIO(make_thumbnail(_image((1000, 500), "JPEG"), "a.jpg"))) as t:
        assert (t.format, t.size) == ("JPEG", (MAX_SIDE, MAX_SIDE // 2))
    with Image.open(io.BytesIO(make_thumbnail(_image((40, 30), "PNG"), "a.png"))) as t:
        assert (t.format, t.size) == ("PNG", (40, 30))


def test_exif_orientation_is_applied() -> None:
    # orientation 6 = "rotate 90° clockwise to view": a 400x200 landscape is shown as portrait
    data = _image((400, 200), "JPEG", exif_orientation=6)
    with Image.open(io.BytesIO(make_thumbnail(data, "a.jpg"))) as t:
        assert t.size == (128, 256)


def test_tiff_and_16_bit_images_become_viewable_png() -> None:
    arr = (np.arange(64 * 32, dtype=np.uint16).reshape(32, 64) * 30).astype(np.uint16)
    out = io.BytesIO()
    Image.fromarray(arr).save(out, format="TIFF")
    with Image.open(io.BytesIO(make_thumbnail(out.getvalue(), "scan.tif"))) as t:
        assert t.format == "PNG" and t.mode == "L" and t.size == (64, 32)
        # The high byte of each 16-bit sample (0..61410 -> 0..239), as the embedding sees it,
        # not clipped to white.
        assert t.getextrema() == (0, 61410 >> 8)
    rgba = make_thumbnail(_image((30, 30), "PNG", mode="RGBA"), "alpha.png")
    with Image.open(io.BytesIO(rgba)) as t:
        assert t.mode == "RGBA"
    rgba_to_jpg = make_thumbnail(_image((30, 30), "PNG", mode="RGBA"), "alpha.jpg")
    with Image.open(io.BytesIO(rgba_to_jpg)) as t:
        assert (t.format, t.mode) == ("JPEG", "RGB")


def test_undecodable_bytes_raise_corrupt_media_error_naming_the_file() -> None:
    with pytest.raises(CorruptMediaError, match=r"broken\.jpg"):
        make_thumbnail(b"not an image", "broken.jpg")


def test_media_types() -> None:
    assert media_type(".lightly/thumbnails/a_thumb.jpg") == "image/jpeg"
    assert media_type(".lightly/thumbnails/a_thumb.png") == "image/png"


def test_write_thumbnails_writes_into_lightly_and_never_into_input(tmp_path: Path) -> None:
    inp_dir = tmp_path / "input"
    (inp_dir / "sub").mkdir(parents=True)
    (inp_dir / "a.jpg").write_bytes(_image((600, 300), "JPEG"))
    (inp_dir / "sub" / "b.png").write_bytes(_image((50, 80), "PNG"))
    (inp_dir / "bad.jpg").write_bytes(b"garbage")
    os.chmod(inp_dir, 0o555)  # a write into INPUT would fail loudly (unless root)
    before = sorted(p.relative_to(inp_dir) for p in inp_dir.rglob("*"))
    lightly = Location(str(tmp_path / "lightly"), writable=True)

    done = write_thumbnails(
        Location(str(inp_dir)), lightly, ["a.jpg", "sub/b.png", "bad.jpg", "gone.jpg"]
    )

    assert done.written == 2
    assert [n for n, _ in done.failed] == ["bad.jpg", "gone.jpg"]
    assert "missing" in dict(done.failed)["gone.jpg"]
    with Image.open(io.BytesIO(lightly.read_bytes(".lightly/thumbnails/a_thumb.jpg"))) as t:
        assert t.size == (256, 128)
    with Image.open(io.BytesIO(lightly.read_bytes(".lightly/thumbnails/sub/b_thumb.png"))) as t:
        assert t.size == (50, 80)
    assert sorted(p.relative_to(inp_dir) for p in inp_dir.rglob("*")) == before
    leftovers = [p.name for p in (tmp_path / "lightly").rglob("*") if "tmp" in p.name.lower()]
    assert leftovers == []  # atomic writes leave no temporary files
    os.chmod(inp_dir, 0o755)


def test_two_files_never_share_a_thumbnail() -> None:
    # a.png stays PNG and a.tif becomes PNG; a.jpg and a.JPG are two files on most filesystems.
    names = ["a.png", "a.tif", "a.jpg", "a.JPG", "a.tif.png", "a", "a_thumb.tif", "a_thumb"]
    assert len({thumbnail_rel(n) for n in names}) == len(names)
