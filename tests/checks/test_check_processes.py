"""A local INPUT is checked by forked worker processes, with the threads' results, and its
workers never outlive the process that started them."""

from __future__ import annotations

import faulthandler
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest
from PIL import Image

from thresher.checks import corruption
from thresher.checks.corruption import MIN_FILES_FOR_PROCESSES, check_files, use_processes
from thresher.cores import cpu_count
from thresher.storage.location import Location

pytestmark = pytest.mark.skipif(
    cpu_count() < 2 or sys.platform != "linux", reason="one core, or no fork: threads only"
)


@pytest.fixture
def folder(example_dataset, tmp_path):
    """The planted example (corrupt files and duplicates), padded to enough files for processes."""
    root = tmp_path / "input"
    shutil.copytree(example_dataset.root, root)
    rng = np.random.default_rng(0)
    for i in range(MIN_FILES_FOR_PROCESSES):
        a = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(a).save(root / f"pad-{i:03d}.jpg", quality=80)
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return root, names


def test_a_local_input_is_decoded_by_worker_processes_with_the_threads_results(
    folder, example_dataset, tmp_path, monkeypatch
):
    root, names = folder
    loc = Location(str(root))
    assert use_processes(loc, len(names), True)
    pids = tmp_path / "pids.txt"
    real = corruption.verify_image

    def noting(data, name):  # the workers are forked: they run this too
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return real(data, name)

    monkeypatch.setattr(corruption, "verify_image", noting)
    steps: list[int] = []
    got = check_files(loc, names, progress=steps.append)
    seen = {int(p) for p in pids.read_text().split()}
    # this process decoded nothing (one worker may take every task on a loaded machine)
    assert seen and os.getpid() not in seen
    assert sum(steps) == len(names)
    pids.unlink()
    by_threads = check_files(loc, names, num_threads=2)
    assert {int(p) for p in pids.read_text().split()} == {os.getpid()}
    assert got == by_threads  # same order, hashes, reasons and quality scores
    assert {r.name for r in got if r.corrupt_reason} >= set(example_dataset.corrupt)


def test_a_file_that_kills_its_worker_is_corrupt_and_the_rest_are_checked(folder, monkeypatch):
    root, names = folder
    loc = Location(str(root))
    by_threads = {r.name: r for r in check_files(loc, names, num_threads=2)}
    crasher = names[len(names) // 2]
    real = corruption.verify_image

    def crashing(data, name):  # the workers are forked: they run this too
        if name == crasher:
            faulthandler.disable()  # pytest's crash dump of this worker would only be noise
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(data, name)

    monkeypatch.setattr(corruption, "verify_image", crashing)
    got = check_files(loc, names)
    assert [r.name for r in got] == names
    assert {r.name: r.corrupt_reason for r in got}[crasher] == corruption.CRASHED
    assert [r for r in got if r.name != crasher] == [by_threads[n] for n in names if n != crasher]


def test_threads_check_what_processes_cannot_or_need_not():
    local = Location("/tmp")
    assert not use_processes(local, MIN_FILES_FOR_PROCESSES - 1, True)  # too few to pay off
    assert not use_processes(local, 10_000, False)  # hashing only: nothing to decode
    assert not use_processes(Location("memory://somewhere"), 10_000, True)  # not local


_KILLED_PARENT = """
import sys, time
from thresher.checks import corruption
from thresher.storage.location import Location

real = corruption.verify_image

def slow(data, name):  # a task of 64 files takes 13 s
    time.sleep(0.2)
    return real(data, name)

corruption.verify_image = slow
corruption.check_files(Location(sys.argv[1]), sys.argv[2].split(","))
"""


def test_its_workers_die_with_a_killed_parent(folder):
    root, names = folder
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILLED_PARENT), str(root), ",".join(names)]
    )
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        while len(parent.children()) < 2:  # the workers are decoding
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        workers = parent.children()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # Without PR_SET_PDEATHSIG each worker would finish its task first (seconds here, and
    # a minute on large files), then die on the broken pipe with a traceback.
    _, alive = psutil.wait_procs(workers, timeout=3)
    for p in alive:
        p.kill()
    assert not alive, "worker processes outlived their killed parent"
