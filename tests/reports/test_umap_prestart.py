"""The UMAP worker started ahead (``umap_2d.prestart``): the same maps, and no process left.

``thresher run`` starts it at its start-up, a platform worker's run when the embeddings exist
(``thresher.flows.curate``); the report takes it.
Whatever ends the run first (a failed stage, Ctrl-C, the process killed), the worker must not
outlive it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from thresher.cores import cpu_count
from thresher.reports import umap_2d
from thresher.tempdirs import sweep

pytestmark = pytest.mark.skipif(
    not umap_2d.available() or cpu_count() < 2,
    reason="umap-learn not installed, or one core: no worker process",
)


def _workers() -> list[psutil.Process]:
    """This process's UMAP worker children."""
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if "thresher.reports.umap_2d" in " ".join(p.cmdline())
    ]


def _gone(proc: psutil.Process, timeout: float = 30.0) -> bool:
    """Whether ``proc`` ends within ``timeout`` s.

    A zombie has ended: an orphan's is reaped by whichever process adopted it, in its time.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_prestarted_worker_fits_the_same_maps() -> None:
    x = np.random.default_rng(0).normal(size=(120, 16)).astype(np.float32)
    sel = np.arange(0, 120, 7)
    alone = umap_2d.start_umap(x, sel, seed=3, neighbors=(5, 15)).result()
    assert umap_2d.prestart()
    (worker,) = _workers()
    ahead = umap_2d.start_umap(x, sel, seed=3, neighbors=(5, 15))
    assert not _workers() or _workers()[0].pid == worker.pid  # taken, not a second one
    res = ahead.result()
    assert _gone(worker)
    assert res["skipped"] == [] and sorted(res["maps"]) == ["15", "5"]
    for k in ("5", "15"):
        assert np.array_equal(res["maps"][k], alone["maps"][k])
    assert np.array_equal(res["rows"], alone["rows"])
    assert umap_2d.take_prestarted() is None  # it was used up


def test_discard_stops_an_unused_worker_and_its_folder() -> None:
    assert umap_2d.prestart()
    assert umap_2d.prestart()  # one at a time
    (worker,) = _workers()
    folder = worker.cmdline()[-1]
    assert os.path.isdir(folder)
    umap_2d.discard_prestarted()
    assert _gone(worker, 5)
    assert not os.path.exists(folder)
    umap_2d.discard_prestarted()  # idempotent


def test_a_dead_prestarted_worker_is_replaced() -> None:
    assert umap_2d.prestart()
    (worker,) = _workers()
    worker.kill()
    assert _gone(worker, 5)
    x = np.random.default_rng(1).normal(size=(60, 8)).astype(np.float32)
    res = umap_2d.start_umap(x, np.arange(6), neighbors=(5,)).result()
    assert sorted(res["maps"]) == ["5"]
    assert not _workers()


_PARENT = textwrap.dedent(
    """
    import sys, time
    from thresher.reports import umap_2d
    assert umap_2d.prestart()
    print(umap_2d._prestarted.proc.pid, umap_2d._prestarted.tmp.name, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_the_worker_ends_with_its_process(how: str, tmp_path: Path) -> None:
    """Killed (the OOM killer) or Ctrl-C to the process group: the worker ends too.

    Ctrl-C lets the process remove the worker's folder; after a SIGKILL the next run's
    :func:`thresher.tempdirs.sweep` does.
    """
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's command has
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        assert parent.stdout is not None
        pid, folder = parent.stdout.readline().split()
        worker = psutil.Process(int(pid))
        time.sleep(0.5)
        if how == "SIGKILL":
            parent.kill()
        else:
            os.killpg(parent.pid, signal.SIGINT)
        parent.wait(30)
        assert _gone(worker, 60), f"the UMAP worker outlived its process ({how})"
        assert os.path.dirname(folder) == str(tmp_path)
        if how == "SIGKILL":
            assert sweep(str(tmp_path)) == 1
        assert not os.path.exists(folder), f"the UMAP worker's folder was left ({how})"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_the_worker_ends_with_its_process_while_still_importing(tmp_path: Path) -> None:
    """Killed a moment after the start, the worker stops at once, not after its imports.

    Importing umap-learn and numba takes 1.5 s or more; the worker reads its stdin from the
    start, so a run that fails or is killed during start-up leaves no worker importing on.
    """
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        assert parent.stdout is not None
        pid, folder = parent.stdout.readline().split()
        worker = psutil.Process(int(pid))
        time.sleep(0.2)
        parent.kill()
        parent.wait(30)
        assert _gone(worker, 1.2), "the UMAP worker went on importing after its process died"
        assert sweep(str(tmp_path)) == 1  # the next run's
        assert not os.path.exists(folder)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_large_maps_take_fewer_epochs() -> None:
    """The layout's epochs drop from 1,000 fitted rows on: the demo's maps stay as they were."""
    assert umap_2d.n_epochs(999) == umap_2d.N_EPOCHS == 200
    assert umap_2d.n_epochs(umap_2d.LARGE_FIT_ROWS) == 100
    assert umap_2d.n_epochs(umap_2d.MAX_FIT_POINTS) == umap_2d.LARGE_N_EPOCHS == 100
