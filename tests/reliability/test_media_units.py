"""Bad media, one at a time, where the corpus run cannot be precise enough.

Decoding (what the embedding sees), files that change or vanish between listing and reading,
files that must never be opened, and names no output can hold.
"""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.reliability.media_corpus import (
    ARITHMETIC_JPEG,
    AS_ROOT,
    animated,
    cmyk_jpeg,
    encode,
    gradient16,
    noise,
    upright_photo,
    ycck_jpeg,
)
from thresher.checks.corruption import FileCheck, check_files
from thresher.errors import CorruptMediaError
from thresher.models.inference import decode_image
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.list_input import list_input, name_problem, printable_name
from thresher.storage.location import Location
from thresher.storage.thumbnails import make_thumbnail

# -- what the embedding sees ----------------------------------------------------------------


def _rgb(data: bytes, name: str = "x.png") -> np.ndarray:
    return np.asarray(decode_image(data, name), dtype=np.int16)


def test_cmyk_and_ycck_jpegs_decode_to_their_colours() -> None:
    # two_colours(): left (200, 30, 30), right (30, 160, 60); JPEG at quality 95 moves a few levels.
    for data in (cmyk_jpeg(), ycck_jpeg()):
        img = _rgb(data, "c.jpg")
        assert np.abs(img[8, 3] - (200, 30, 30)).max() <= 6
        assert np.abs(img[8, 12] - (30, 160, 60)).max() <= 6


def test_arithmetic_coded_jpeg_decodes_to_its_colours() -> None:
    # Left half (200, 30, 30), right half (30, 30, 200) before arithmetic recoding.
    img = _rgb(ARITHMETIC_JPEG, "a.jpg")
    assert np.abs(img[8, 3] - (200, 30, 30)).max() <= 6
    assert np.abs(img[8, 12] - (30, 30, 200)).max() <= 6


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animations_use_their_first_frame(fmt: str) -> None:
    # Frame 0 is pure red, frame 1 pure green.
    data = animated(fmt)
    assert np.abs(_rgb(data, "a.img")[8, 8] - (255, 0, 0)).max() <= 8
    thumb = np.asarray(
        Image.open(io.BytesIO(make_thumbnail(data, f"a.{fmt.lower()}"))).convert("RGB")
    )
    assert np.abs(thumb[8, 8].astype(int) - (255, 0, 0)).max() <= 8


def test_exif_rotated_photo_decodes_upright() -> None:
    upright = upright_photo()
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view": undoes ROTATE_90 (counter-clockwise)
    data = encode(stored, "PNG", exif=exif)  # PNG: lossless, so pixels compare exactly
    assert np.array_equal(_rgb(data), np.asarray(upright, dtype=np.int16))


def test_exif_rotated_photo_embeds_like_the_upright_one(tmp_path: Path) -> None:
    from thresher.models import zoo
    from thresher.models.inference import embed_files

    upright = upright_photo()
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "upright.png").write_bytes(encode(upright, "PNG"))
    rotated = upright.transpose(Image.Transpose.ROTATE_90)
    (tmp_path / "rotated.png").write_bytes(encode(rotated, "PNG", exif=exif))
    (tmp_path / "sideways.png").write_bytes(encode(rotated, "PNG"))  # no EXIF: truly sideways
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model, spec = zoo.create("resnet-18"), zoo.spec("resnet-18")
    emb = embed_files(
        model,
        spec,
        str(tmp_path),
        ["upright.png", "rotated.png", "sideways.png"],
        num_workers=0,
        device="cpu",
        backend="torch",
        input_size=64,
    )
    assert not np.allclose(emb[0], emb[2], atol=1e-4)  # the check can tell a rotation apart
    np.testing.assert_allclose(emb[1], emb[0], atol=1e-5)


def test_16_bit_images_decode_to_their_8_bit_values() -> None:
    # gradient16(): column x holds x * 256, i.e. 8-bit value x. Today convert("RGB") clips
    # every value above 255 to white.
    for fmt in ("PNG", "TIFF"):
        grey = _rgb(encode(gradient16(), fmt))[4, :, 0]
        assert np.abs(grey - np.arange(256)).max() <= 1, fmt


# -- files that change between listing and reading ------------------------------------------


def _listing(tmp_path: Path, n: int = 4) -> tuple[Path, Path]:
    inp, lightly = tmp_path / "input", tmp_path / "lightly"
    inp.mkdir()
    for i in range(n):
        (inp / f"img_{i}.png").write_bytes(encode(noise(100 + i), "PNG"))
    return inp, lightly


def test_files_that_vanish_or_change_after_listing_are_accounted_for(tmp_path: Path) -> None:
    inp, lightly = _listing(tmp_path)
    listing = list_input(str(inp), str(lightly))
    assert listing.n_input == 4
    (inp / "img_0.png").unlink()  # vanished
    (inp / "img_1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # now broken
    (inp / "img_2.png").write_bytes(encode(noise(103), "PNG"))  # now a copy of img_3
    checked = corruption_check(listing, num_threads=2)
    corrupt = checked.corrupt()
    assert "vanished" in corrupt["img_0.png"]
    assert "img_1.png" in corrupt
    deduplicated = deduplicate(checked)
    assert deduplicated.duplicates() == {"img_3.png": "img_2.png"}
    assert deduplicated.kept() == ["img_2.png"]
    # Every listed file ends somewhere: 2 corrupt + 1 duplicate + 1 kept = 4 listed.
    assert checked.n_corrupt + deduplicated.n_duplicate + deduplicated.n_kept == listing.n_input
    # The next run sees the change (new sizes and times): nothing stale is served.
    relisted = list_input(str(inp), str(lightly))
    assert relisted.key != listing.key and relisted.n_input == 3


# -- files that must never be opened --------------------------------------------------------


def _check_within(
    loc: Location, names: list[str], seconds: float, check_corruption: bool
) -> list[FileCheck]:
    """check_files, failing the test instead of hanging when a read blocks."""
    out: list[list[FileCheck]] = []
    worker = threading.Thread(
        target=lambda: out.append(check_files(loc, names, check_corruption=check_corruption))
    )
    worker.daemon = True  # a blocked open() on a FIFO cannot be interrupted
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        with open(loc.path(names[0]), "wb"):  # unblock the reader: open the FIFO's other end
            pass
        pytest.fail(f"reading {names} blocked for {seconds} s")
    return out[0]


@pytest.mark.parametrize("check_corruption", [True, False])
def test_a_fifo_is_refused_without_being_opened(tmp_path: Path, check_corruption: bool) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    res = _check_within(
        Location(str(tmp_path)), ["pipe.png"], 10, check_corruption=check_corruption
    )
    assert res[0].corrupt_reason is not None and "FIFO" in res[0].corrupt_reason


def test_symbolic_links_are_followed_only_to_files_inside_input(tmp_path: Path) -> None:
    inp, outside = tmp_path / "input", tmp_path / "outside"
    inp.mkdir()
    outside.mkdir()
    png = encode(noise(1), "PNG")
    (inp / "a.png").write_bytes(png)
    (outside / "b.png").write_bytes(png)
    os.symlink("a.png", inp / "in.png")
    os.symlink(outside / "b.png", inp / "out.png")
    os.symlink("../outside/b.png", inp / "out_relative.png")
    os.symlink("in.png", inp / "chain.png")  # a link to a link inside: fine
    res = {
        r.name: r.corrupt_reason for r in check_files(Location(str(inp)), sorted(os.listdir(inp)))
    }
    assert res["a.png"] is None and res["in.png"] is None and res["chain.png"] is None
    assert "outside INPUT" in (res["out.png"] or "")
    assert "outside INPUT" in (res["out_relative.png"] or "")


@pytest.mark.skipif(AS_ROOT, reason="running as root: a file without read permission is readable")
def test_a_file_without_read_permission_is_corrupt_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "locked.png").write_bytes(encode(noise(2), "PNG"))
    (tmp_path / "locked.png").chmod(0)
    res = check_files(Location(str(tmp_path)), ["locked.png"])
    assert "Permission denied" in (res[0].corrupt_reason or "")


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a\nb.png", "line break"),
        ("a\rb.png", "line break"),
        ("a\u2028b.png", "line break"),
        ("a\x85b.png", "line break"),
        ("a\udcffb.png", "UTF-8"),
        ("a\tb.png", None),
        ("-rf #1 [x] *.png", None),
        ("cafe\u0301.png", None),
    ],
)
def test_name_problem(name: str, problem: str | None) -> None:
    found = name_problem(name)
    assert found is None if problem is None else problem in (found or "")
    shown = printable_name(name)
    assert shown.splitlines() == [shown]
    json.dumps(shown, ensure_ascii=False).encode("utf-8")  # any output can hold it


def test_a_folder_of_only_refused_names_says_why(tmp_path: Path) -> None:
    from thresher.errors import InputError

    inp = tmp_path / "input"
    inp.mkdir()
    (inp / "a\nb.png").write_bytes(encode(noise(3), "PNG"))
    with pytest.raises(InputError, match="line break"):
        list_input(str(inp), str(tmp_path / "lightly"))


def test_a_file_that_vanishes_after_the_check_does_not_end_the_run(tmp_path: Path) -> None:
    from thresher.config import LightlyConfig, WorkerConfig
    from thresher.stages.embed import embed
    from thresher.stages.write_results import corrupt_files, sizes

    inp, lightly = _listing(tmp_path)
    listing = list_input(str(inp), str(lightly))
    checked = corruption_check(listing, num_threads=2)
    deduplicated = deduplicate(checked)
    (inp / "img_1.png").unlink()  # after the check, before the embedding reads it
    embedded = embed(listing, deduplicated, WorkerConfig(), LightlyConfig())
    assert embedded.filenames() == ["img_0.png", "img_2.png", "img_3.png"]
    assert embedded.embeddings().shape[0] == 3
    # counted as corrupt, with why; the accounting still adds up (sizes() refuses otherwise)
    why = corrupt_files(checked, embedded)["img_1.png"]
    assert why.startswith("could not be read when embedding:"), why
    s = sizes(listing, checked, deduplicated, embedded, None)
    assert (s.n_input, s.n_corrupt, s.n_removed) == (4, 1, 3)
    # the stored result says the same when it is served from the cache
    again = embed(listing, deduplicated, WorkerConfig(), LightlyConfig())
    assert again.cached == "cached"
    assert again.broken() == embedded.broken()


def test_a_name_too_long_for_its_thumbnail_costs_only_that_thumbnail(tmp_path: Path) -> None:
    from tests.reliability.media_corpus import LONG_NAME
    from thresher.storage.thumbnails import write_thumbnails

    inp = tmp_path / "input"
    inp.mkdir()
    (inp / LONG_NAME).write_bytes(encode(noise(5), "PNG"))  # 252 bytes; its thumbnail's: 258
    (inp / "short.png").write_bytes(encode(noise(6), "PNG"))
    done = write_thumbnails(
        Location(str(inp)),
        Location(str(tmp_path / "lightly"), writable=True),
        [LONG_NAME, "short.png"],
    )
    assert done.written == 1
    assert done.failed == [(LONG_NAME, "the file name is too long for a thumbnail name beside it")]


def test_animations_are_checked_up_to_the_pixel_limit_only() -> None:
    from thresher.checks.corruption import MAX_PIXELS, verify_image

    # 30 frames of 2000x2000 = 120 M pixels; the limit (89.48 M) covers the first 22 frames.
    frames = [Image.new("P", (2000, 2000), i % 3) for i in range(30)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)
    assert 22 * 2000 * 2000 <= MAX_PIXELS < 23 * 2000 * 2000
    verify_image(data[:-200], "late.gif")  # broken in the last frame, which is never used
    with pytest.raises(CorruptMediaError, match="truncated"):
        verify_image(data[: len(data) // 2], "early.gif")  # broken in frame ~15: caught


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    from tests.reliability.media_corpus import SPARSE_BYTES

    with (tmp_path / "huge.png").open("wb") as fh:  # a sparse file: no disk, 1 GiB to read
        fh.write(encode(noise(7), "PNG"))
        fh.truncate(SPARSE_BYTES)
    loc = Location(str(tmp_path))
    for sizes in ([SPARSE_BYTES], None):  # as listed, or found by the local stat
        res = check_files(loc, ["huge.png"], sizes=sizes)
        assert "too large" in (res[0].corrupt_reason or ""), sizes


def test_thumbnails_of_glob_like_names_on_an_object_store_like_location() -> None:
    import fsspec

    from thresher.storage.thumbnails import thumbnail_rel, write_thumbnails

    fs = fsspec.filesystem("memory")
    fs.pipe("/bad-media-glob/in/x[1].png", encode(noise(8), "PNG"))
    lightly = Location("memory://bad-media-glob/out", writable=True)
    try:
        done = write_thumbnails(Location("memory://bad-media-glob/in"), lightly, ["x[1].png"])
        assert done.written == 1 and lightly.exists(thumbnail_rel("x[1].png"))
    finally:
        fs.rm("/bad-media-glob", recursive=True)
