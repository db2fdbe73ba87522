"""The embed stage spread over a real Dask cluster (``cluster=...``, ``--cluster``).

A real ``distributed.LocalCluster`` of 2 worker processes (1 thread each) embeds 40 tiny images
in shards of 8; the run must give the same embeddings, in the same order, and the same
selection as a run in one process, and the shards must have run in both workers. An
unreachable or malformed address fails in seconds, naming the address, with nothing written.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from thresher.cluster import check_scheduler
from thresher.errors import ConfigError

DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]
CONFIGS = {
    "worker_config": {"remove_exact_duplicates": True},
    "selection_config": {"n_samples": 6, "strategies": DIVERSITY},
    "lightly_config": {"loader": {"batch_size": 4}},
}
#: Nothing listens on port 9 (discard) on a test machine.
NOWHERE = "tcp://127.0.0.1:9"
#: Runs ``thresher ARGS`` in a fresh interpreter; prints the exit code and whether Prefect loaded.
_PROBE = """
import json, sys
from thresher.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "prefect": "prefect" in sys.modules}))
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("dask") / "input"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        colour = rng.integers(0, 255, 3)
        arr = np.clip(colour + rng.normal(0, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"img_{i:03d}.png")
    return root


def _run(images: Path, lightly: Path, **kwargs):
    from thresher.flows import curate

    result = curate(input=str(images), lightly=str(lightly), **CONFIGS, **kwargs)
    run = lightly / ".lightly" / "runs" / result.run_id
    [emb] = (lightly / ".lightly" / "cache" / "embed").rglob("embeddings.npy")
    return {
        "selected": (run / "filenames" / "selected.txt").read_text().splitlines(),
        "embeddings": np.load(emb),
        "filenames": (emb.parent / "filenames.json").read_text(),
        "log": (run / "log.txt").read_text(),
    }


@pytest.mark.slow
def test_a_cluster_run_equals_a_local_run(prefect_server, images, tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    from thresher.stages import embed

    local = _run(images, tmp_path / "local")
    monkeypatch.setattr(embed, "CLUSTER_SHARD_ROWS", 8)  # 5 shards of 8 (2 batches of 4)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with Client(cluster) as client:
            workers = client.run(os.getpid)  # worker address -> pid
        on_cluster = _run(images, tmp_path / "cluster", cluster=cluster.scheduler_address)

    # Where each shard ran, from the run's log: all 40 rows, in both worker processes.
    ran = re.findall(
        r"embed shard rows (\d+)-(\d+): \d+ images on \S+ \(pid (\d+)\)", on_cluster["log"]
    )
    assert sorted((int(a), int(b)) for a, b, _ in ran) == [(i, i + 7) for i in range(0, 40, 8)]
    print("shards (first row, last row, pid):", ran, "workers:", workers)
    pids = {int(pid) for _, _, pid in ran}
    assert pids == set(workers.values()) and os.getpid() not in pids, (pids, workers)

    assert on_cluster["filenames"] == local["filenames"]
    diff = np.abs(on_cluster["embeddings"] - local["embeddings"]).max()
    print(f"max abs difference, cluster vs local embeddings: {diff:.3g}")
    np.testing.assert_array_equal(on_cluster["embeddings"], local["embeddings"])
    assert on_cluster["selected"] == local["selected"]
    assert not list((tmp_path / "cluster").rglob("shards/*")), "shards are removed once joined"


def test_an_unreachable_scheduler_fails_in_seconds_naming_it(images, tmp_path):
    from thresher.flows.curate import curate

    lightly = tmp_path / "lightly"
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=re.escape(NOWHERE)) as e:
        curate.fn(input=str(images), lightly=str(lightly), cluster=NOWHERE, **CONFIGS)
    assert time.monotonic() - t0 < 10
    assert "dask scheduler" in str(e.value) and "docs/cluster.md" in str(e.value)
    assert not lightly.exists(), "nothing is written"


def test_the_command_reports_a_bad_cluster_before_prefect_starts(images, tmp_path):
    lightly = tmp_path / "lightly"
    args = ["run", str(images), "--lightly", str(lightly), "--n-samples", "3", "--cluster", NOWHERE]
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120
    )
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    assert probe == {"code": 2, "prefect": False}, proc.stderr
    assert proc.stderr.startswith("thresher: error:") and NOWHERE in proc.stderr, proc.stderr
    assert not lightly.exists()


@pytest.mark.parametrize(
    "address", ["scheduler:8786", "http://host:8786", "tcp://host", "tcp://:1"]
)
def test_a_malformed_address_says_how_to_write_it(address):
    with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
        check_scheduler(address)
