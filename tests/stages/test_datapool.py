"""The datapool (``worker_config.use_datapool``) on planted data: runs of the real flow and CLI.

The planted answer. Run 1 sees clusters 0, 1 and 2 (three jittered views of one photo each)
and selects 3: one per cluster. Then new files arrive: a near-duplicate of each of run 1's
picks (the same image, resized and re-encoded as JPEG: about 0.5 from it in embedding space)
and one view each of four new clusters, 3 to 6 (about 1.2 from everything else). Run 2
(``use_datapool``, ``n_samples: 4``) takes only the 7 new files as candidates and picks
exactly the four new-cluster images: each near-duplicate sits next to an earlier pick, which
counts as chosen. Without the datapool's earlier picks the 7 candidates are all about equally
far apart (the near-duplicates are of clusters 0-2, far from 3-6), and diversity takes
near-duplicates too, so the test fails when preselection is lost.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thresher.errors import ConfigError, InputError
from thresher.examples import _cluster_image
from thresher.flows import curate
from thresher.stages import datapool

DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]
SIZE = 96


def _write_cluster(root: Path, cluster: int, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        name = f"cluster_{cluster}/img_{seed}_{i}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        _cluster_image(cluster, i, SIZE, rng).save(root / name)
        names.append(name)
    return names


def _near_duplicate(root: Path, src: str, name: str) -> None:
    """The same image, slightly resized and re-encoded: not byte-identical, nearly the same."""
    img = Image.open(root / src).convert("RGB").resize((SIZE - 6, SIZE - 6))
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    img.save(root / name, format="JPEG", quality=90)


def _run(root: Path, lightly: Path, n: int, **worker: object):
    state = curate(
        input=str(root),
        lightly=str(lightly),
        worker_config=worker,
        selection_config={"n_samples": n, "strategies": DIVERSITY},
        return_state=True,
    )
    return state


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


def _run_dir(lightly: Path, run_id: str) -> Path:
    return lightly / ".lightly" / "runs" / run_id


def _state(lightly: Path) -> bytes:
    return (lightly / datapool.STATE).read_bytes()


@pytest.fixture(scope="module")
def two_runs(prefect_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("pool") / "input"
    lightly = root.parent / "lightly"
    clusters = {n: k for k in range(3) for n in _write_cluster(root, k, 3, seed=k)}
    first = _run(root, lightly, 3, use_datapool=True)
    assert first.is_completed(), first
    r1 = first.result()
    picks1 = _lines(_run_dir(lightly, r1.run_id) / "filenames" / "selected.txt")
    near = {f"new/near_{i}.jpg": src for i, src in enumerate(picks1)}
    for name, src in near.items():
        _near_duplicate(root, src, name)
    fresh = {n: k for k in (3, 4, 5, 6) for n in _write_cluster(root, k, 1, seed=10 + k)}
    second = _run(root, lightly, 4, use_datapool=True)
    assert second.is_completed(), second
    r2 = second.result()
    picks2 = _lines(_run_dir(lightly, r2.run_id) / "filenames" / "selected.txt")
    return dict(
        root=root, lightly=lightly, clusters=clusters, picks1=picks1, near=near, fresh=fresh,
        r1=r1, r2=r2, picks2=picks2,
    )  # fmt: skip


def test_first_run_picks_one_per_cluster_and_fills_the_datapool(two_runs):
    t = two_runs
    assert sorted(t["clusters"][n] for n in t["picks1"]) == [0, 1, 2]
    pool = datapool.load(str(t["lightly"]))
    assert pool is not None
    # After run 2 the pool holds both runs' picks, run 1's first, and every processed file.
    assert pool.selected[:3] == t["picks1"]
    assert set(pool.processed) == {*t["clusters"], *t["near"], *t["fresh"]}
    assert pool.embeddings().shape[0] == len(pool.selected) == 7


def test_second_run_picks_only_new_files_never_near_duplicates_of_earlier_picks(two_runs):
    t = two_runs
    # Only the 7 new files were input of run 2.
    assert t["r2"].sizes["n_input"] == len(t["near"]) + len(t["fresh"]) == 7
    assert sorted(t["picks2"]) == sorted(t["fresh"]), t["picks2"]  # no near-duplicate
    assert not set(t["picks2"]) & set(t["near"])


def test_report_shows_datapool_counts(two_runs):
    t = two_runs
    run = _run_dir(t["lightly"], t["r2"].run_id)
    for doc in ("report.json", "report_v2.json"):
        sizes = json.loads((run / doc).read_text())["generalInformation"]["datasetInformation"][
            "datasetSizes"
        ]
        assert sizes["nSelected"] == 4, doc
        assert sizes["nPreselectedDatapool"] == 3, doc
        assert sizes["nSelectedWithDatapool"] == 7, doc
    first = _run_dir(t["lightly"], t["r1"].run_id) / "report.json"
    sizes1 = json.loads(first.read_text())["generalInformation"]["datasetInformation"]
    assert sizes1["datasetSizes"]["nPreselectedDatapool"] == 0


def test_nothing_new_is_refused_and_leaves_the_datapool(two_runs):
    t = two_runs
    before = _state(t["lightly"])
    state = _run(t["root"], t["lightly"], 1, use_datapool=True)
    assert state.is_failed()
    with pytest.raises(InputError, match="process_all"):
        state.result()
    assert _state(t["lightly"]) == before


def test_update_off_process_all_and_a_changed_file(two_runs):
    t = two_runs
    root, lightly = t["root"], t["lightly"]
    before = _state(lightly)
    everything = {*t["clusters"], *t["near"], *t["fresh"]}
    # process_all: every file is a candidate again, but no earlier pick is picked twice;
    # enable_datapool_update false leaves the datapool as it was.
    state = _run(
        root, lightly, 2, use_datapool=True,
        datasource={"process_all": True, "enable_datapool_update": False},
    )  # fmt: skip
    assert state.is_completed(), state
    r = state.result()
    assert r.sizes["n_input"] == len(everything)
    picks = _lines(_run_dir(lightly, r.run_id) / "filenames" / "selected.txt")
    assert len(picks) == 2 and not set(picks) & {*t["picks1"], *t["picks2"]}
    assert _state(lightly) == before
    # A changed file counts as new: rewrite one unpicked cluster-0 file with other content.
    changed = next(n for n in sorted(t["clusters"]) if n not in t["picks1"])
    _cluster_image(7, 0, SIZE, np.random.default_rng(99)).save(root / changed)
    state = _run(root, lightly, 1, use_datapool=True)
    assert state.is_completed(), state
    r = state.result()
    assert r.sizes["n_input"] == 1
    assert _lines(_run_dir(lightly, r.run_id) / "filenames" / "selected.txt") == [changed]
    assert _state(lightly) != before
    assert datapool.load(str(lightly)).selected[-1] == changed  # type: ignore[union-attr]


def test_a_failed_run_leaves_the_datapool_as_it_was(prefect_server, tmp_path):
    root, lightly = tmp_path / "input", tmp_path / "lightly"
    _write_cluster(root, 0, 2, seed=0)
    assert _run(root, lightly, 1, use_datapool=True).is_completed()
    before = _state(lightly)
    _write_cluster(root, 1, 2, seed=1)
    # The run folder is taken by a file: the run fails after selecting, while writing its
    # results, so the datapool must not have been touched.
    blocked = lightly / ".lightly" / "runs" / "blocked"
    blocked.write_text("not a folder")
    state = _run(root, lightly, 1, use_datapool=True, run_directory="blocked")
    assert state.is_failed()
    assert _state(lightly) == before
    assert (lightly / ".lightly" / "cache" / "select").is_dir()  # it did get as far as that
    blocked.unlink()
    # Run again (resume): the new files are still new.
    state = _run(root, lightly, 1, use_datapool=True, run_directory="blocked")
    assert state.is_completed(), state
    assert state.result().sizes["n_input"] == 2


def test_dataset_type_and_model_must_stay(two_runs):
    t = two_runs
    from thresher.config import WorkerConfig
    from thresher.stages.list_input import list_input

    listing = list_input(str(t["root"]), str(t["lightly"]))
    videos = dataclasses.replace(listing, dataset_type="videos")
    with pytest.raises(ConfigError, match="holds images, but this run's dataset type is videos"):
        datapool.restrict(videos, WorkerConfig(use_datapool=True))
    pool = datapool.load(str(t["lightly"]))
    assert pool is not None
    view = dataclasses.replace(listing, datapool=pool.version)
    with pytest.raises(ConfigError, match="cannot be compared"):
        datapool.preselected(view, [], 512, "resnet-18")


def test_the_cli_adds_to_the_datapool_and_rerunning_without_it_still_works(tmp_path):
    """The CLI never refuses a LIGHTLY location that has a datapool (re-runs resume)."""
    root, lightly = tmp_path / "input", tmp_path / "lightly"
    _write_cluster(root, 0, 2, seed=0)
    _write_cluster(root, 1, 2, seed=1)

    def thresher(n: int, worker: dict[str, object]) -> subprocess.CompletedProcess[str]:
        sel = json.dumps({"n_samples": n, "strategies": DIVERSITY})
        argv = ["run", str(root), "--lightly", str(lightly), "--selection-config", sel]
        return subprocess.run(
            [sys.executable, "-m", "thresher", *argv, "--worker-config", json.dumps(worker)],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, THRESHER_PROGRESS="0"),
        )

    first = thresher(2, {"use_datapool": True})
    assert first.returncode == 0, first.stderr
    _write_cluster(root, 2, 2, seed=2)
    second = thresher(1, {"use_datapool": True})
    assert second.returncode == 0, second.stderr
    pool = datapool.load(str(lightly))
    assert pool is not None and len(pool.selected) == 3
    assert pool.selected[-1].startswith("cluster_2/")
    # The same LIGHTLY location without the datapool: a plain run over everything.
    plain = thresher(2, {})
    assert plain.returncode == 0, plain.stderr


def test_object_level_with_the_datapool_is_refused_before_anything_runs(prefect_server, tmp_path):
    boxes = {"type": "EMBEDDINGS", "task": "det"}
    state = curate(
        input=str(tmp_path / "input"),
        lightly=str(tmp_path / "lightly"),
        worker_config={"use_datapool": True},
        selection_config={
            "n_samples": 2,
            "strategies": [{"input": boxes, "strategy": {"type": "DIVERSITY"}}],
        },
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(ConfigError, match="use_datapool: not supported yet in an object-level"):
        state.result()
    assert not (tmp_path / "lightly").exists()
