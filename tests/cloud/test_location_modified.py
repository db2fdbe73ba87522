"""``Location.list_files`` gives each object's last-modified time on every backend.

Local disk and memory here; S3 (moto), GCS (gcp-storage-emulator) and Azure Blob (Azurite)
through the emulator fixtures of ``test_cloud.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.cloud.test_cloud import Bucket, azure, bucket, gcs, s3  # noqa: F401 (fixtures)
from thresher.storage.location import Location


def _check_recent(loc: Location, before: float) -> None:
    files = {f.name: f for f in loc.list_files()}
    assert set(files) == {"a.png", "sub/b.png"}
    for f in files.values():
        assert f.modified is not None, f"{f.name}: no last-modified time"
        # Object stores keep whole seconds (and their clock is this machine's).
        assert before - 2 <= f.modified <= time.time() + 2, (f.name, f.modified, before)


def test_modified_on_object_stores(bucket: Bucket) -> None:  # noqa: F811
    rw = Location(f"{bucket.url}/mtime-{bucket.url.split(':')[0]}", writable=True)
    before = time.time()
    rw.write_bytes("a.png", b"x")
    rw.write_bytes("sub/b.png", b"y")
    _check_recent(Location(rw.url), before)


def test_modified_on_local_disk(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "sub" / "b.png").write_bytes(b"y")
    os.utime(tmp_path / "a.png", (1_600_000_000, 1_600_000_000))
    files = {f.name: f for f in Location(str(tmp_path)).list_files()}
    assert files["a.png"].modified == 1_600_000_000
    assert files["sub/b.png"].modified is not None
    assert abs(files["sub/b.png"].modified - time.time()) < 60


def test_modified_in_memory() -> None:
    rw = Location("memory://mtime-test", writable=True)
    before = time.time()
    rw.write_bytes("a.png", b"x")
    rw.write_bytes("sub/b.png", b"y")
    _check_recent(Location(rw.url), before)
