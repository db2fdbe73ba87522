"""Temporary folders: a killed owner's are swept, a living owner's and anyone else's are not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from thresher.tempdirs import LOCK_SUFFIX, TempDir, sweep

OWNER = """
import sys, tempfile
tempfile.tempdir = sys.argv[1]
from thresher.tempdirs import TempDir
t = TempDir("run")
print(t.name, flush=True)
sys.stdin.read()
"""


def _owner(root: Path) -> tuple[subprocess.Popen[str], Path]:
    """A process that makes a folder and holds it until its stdin ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    folder = Path(proc.stdout.readline().strip())
    assert folder.is_dir() and folder.parent == root
    return proc, folder


def test_a_killed_owners_folder_is_swept_and_a_living_owners_is_kept(tmp_path: Path) -> None:
    killed, gone = _owner(tmp_path)
    living, kept = _owner(tmp_path)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert gone.is_dir()  # nothing of the killed process removed it
        assert sweep(str(tmp_path)) == 1
        assert not gone.exists()
        assert not Path(f"{gone}{LOCK_SUFFIX}").exists()
        assert kept.is_dir() and Path(f"{kept}{LOCK_SUFFIX}").exists()
    finally:
        living.communicate("")
        killed.wait()


def test_folders_that_are_not_ours_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "thresher-run-old").mkdir()  # an older version's: no lock file
    (tmp_path / "thresher-bench-x").mkdir()  # a benchmark's kept data
    (tmp_path / "other-run-x").mkdir()
    (tmp_path / f"other-run-x{LOCK_SUFFIX}").touch()
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "thresher-link").mkdir()
    os.symlink(tmp_path / "other-run-x.lock", tmp_path / f"thresher-link{LOCK_SUFFIX}")
    assert sweep(str(tmp_path)) == 0  # a link is never followed
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other-run-x",
        "other-run-x.lock",
        "target",
        "thresher-bench-x",
        "thresher-link",
        "thresher-link.lock",
        "thresher-run-old",
    ]


def test_cleanup_removes_the_folder_and_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with TempDir("report") as name:
        assert Path(name).name.startswith("thresher-report-")
        assert sweep(str(tmp_path)) == 0  # held by this process
        assert list(Path(name).iterdir()) == []  # the lock lies beside it
        (Path(name) / "page.png").write_bytes(b"x")
    assert list(tmp_path.iterdir()) == []
