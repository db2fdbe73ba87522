"""An object-level selection config scheduled on the platform runs through a real worker.

The planted data and predictions are those of ``tests/stages/test_object_level.py`` (17 objects
of five kinds in 10 images, a detection task ``shapes``); the planted answer: DIVERSITY with
``n_samples: 5`` picks one crop of each kind, the crops are written to
``.lightly/crops/shapes/``, the dataset's samples are the images holding them, and the crops
dataset ``<dataset>-crops`` holds the crops as its samples.
"""

from __future__ import annotations

import json

import pytest

from tests.platform_e2e.test_first_steps import _follow, _wait
from tests.stages.test_object_level import (
    KINDS,
    TASK,
    make_planted,
    patch,
    write_predictions,
)
from thresher import DatasetType, DatasourcePurpose

# A scheduled object-level run through a real server and worker. CI runs the slow marker.
pytestmark = pytest.mark.slow


def test_a_scheduled_object_level_run_writes_the_crops(platform, tmp_path):
    import numpy as np
    from PIL import Image

    planted = make_planted(platform.input_mount / "objects")
    lightly = platform.lightly_mount / "objects-lightly"
    write_predictions(lightly, planted)
    client = platform.client()
    client.create_dataset("object-level", DatasetType.IMAGES)
    client.set_local_config(relative_path="objects", purpose=DatasourcePurpose.INPUT)
    client.set_local_config(relative_path="objects-lightly", purpose=DatasourcePurpose.LIGHTLY)
    scheduled = client.schedule_compute_worker_run(
        worker_config={"object_level": {"padding": 0.0}},
        selection_config={
            "n_samples": 5,
            "strategies": [
                {"input": {"type": "EMBEDDINGS", "task": TASK}, "strategy": {"type": "DIVERSITY"}}
            ],
        },
    )
    worker = platform.worker("object-worker")
    try:
        infos = _follow(client, scheduled)
    finally:
        assert _wait(worker) == 0
    assert infos[-1].state == "COMPLETED", infos[-1]

    run = client.get_compute_worker_run_from_scheduled(scheduled_run_id=scheduled)
    run_dir = lightly / ".lightly" / "runs" / run.id
    crops = (run_dir / "filenames" / "selected_crops.txt").read_text().split()
    assert {planted.kind_of(c) for c in crops} == set(KINDS)
    for name in crops:
        written = np.asarray(Image.open(lightly / ".lightly" / "crops" / TASK / name))
        assert np.array_equal(written, patch(planted.kind_of(name)))
    images = (run_dir / "filenames" / "selected.txt").read_text().split()
    assert client.get_filenames() == images  # the dataset's samples: images holding the picks
    client.download_compute_worker_run_artifacts(run=run, output_dir=str(tmp_path / "all"))
    report = json.loads((tmp_path / "all" / "report.json").read_text())
    sizes = report["generalInformation"]["datasetInformation"]["objectLevelSizes"]
    assert (sizes["nObjects"], sizes["nSelectedObjects"]) == (17, 5)

    # The crops dataset (Lightly's `<dataset>-crops`): the selected crops are its samples.
    (crops_dataset,) = client.get_datasets_by_name("object-level-crops")
    assert crops_dataset.type == DatasetType.CROPS
    assert crops_dataset.user_id == client.get_dataset_by_id(client.dataset_id).user_id
    client.set_dataset_id_by_name("object-level-crops")
    assert client.get_filenames() == [f"{TASK}/{name}" for name in crops]
    (tag,) = client.get_all_tags()
    assert (tag.name, tag.run_id) == ("initial-tag", run.id)
    client.download_dataset(str(tmp_path / "crops"), verbose=False)  # the crop files' bytes
    for name in crops:
        got = (tmp_path / "crops" / TASK / name).read_bytes()
        assert got == (lightly / ".lightly" / "crops" / TASK / name).read_bytes()
