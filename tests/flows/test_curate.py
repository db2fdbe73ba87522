"""The curate flow end to end, on the planted example, under a real (test) Prefect server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from thresher.flows import curate

DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


def _task_states(flow_run_id) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]}))
    return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs}


@pytest.fixture(scope="module")
def first_run(prefect_server, example_dataset, tmp_path_factory):
    lightly = tmp_path_factory.mktemp("out") / "lightly"
    before = _snapshot(example_dataset.root)
    state = curate(
        input=str(example_dataset.root),
        lightly=str(lightly),
        worker_config={"enable_corruptness_check": True, "remove_exact_duplicates": True},
        selection_config={"n_samples": example_dataset.n_clusters, "strategies": DIVERSITY},
        return_state=True,
    )
    assert state.is_completed(), state
    return state, lightly, before


def test_every_file_is_accounted_for_once(first_run, example_dataset):
    state, lightly, _ = first_run
    result = state.result()
    run = lightly / ".lightly" / "runs" / result.run_id
    groups = {
        k: _lines(run / "filenames" / f"{k}.txt")
        for k in ("selected", "removed", "duplicate", "corrupt", "filtered")
    }
    everything = [n for names in groups.values() for n in names]
    assert sorted(everything) == example_dataset.all_files  # each file exactly once
    assert set(groups["corrupt"]) == set(example_dataset.corrupt)
    assert set(groups["duplicate"]) == set(example_dataset.duplicates)
    assert result.sizes["n_selected"] == example_dataset.n_clusters


def test_one_pick_per_cluster(first_run, example_dataset):
    state, lightly, _ = first_run
    run = lightly / ".lightly" / "runs" / state.result().run_id
    picked = _lines(run / "filenames" / "selected.txt")
    assert sorted(example_dataset.clusters[n] for n in picked) == list(
        range(example_dataset.n_clusters)
    )


def test_outputs_and_report_are_consistent(first_run, example_dataset):
    state, lightly, _ = first_run
    result = state.result()
    run = lightly / ".lightly" / "runs" / result.run_id
    for name in (
        "report.pdf",
        "report.json",
        "log.txt",
        "memlog.txt",
        "config.json",
        "embeddings.csv",
        "embeddings.parquet",
        "corruptness_check_information.json",
    ):
        assert (run / name).stat().st_size > 0, name
    report = json.loads((run / "report.json").read_text())
    sizes = report["generalInformation"]["datasetInformation"]["datasetSizes"]
    assert sizes["nInput"] == len(example_dataset.all_files)
    assert sizes["nSelected"] == result.sizes["n_selected"]
    assert sizes["nCorrupt"] == len(example_dataset.corrupt)
    assert sizes["nDuplicate"] == len(example_dataset.duplicates)
    corrupt = json.loads((run / "corruptness_check_information.json").read_text())
    assert set(corrupt["corrupt_samples"]) == set(example_dataset.corrupt)
    header = (run / "embeddings.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "filenames" and header[-1] == "labels" and header[1] == "embedding_0"
    tag = _lines(lightly / ".lightly" / "tags" / "initial-tag.txt")
    assert tag == _lines(run / "filenames" / "selected.txt")
    assert "stage embed" in (run / "log.txt").read_text()
    assert not list(run.rglob(".tmp-*")), "temporary files left behind"


def test_input_is_never_written(first_run, example_dataset):
    _, _, before = first_run
    assert _snapshot(example_dataset.root) == before


def test_rerun_reuses_cached_stages_and_keeps_initial_tag(first_run, example_dataset):
    _, lightly, _ = first_run
    initial = (lightly / ".lightly" / "tags" / "initial-tag.txt").read_text()
    again = curate(
        input=str(example_dataset.root),
        lightly=str(lightly),
        selection_config={"n_samples": example_dataset.n_clusters, "strategies": DIVERSITY},
        return_state=True,
    )
    states = _task_states(again.state_details.flow_run_id)
    for stage in ("corruption_check", "deduplicate", "embed", "select"):
        assert states[stage] == "Cached", states
    assert (lightly / ".lightly" / "tags" / "initial-tag.txt").read_text() == initial
    assert again.result().tags == [again.result().run_id]
    assert again.result().cached["embed"] == "cached"
    run = lightly / ".lightly" / "runs" / again.result().run_id
    assert "stage embed: cached" in (run / "log.txt").read_text()


def test_failed_run_resumes_from_last_finished_stage(prefect_server, example_dataset, tmp_path):
    lightly = tmp_path / "lightly"
    # The schema names weather.temp, but no image has metadata and there is no default: only the
    # select stage finds that out (every image must be read), after embed has finished.
    (lightly / ".lightly" / "metadata").mkdir(parents=True)
    (lightly / ".lightly" / "metadata" / "schema.json").write_text(
        '[{"name": "temp", "path": "weather.temp", "valueDataType": "NUMERIC_FLOAT"}]'
    )
    bad = {
        "n_samples": 3,
        "strategies": [
            {"input": {"type": "METADATA", "key": "weather.temp"}, "strategy": {"type": "WEIGHTS"}}
        ],
    }
    failed = curate(
        input=str(example_dataset.root),
        lightly=str(lightly),
        selection_config=bad,
        return_state=True,
    )
    assert failed.is_failed()
    logs = list((lightly / ".lightly" / "runs").glob("*/log.txt"))
    assert logs and "failed" in logs[0].read_text()  # a failed run still leaves its log
    ok = curate(
        input=str(example_dataset.root),
        lightly=str(lightly),
        selection_config={"n_samples": 3},
        return_state=True,
    )
    assert ok.is_completed()
    states = _task_states(ok.state_details.flow_run_id)
    assert states["embed"] == "Cached" and states["corruption_check"] == "Cached", states


def test_deleted_cache_is_recomputed(prefect_server, example_dataset, tmp_path):
    import shutil

    lightly = tmp_path / "lightly"
    kw = dict(
        input=str(example_dataset.root), lightly=str(lightly), selection_config={"n_samples": 4}
    )
    curate(**kw)
    shutil.rmtree(lightly / ".lightly" / "cache" / "embed")
    result = curate(**kw)
    assert result.sizes["n_selected"] == 4


def test_relevant_filenames_filter(prefect_server, example_dataset, tmp_path):
    lightly = tmp_path / "lightly"
    (lightly / ".lightly").mkdir(parents=True)
    (lightly / ".lightly" / "relevant.txt").write_text(
        "cluster_0/* cluster_0/img_00* !cluster_0/img_001.jpg\n"
    )
    result = curate(
        input=str(example_dataset.root),
        lightly=str(lightly),
        worker_config={"relevant_filenames_file": ".lightly/relevant.txt"},
        selection_config={"n_samples": 2},
    )
    # cluster_0 has img_000..img_011; 'img_00*' drops img_000..img_009 except img_001.jpg: 3 stay.
    assert result.sizes["n_input"] - result.sizes["n_filtered"] == 3
    assert result.sizes["n_selected"] == 2


def _cli(*args, cwd=None):
    env = {**os.environ, "THRESHER_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "thresher", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def test_flow_on_memory_filesystem(prefect_server, example_dataset):
    """The same flow on fsspec's memory:// for INPUT and LIGHTLY: no code branches on the scheme."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for name in example_dataset.all_files:
        fs.pipe_file(f"/mem-input/{name}", (example_dataset.root / name).read_bytes())
    result = curate(
        input="memory://mem-input",
        lightly="memory://mem-lightly",
        selection_config={"n_samples": 5},
    )
    assert result.sizes["n_corrupt"] == len(example_dataset.corrupt)
    assert result.sizes["n_duplicate"] == len(example_dataset.duplicates)
    run = f"/mem-lightly/.lightly/runs/{result.run_id}"
    selected = fs.cat_file(f"{run}/filenames/selected.txt").decode().split()
    assert len(selected) == 5 and fs.exists(f"{run}/report.pdf")


def test_cli_unwritable_lightly_location(example_dataset, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = _cli(
        "run", str(example_dataset.root), "--lightly", str(blocker / "lightly"), "--n-samples", "3"
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Cannot create" in proc.stderr and "Traceback" not in proc.stderr
