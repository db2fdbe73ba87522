"""Ctrl-C during ``thresher run``: one line, exit code 130 within seconds, nothing half-written.

Interrupts the real command while its embed progress bar moves, both the way ``kill -INT``
does (the thresher process only) and the way a terminal does (the whole process group, so
Prefect's embedded API server and the decode workers get it too: that used to cost a 70 s hang,
Prefect's connection tracebacks and exit code 1).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from thresher.cli_interrupt import MESSAGE, remove_temporary_files
from thresher.examples import make_example_dataset

# A bar that has counted at least one batch: "embed   :  16%|█▌  | 32/208 [...]".
_EMBED_MOVING = re.compile(r"embed\s*:\s*\d+%\|[^|]*\| [1-9]\d*/\d+")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("interrupt") / "images"
    make_example_dataset(root, n_clusters=5, per_cluster=40)  # 200 images + 8 planted defects
    return root


def _temporary_files(folder: Path) -> list[str]:
    # thresher.storage.location writes ".tmp-<hex>", then moves it into place.
    return [str(p) for p in folder.rglob("*") if ".tmp-" in p.name or "write-check" in p.name]


@pytest.mark.parametrize("target", ["process", "process group"])
def test_ctrl_c_while_embedding(images: Path, tmp_path: Path, target: str) -> None:
    lightly = tmp_path / "lightly"
    command = ["thresher", "run", str(images), "--lightly", str(lightly), "--n-samples", "20"]
    proc = subprocess.Popen(
        [sys.executable, "-m", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=dict(os.environ, THRESHER_PROGRESS="1"),
        start_new_session=True,  # its own process group, so killpg below spares pytest
    )
    assert proc.stderr is not None
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(proc.stderr.read1, b"")))
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while not _EMBED_MOVING.search(b"".join(chunks).decode(errors="replace")):
            assert proc.poll() is None, b"".join(chunks).decode(errors="replace")
            assert time.monotonic() < deadline, "the embed bar never moved"
            time.sleep(0.1)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "expected Prefect's server and decode workers as child processes"
        t0 = time.monotonic()
        if target == "process":
            proc.send_signal(signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=30)
        seconds = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=10)
    stderr = b"".join(chunks).decode(errors="replace")

    assert code == 130, stderr
    assert seconds < 10, f"took {seconds:.1f} s to stop"
    assert stderr.strip().splitlines()[-1] == MESSAGE, stderr[-3000:]
    assert "Traceback" not in stderr and "Connection refused" not in stderr, stderr
    assert _temporary_files(lightly) == []
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], f"child processes left running: {alive}"


def test_remove_temporary_files(tmp_path: Path) -> None:
    """Only the names of unfinished atomic writes go, and only young ones."""
    run = tmp_path / ".lightly" / "runs" / "r1"
    run.mkdir(parents=True)
    keep = [run / "report.json", run / ".hidden", run / "x.tmp-abc", run / ".tmp-0123"]
    young = [run / f".tmp-{'0a' * 16}", tmp_path / ".lightly" / ".write-check-89abcdef"]
    old = run / f".tmp-{'b9' * 16}"
    for p in [*keep, *young, old]:
        p.write_text("x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))

    removed = remove_temporary_files(str(tmp_path), since=time.time() - 60)

    assert sorted(removed) == sorted(str(p) for p in young)
    assert all(p.exists() for p in [*keep, old])
    assert remove_temporary_files(str(tmp_path / "missing"), since=0) == []
