"""The seed's first steps with our client, against a real server and a real worker process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import httpx
import pytest

from thresher import ApiWorkflowClient, DatasetType, DatasourcePurpose
from thresher.client import ApiException, TagDoesNotExistError
from thresher.storage.thumbnails import thumbnail_rel

THRESHER = [sys.executable, "-m", "thresher"]
DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]


def _follow(client: ApiWorkflowClient, scheduled_run_id: str, timeout_s: float = 600) -> list:
    infos = []
    deadline = time.monotonic() + timeout_s
    for run_info in client.compute_worker_run_info_generator(scheduled_run_id=scheduled_run_id):
        print(f"state={run_info.state!r} message={run_info.message!r}")
        infos.append(run_info)
        assert time.monotonic() < deadline, "the run did not end in time"
    return infos


def _unsigned(url: str) -> str:
    """A read URL without its ``publicToken`` (``<expires>.<signature>``, made per call)."""
    return url.partition("publicToken=")[0]


def _wait(proc: subprocess.Popen[bytes], timeout_s: float = 120) -> int:
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.terminate()
        return proc.wait(timeout=30)


def test_first_steps_end_to_end(platform, images, tmp_path):
    client = platform.client()
    client.create_dataset("first-steps", DatasetType.IMAGES)
    dataset_id = client.dataset_id
    client.set_local_config(relative_path=images, purpose=DatasourcePurpose.INPUT)
    client.set_local_config(relative_path="lightly", purpose=DatasourcePurpose.LIGHTLY)
    (platform.lightly_mount / "lightly").mkdir(exist_ok=True)
    assert client.get_datasource().type == "LOCAL"

    scheduled_run_id = client.schedule_compute_worker_run(
        worker_config={"enable_corruptness_check": True, "remove_exact_duplicates": True},
        selection_config={"n_samples": 5, "strategies": DIVERSITY},
    )
    assert client.get_compute_worker_run_info(scheduled_run_id).state == "OPEN"
    worker = platform.worker("e2e-worker")
    try:
        infos = _follow(client, scheduled_run_id)
    finally:
        assert _wait(worker) == 0
    states = [i.state for i in infos]
    assert states[-1] == "COMPLETED", infos[-1]
    assert infos[-1].ended_successfully()
    assert "EMBEDDING" in states or "SAMPLING" in states  # the stages showed while it worked
    assert "selected 5 of" in (infos[-1].message or "")

    run = client.get_compute_worker_run_from_scheduled(scheduled_run_id=scheduled_run_id)
    assert run.dataset_id == dataset_id and run.scheduled_id == scheduled_run_id
    assert [r.id for r in client.get_compute_worker_runs(dataset_id=dataset_id)] == [run.id]
    client.download_compute_worker_run_report_pdf(run=run, output_path=str(tmp_path / "r.pdf"))
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    client.download_compute_worker_run_log(run=run, output_path=str(tmp_path / "log.txt"))
    assert "stage embed" in (tmp_path / "log.txt").read_text()
    client.download_compute_worker_run_artifacts(run=run, output_dir=str(tmp_path / "all"))
    names = {p.name for p in (tmp_path / "all").iterdir()}
    assert {"report.pdf", "report.json", "log.txt", "memlog.txt"} <= names
    info = json.loads((tmp_path / "all" / "corruptness_check_information.json").read_text())
    assert len(info["corrupt_samples"]) > 0
    produced = platform.lightly_mount / "lightly" / ".lightly" / "runs" / run.id / "report.pdf"
    assert produced.read_bytes() == (tmp_path / "r.pdf").read_bytes()

    # The run's selection is the dataset's samples, and its tag initial-tag (Lightly's way).
    lightly_dir = platform.lightly_mount / "lightly" / ".lightly"
    selected = (lightly_dir / "runs" / run.id / "filenames" / "selected.txt").read_text().split()
    assert [t.name for t in client.get_all_tags()] == ["initial-tag"]
    initial = client.get_tag_by_name("initial-tag")
    assert initial.run_id == run.id and initial.prev_tag_id is None
    assert client.get_filenames() == selected  # sample order = pick order of the first run
    assert client.get_filenames_in_tag(initial) == selected
    assert set(selected) == set((lightly_dir / "tags" / "initial-tag.txt").read_text().split())
    assert [t.id for t in client.get_compute_worker_run_tags(run.id)] == [initial.id]
    with pytest.raises(
        TagDoesNotExistError, match=re.escape("Your tag_name does not exist: nope.")
    ):
        client.get_tag_by_name("nope")
    with pytest.raises(RuntimeError, match="already exists a tag with tag_name initial-tag"):
        client.create_tag_from_filenames(selected[:1], "initial-tag")
    with pytest.raises(
        RuntimeError, match=re.escape(f"Valid filename example from the dataset: {selected[0]}")
    ):
        client.create_tag_from_filenames(["not-a-sample.png"], "mine")
    made = client.create_tag_from_filenames(selected[:2], "first-two")
    assert client.get_tag_by_id(made.id).prev_tag_id == initial.id
    assert client.get_filenames_in_tag(client.get_tag_by_name("first-two")) == selected[:2]
    client.delete_tag_by_name("first-two")
    assert [t.name for t in client.get_all_tags()] == ["initial-tag"]

    # The results in hand (the seed's "Downloading"): filenames, read URLs, the files themselves.
    assert client.export_filenames_by_tag_name("initial-tag").split("\n") == selected
    rows = client.export_filenames_and_read_urls_by_tag_name("initial-tag")
    first = platform.input_mount / images / rows[0]["fileName"]
    assert httpx.get(rows[0]["readUrl"]).content == first.read_bytes()  # no token needed
    tasks = client.export_label_studio_tasks_by_tag_name("initial-tag")
    # The same samples' read URLs; each call signs its own, so expiry times may differ by a second.
    assert [_unsigned(t["data"]["image"]) for t in tasks] == [_unsigned(r["readUrl"]) for r in rows]
    assert httpx.get(tasks[0]["data"]["image"]).content == first.read_bytes()
    client.download_dataset(str(tmp_path / "files"), "initial-tag")
    for name in selected:
        original = platform.input_mount / images / name
        assert (tmp_path / "files" / name).read_bytes() == original.read_bytes()
    for name in selected:  # the web page's gallery shows these
        assert (lightly_dir.parent / thumbnail_rel(name)).exists()

    # Sharing: a colleague sees the dataset, then not after the owner revokes it.
    subprocess.run(
        [*THRESHER, "user", "add", "colleague@example.com", "--token", "colleague-token-1234"],
        env=platform.env,
        check=True,
        capture_output=True,
    )
    colleague = ApiWorkflowClient(token="colleague-token-1234", server_url=platform.url)
    client.share_dataset_only_with(dataset_id=dataset_id, user_emails=["colleague@example.com"])
    assert client.get_shared_users(dataset_id=dataset_id) == ["colleague@example.com"]
    assert [d.id for d in colleague.get_datasets(shared=True)] == [dataset_id]
    colleague.set_dataset_id_by_name("first-steps", shared=True)
    assert colleague.export_filenames_by_tag_name("initial-tag").split("\n") == selected
    client.share_dataset_only_with(dataset_id=dataset_id, user_emails=[])
    with pytest.raises(ApiException) as refused:
        colleague.export_filenames_by_tag_name("initial-tag")
    assert refused.value.status == 404  # revoked: a stranger, told it does not exist

    # A second run: its new picks are appended; its tag is named after the run (its id). The
    # dataset has samples now, so the run uses the datapool (Lightly's rule); every file was
    # processed by the first run, so it processes them all again (the earlier picks count as
    # chosen and are never picked twice).
    second_id = client.schedule_compute_worker_run(
        worker_config={"use_datapool": True, "datasource": {"process_all": True}},
        selection_config={"n_samples": 7, "strategies": DIVERSITY},
    )
    worker = platform.worker("e2e-worker")
    try:
        assert _follow(client, second_id)[-1].state == "COMPLETED"
    finally:
        assert _wait(worker) == 0
    second = client.get_compute_worker_run_from_scheduled(scheduled_run_id=second_id)
    picks = (lightly_dir / "runs" / second.id / "filenames" / "selected.txt").read_text().split()
    (tag,) = client.get_compute_worker_run_tags(second.id)
    assert tag.name == second.id and tag.run_id == second.id and tag.prev_tag_id == initial.id
    assert [t.name for t in client.get_all_tags()] == [second.id, "initial-tag"]
    assert set(client.get_filenames_in_tag(tag)) == set(picks)
    everything = client.get_filenames()
    assert everything[: len(selected)] == selected  # the first run's samples keep their place
    assert set(everything) == set(selected) | set(picks)
    assert not set(selected) & set(picks)
    assert client.get_filenames_in_tag(client.get_tag_by_name("initial-tag")) == everything


def test_a_cancelled_open_run_is_canceled_or_not_existing(platform, images):
    client = platform.client()
    client.create_new_dataset_with_unique_name("cancel-me")
    client.set_local_config(relative_path=images, purpose=DatasourcePurpose.INPUT)
    client.set_local_config(relative_path="lightly", purpose=DatasourcePurpose.LIGHTLY)
    scheduled_run_id = client.schedule_compute_worker_run(
        selection_config={"n_samples": 5, "strategies": DIVERSITY}
    )
    client.cancel_compute_worker_run(scheduled_run_id)
    infos = list(client.compute_worker_run_info_generator(scheduled_run_id, poll_interval=0.1))
    assert [i.state for i in infos] == ["CANCELED_OR_NOT_EXISTING"]
    assert not infos[-1].ended_successfully()


def test_a_local_path_that_leaves_the_mount_is_refused(platform, images):
    """The server refuses '..' when it is set (the worker refuses it again, and symlink escapes,
    when it resolves the path: tests/worker/test_datasources.py)."""
    client = platform.client()
    client.create_new_dataset_with_unique_name("escape")
    with pytest.raises(ApiException) as info:
        client.set_local_config(relative_path="../outside", purpose=DatasourcePurpose.INPUT)
    assert info.value.status == 400 and "'..'" in info.value.error


def test_labels_and_priorities_route_runs(platform, images):
    """Two runs need the 'gpu' label (LOW, then HIGH), one needs nothing: the gpu worker takes
    the HIGH one first; the plain worker can take only the unlabelled run."""
    client = platform.client()
    client.create_new_dataset_with_unique_name("routing")
    client.set_local_config(relative_path=images, purpose=DatasourcePurpose.INPUT)
    client.set_local_config(relative_path="lightly-routing", purpose=DatasourcePurpose.LIGHTLY)
    (platform.lightly_mount / "lightly-routing").mkdir(exist_ok=True)
    selection = {"n_samples": 3, "strategies": DIVERSITY}
    low_gpu = client.schedule_compute_worker_run(
        selection_config=selection, priority="LOW", runs_on=["gpu"]
    )
    high_gpu = client.schedule_compute_worker_run(
        selection_config=selection, priority="HIGH", runs_on=["gpu"]
    )
    plain = client.schedule_compute_worker_run(selection_config=selection)
    gpu_worker = platform.worker("e2e-gpu", labels="gpu")
    plain_worker = platform.worker("e2e-plain")
    try:
        assert _wait(gpu_worker, 600) == 0
        assert _wait(plain_worker, 600) == 0
    finally:
        for p in (gpu_worker, plain_worker):
            if p.poll() is None:
                p.kill()
    workers = {w.name: w.id for w in client.get_compute_workers()}
    taken = {r.scheduled_id: r for r in client.get_compute_worker_runs()}
    assert high_gpu in taken and low_gpu not in taken  # --once: one run each, HIGH first
    assert plain in taken
    assert client.get_compute_worker_run_info(low_gpu).state == "OPEN"
    assert {"e2e-gpu", "e2e-plain"} <= set(workers)
    client.cancel_compute_worker_run(low_gpu)
