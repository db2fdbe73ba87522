"""The datapool on the platform: scheduled runs on one dataset, a real server and worker.

Planted: run 1 (no datapool) selects 3 of clusters 0-2, which become the dataset's samples. A
second run without ``use_datapool`` is refused (Lightly's rule: the dataset must be empty).
Then four images of four new clusters arrive; a ``use_datapool`` run takes only those as
candidates, picks all four (none of the already processed files, never an earlier pick), adds
them to the dataset, and its report counts the 3 earlier picks and the 7 in all.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.platform_e2e.test_first_steps import DIVERSITY, _follow, _wait
from thresher import DatasetType, DatasourcePurpose
from thresher.examples import _cluster_image

# Three scheduled runs through a real server and worker: minutes. CI runs the slow marker.
pytestmark = pytest.mark.slow


def _write(folder, cluster: int, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        name = f"c{cluster}/img_{seed}_{i}.png"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        _cluster_image(cluster, i, 96, rng).save(folder / name)
        names.append(name)
    return names


def test_a_dataset_with_samples_needs_the_datapool_and_grows_with_it(platform, tmp_path):
    folder = platform.input_mount / "pool-images"
    first_files = [n for k in range(3) for n in _write(folder, k, 3, seed=k)]
    (platform.lightly_mount / "pool-lightly").mkdir()
    client = platform.client()
    client.create_dataset("datapool", DatasetType.IMAGES)
    client.set_local_config(relative_path="pool-images", purpose=DatasourcePurpose.INPUT)
    client.set_local_config(relative_path="pool-lightly", purpose=DatasourcePurpose.LIGHTLY)

    first = client.schedule_compute_worker_run(
        selection_config={"n_samples": 3, "strategies": DIVERSITY}
    )
    worker = platform.worker("pool-worker")
    try:
        assert _follow(client, first)[-1].state == "COMPLETED"
    finally:
        assert _wait(worker) == 0
    samples = client.get_filenames()
    assert len(samples) == 3 and set(samples) <= set(first_files)

    # Without use_datapool, a dataset that has samples is refused, naming the fix.
    worker = platform.worker("pool-worker", once=False)
    try:
        refused = client.schedule_compute_worker_run(
            selection_config={"n_samples": 3, "strategies": DIVERSITY}
        )
        last = _follow(client, refused, timeout_s=120)[-1]
        assert last.state == "FAILED", last
        assert "already has 3 samples" in last.message
        assert "worker_config.use_datapool: true" in last.message
        assert client.get_filenames() == samples

        # New files arrive; the datapool run takes only them and keeps away from the picks.
        fresh = [n for k in (3, 4, 5, 6) for n in _write(folder, k, 1, seed=10 + k)]
        grown = client.schedule_compute_worker_run(
            worker_config={"use_datapool": True},
            selection_config={"n_samples": 4, "strategies": DIVERSITY},
        )
        infos = _follow(client, grown)
        assert infos[-1].state == "COMPLETED", infos[-1]
        assert "selected 4 of 4" in (infos[-1].message or "")
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    run = client.get_compute_worker_run_from_scheduled(scheduled_run_id=grown)
    out = platform.lightly_mount / "pool-lightly" / ".lightly" / "runs" / run.id
    picks = (out / "filenames" / "selected.txt").read_text().split()
    assert sorted(picks) == sorted(fresh)
    assert client.get_filenames() == [*samples, *picks]  # earlier samples keep their place
    (tag,) = client.get_compute_worker_run_tags(run.id)
    assert set(client.get_filenames_in_tag(tag)) == set(picks)
    client.download_compute_worker_run_artifacts(run=run, output_dir=str(tmp_path / "all"))
    for doc in ("report.json", "report_v2.json"):
        path = tmp_path / "all" / doc
        if not path.exists():  # report_v2.json may not be a registered artifact
            path = out / doc
        sizes = json.loads(path.read_text())["generalInformation"]["datasetInformation"][
            "datasetSizes"
        ]
        assert (sizes["nInput"], sizes["nSelected"]) == (4, 4), doc
        assert sizes["nPreselectedDatapool"] == 3, doc
        assert sizes["nSelectedWithDatapool"] == 7, doc
