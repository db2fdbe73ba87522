import io

import pytest
from PIL import Image

from thresher.checks.corruption import check_files, find_exact_duplicates, verify_image
from thresher.errors import CorruptMediaError
from thresher.storage.location import Location


def _png(color=(255, 0, 0), size=(16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_every_planted_corruption_is_caught(example_dataset):
    inp = Location(str(example_dataset.root))
    names = example_dataset.all_files
    results = check_files(inp, names, check_corruption=True, num_threads=2)
    corrupt = {r.name: r.corrupt_reason for r in results if r.corrupt_reason}
    assert set(corrupt) == set(example_dataset.corrupt)
    for name, expected in example_dataset.corrupt.items():
        assert expected.split()[0] in corrupt[name].lower()


def test_exact_duplicates_keep_first_by_name(example_dataset):
    inp = Location(str(example_dataset.root))
    results = check_files(inp, example_dataset.all_files, check_corruption=False)
    dups = find_exact_duplicates(results)
    # every planted copy lives in dups/, which sorts after cluster_*: the original stays.
    assert dups == example_dataset.duplicates


def test_corrupt_files_never_count_as_duplicates():
    from thresher.checks.corruption import FileCheck

    res = [FileCheck("a.png", 0, "h", "empty file"), FileCheck("b.png", 0, "h", "empty file")]
    assert find_exact_duplicates(res) == {}


def test_valid_animated_gif_passes_and_truncated_jpeg_fails():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    verify_image(buf.getvalue(), "anim.gif")
    jbuf = io.BytesIO()
    Image.effect_noise((256, 256), 50).convert("RGB").save(jbuf, format="JPEG")
    with pytest.raises(CorruptMediaError, match="trunc"):
        verify_image(jbuf.getvalue()[:1500], "cut.jpg")


def test_unreadable_file_is_corrupt_not_a_crash(tmp_path):
    (tmp_path / "ok.png").write_bytes(_png())
    res = check_files(Location(str(tmp_path)), ["ok.png", "gone.png"])
    assert res[0].corrupt_reason is None
    assert res[1].corrupt_reason.startswith("unreadable")
