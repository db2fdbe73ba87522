import uuid

import pytest

from thresher.errors import StorageError
from thresher.storage.location import IMAGE_EXTENSIONS, Location, redact_url


@pytest.fixture(params=["local", "memory"])
def root_url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "loc")
    return f"memory://thresher-test-{uuid.uuid4().hex[:8]}/loc"


def test_listing_is_recursive_sorted_relative_any_case(root_url):
    rw = Location(root_url, writable=True)
    for name in [
        "b.png",
        "a/Z.JPG",
        "a/y.jpeg",
        "c/d/e.TIFF",
        "notes.txt",
        ".lightly/x.png",
        "w.webp",
    ]:
        rw.write_bytes(name, b"x")
    names = [f.name for f in Location(root_url).list_files(IMAGE_EXTENSIONS)]
    assert names == ["a/Z.JPG", "a/y.jpeg", "b.png", "c/d/e.TIFF", "w.webp"]


def test_input_is_read_only(root_url):
    ro = Location(root_url)
    with pytest.raises(StorageError, match="read-only"):
        ro.write_bytes("x.png", b"1")
    with pytest.raises(StorageError, match="read-only"):
        ro.makedirs("sub")


def test_atomic_write_leaves_no_temporary_files(root_url):
    rw = Location(root_url, writable=True)
    rw.write_text("runs/r1/report.json", "{}")
    rw.write_text("runs/r1/report.json", '{"a": 1}')
    assert rw.read_text("runs/r1/report.json") == '{"a": 1}'
    assert [f.name for f in rw.list_files()] == ["runs/r1/report.json"]


def test_missing_location_is_a_clear_error(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        Location(str(tmp_path / "nope")).list_files()


def test_unknown_backend_gives_install_hint():
    with pytest.raises(StorageError, match="Cannot open"):
        _ = Location("nosuchproto://bucket/x").fs


def test_secrets_are_redacted_from_urls():
    assert redact_url("s3://KEY:SECRET@bucket/x") == "s3://bucket/x"
    assert redact_url("az://c/x?sv=2020&sig=abc") == "az://c/x"
    assert "opts" not in repr(Location("s3://b/x", {"secret": "hunter2"}))
    assert "hunter2" not in repr(Location("s3://b/x", {"secret": "hunter2"}))


@pytest.mark.parametrize("url", ["memory://rm", None])
def test_read_many_skips_missing_files_and_keeps_order(url, tmp_path):
    loc = Location(url or str(tmp_path), writable=True)
    loc.write_bytes("a/1.json", b"1")
    loc.write_bytes("b/3.json", b"3")
    got = list(loc.read_many(["a/1.json", "nope/2.json", "b/3.json"], chunk=2))
    assert got == [(0, b"1"), (2, b"3")]
    assert loc.size("b/3.json") == 1
