"""A platform dataset of type Videos reaches the flow as ``dataset_type="videos"``."""

from thresher.worker.run_one import flow_parameters

JOB = {"input": "in", "lightly": "out", "run_id": "r1"}


def test_the_worker_passes_the_dataset_type_to_the_flow() -> None:
    assert flow_parameters({**JOB, "dataset_type": "videos"})["dataset_type"] == "videos"
    assert flow_parameters(JOB)["dataset_type"] == "images"  # a job of an older worker
