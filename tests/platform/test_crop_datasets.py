"""Crops datasets: an object-level run's selected crops become a Crops dataset's samples.

Service layer only (SQLite and PostgreSQL); the scheduled run through a real worker is in
``tests/platform_e2e/test_object_level_platform.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.platform.helpers import ready_dataset, user, worker
from thresher.platform import (
    configs,
    crops,
    datasets,
    datasources,
    exports,
    runs,
    samples,
    sharing,
    tags,
)
from thresher.platform.core import Platform
from thresher.platform.errors import Conflict, Forbidden, Invalid, NotFound, Unprocessable
from thresher.platform.models import User
from thresher.wire import (
    DatasetCreateRequest,
    DatasetData,
    DatasetType,
    DatasourceConfigLocal,
    DockerRunScheduledCreateRequest,
    FileNameFormat,
    RunCrops,
)

TASK = "vehicles"
BASE = "http://testserver/"


def _run(p: Platform, u: User, d: str, w: str, worker_config: dict | None = None) -> str:
    """A claimed run of ``d`` with this worker config (an object-level selection)."""
    cfg = configs.create(p, u, worker_config or {}, {}, {"n_samples": 2})
    runs.schedule(p, u, d, DockerRunScheduledCreateRequest(config_id=cfg))
    claimed = runs.claim(p, u, w)
    assert claimed is not None
    return claimed.run.id


def _crops_dataset(p: Platform, u: User, name: str) -> DatasetData:
    found = datasets.list_datasets(p, u, name=name)
    assert len(found) == 1, [d.name for d in found]
    return found[0]


def test_a_run_fills_the_crops_dataset_and_later_runs_add_to_it(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice, "street")
    w = worker(platform, alice)
    r1 = _run(platform, alice, d, w)
    picks = crops.record_run_picks(
        platform,
        alice,
        r1,
        ["a.jpg", "b.jpg"],
        RunCrops(task=TASK, filenames=["a-vehicles-1-jpg.png", "b-vehicles-0-jpg.png"]),
    )
    # The images part is as without crops: the run's tag in the original dataset.
    assert tags.mappings(platform, alice, d, "fileName") == ["a.jpg", "b.jpg"]
    assert [t.id for t in tags.list_tags(platform, alice, d)] == [picks]

    c = _crops_dataset(platform, alice, "street-crops")
    assert (c.type, c.user_id, c.img_type) == (DatasetType.CROPS, alice.id, "full")
    assert tags.mappings(platform, alice, c.id, "fileName") == [
        f"{TASK}/a-vehicles-1-jpg.png",
        f"{TASK}/b-vehicles-0-jpg.png",
    ]
    (first,) = tags.list_tags(platform, alice, c.id)
    assert (first.name, first.run_id, first.bit_mask_data) == ("initial-tag", r1, "0x3")
    for purpose in ("INPUT", "LIGHTLY"):  # the original's LIGHTLY ("out") + the crops folder
        ds = datasources.get(platform, alice, c.id, purpose)
        assert (ds.type, ds.full_path) == ("LOCAL", "out/.lightly/crops")
    # Reporting the same run again changes nothing.
    again = RunCrops(task=TASK, filenames=["z.png"])
    assert crops.record_run_crops(platform, alice, r1, again) == first.id

    r2 = _run(platform, alice, d, w)
    crops.record_run_picks(
        platform,
        alice,
        r2,
        ["c.jpg"],
        RunCrops(task=TASK, filenames=["c-vehicles-0-jpg.png", "a-vehicles-1-jpg.png"]),
    )
    assert _crops_dataset(platform, alice, "street-crops").id == c.id  # the same dataset
    order = tags.mappings(platform, alice, c.id, "fileName")
    assert order == [
        f"{TASK}/a-vehicles-1-jpg.png",
        f"{TASK}/b-vehicles-0-jpg.png",
        f"{TASK}/c-vehicles-0-jpg.png",
    ]
    second = next(t for t in tags.list_tags(platform, alice, c.id) if t.run_id == r2)
    assert second.name == r2  # named as in an images dataset: the run id
    assert [order[k] for k in tags.from_bitmask(second.bit_mask_data)] == [order[0], order[2]]
    assert {t.id for t in tags.run_tags(platform, alice, r2)} >= {second.id}


def test_the_crops_are_read_from_the_lightly_mount(platform: Platform, tmp_path: Path) -> None:
    """Exports and read URLs of a crops dataset serve the crop files the run wrote."""
    inputs, lightly = tmp_path / "inputs", tmp_path / "lightly"
    crop = lightly / "out" / ".lightly" / "crops" / TASK / "a-vehicles-0-jpg.png"
    crop.parent.mkdir(parents=True)
    crop.write_bytes(b"\x89PNG the crop")
    (inputs / "in").mkdir(parents=True)  # the images mount: crops are not read from it
    platform.settings = dataclasses.replace(
        platform.settings, local_root=inputs, lightly_root=lightly
    )
    alice = user(platform)
    d = ready_dataset(platform, alice, "street")
    r = _run(platform, alice, d, worker(platform, alice))
    tag = crops.record_run_crops(
        platform, alice, r, RunCrops(task=TASK, filenames=["a-vehicles-0-jpg.png"])
    )
    c = _crops_dataset(platform, alice, "street-crops").id
    (url,) = exports.filenames(platform, alice, c, tag, BASE, FileNameFormat.REDIRECTED_READ_URL)
    sample_id = url.split("/samples/")[1].split("/")[0]
    token = url.split("publicToken=")[1]
    name, _, chunks = samples.open_original(platform, c, sample_id, token)
    assert (name, b"".join(chunks)) == (f"{TASK}/a-vehicles-0-jpg.png", b"\x89PNG the crop")
    (where,) = exports.filenames(platform, alice, c, tag, BASE, FileNameFormat.DATASOURCE_FULL)
    assert Path(where) == crop


def test_a_custom_crops_dataset_name(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice, "street")
    r = _run(platform, alice, d, worker(platform, alice), {"object_level": {"padding": 0.1}})
    crops.record_run_crops(platform, alice, r, RunCrops(task=TASK, filenames=["a.png"]))
    r2 = _run(
        platform,
        alice,
        d,
        worker(platform, alice, "gpu-2"),
        {"object_level": {"crop_dataset_name": "my-crops"}},
    )
    crops.record_run_crops(platform, alice, r2, RunCrops(task=TASK, filenames=["b.png"]))
    assert tags.mappings(
        platform, alice, _crops_dataset(platform, alice, "my-crops").id, "fileName"
    ) == [f"{TASK}/b.png"]
    assert tags.mappings(
        platform, alice, _crops_dataset(platform, alice, "street-crops").id, "fileName"
    ) == [f"{TASK}/a.png"]


def test_a_name_taken_by_another_dataset_refuses_the_crops_not_the_images(
    platform: Platform,
) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice, "street")
    other = datasets.create(platform, alice, DatasetCreateRequest(name="street-crops"))
    r = _run(platform, alice, d, worker(platform, alice))
    with pytest.raises(Conflict, match="not a crops dataset") as e:
        crops.record_run_picks(
            platform, alice, r, ["a.jpg"], RunCrops(task=TASK, filenames=["a-0.png"])
        )
    assert e.value.code == "CROP_DATASET_NAME_TAKEN"
    assert "street-crops" in e.value.message and "crop_dataset_name" in e.value.message
    assert tags.mappings(platform, alice, d, "fileName") == ["a.jpg"]  # the images part stays
    assert tags.mappings(platform, alice, other, "fileName") == []  # the other is untouched
    assert datasets.get(platform, alice, other).type == DatasetType.IMAGES
    # The original's own name is not a crops dataset either.
    r2 = _run(
        platform,
        alice,
        d,
        worker(platform, alice, "gpu-2"),
        {"object_level": {"crop_dataset_name": "street"}},
    )
    with pytest.raises(Conflict, match="not a crops dataset"):
        crops.record_run_crops(platform, alice, r2, RunCrops(task=TASK, filenames=["b.png"]))


def test_another_users_dataset_of_that_name_is_not_used(platform: Platform) -> None:
    alice, bob = user(platform), user(platform, "bob@example.com")
    bobs = datasets.create(platform, bob, DatasetCreateRequest(name="street-crops"))
    d = ready_dataset(platform, alice, "street")
    sharing.share_only_with(platform, alice, d, ["bob@example.com"])
    r = _run(platform, alice, d, worker(platform, alice))
    crops.record_run_crops(platform, alice, r, RunCrops(task=TASK, filenames=["a.png"]))
    mine = _crops_dataset(platform, alice, "street-crops")
    assert mine.id != bobs and mine.user_id == alice.id
    assert tags.mappings(platform, bob, bobs, "fileName") == []
    # The original's collaborators do not see the crops dataset (it is shared on its own).
    with pytest.raises(NotFound):
        tags.mappings(platform, bob, mine.id, "fileName")


@pytest.mark.parametrize(
    ("task", "names"),
    [
        (TASK, ["../escape.png"]),
        (TASK, ["/etc/passwd"]),
        (TASK, ["a//b.png"]),
        (TASK, ["a/./b.png"]),
        (TASK, ["nul\x00.png"]),
        ("..", ["a.png"]),
        ("a/b", ["a.png"]),
        ("", ["a.png"]),
        ("bad\\task", ["a.png"]),
    ],
)
def test_hostile_crop_names_record_nothing(platform: Platform, task: str, names: list[str]) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice, "street")
    r = _run(platform, alice, d, worker(platform, alice))
    with pytest.raises(Invalid, match="nothing was recorded"):
        crops.record_run_picks(platform, alice, r, ["a.jpg"], RunCrops(task=task, filenames=names))
    assert tags.mappings(platform, alice, d, "fileName") == []  # checked before anything
    assert datasets.list_datasets(platform, alice, name="street-crops") == []


def test_only_the_runs_worker_user_reports_crops(platform: Platform) -> None:
    alice, mallory = user(platform), user(platform, "mallory@example.com")
    d = ready_dataset(platform, alice, "street")
    r = _run(platform, alice, d, worker(platform, alice))
    with pytest.raises(Forbidden):
        crops.record_run_crops(platform, mallory, r, RunCrops(task=TASK, filenames=["a.png"]))
    assert datasets.list_datasets(platform, alice, name="street-crops") == []


def test_a_crops_dataset_is_not_scheduled(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice, "street")
    r = _run(platform, alice, d, worker(platform, alice))
    crops.record_run_crops(platform, alice, r, RunCrops(task=TASK, filenames=["a.png"]))
    c = _crops_dataset(platform, alice, "street-crops").id
    cfg = configs.create(platform, alice, {}, {}, {"n_samples": 1})
    with pytest.raises(Unprocessable, match=r"crops dataset.*original dataset"):
        runs.schedule(platform, alice, c, DockerRunScheduledCreateRequest(config_id=cfg))


def test_a_changed_lightly_datasource_is_followed(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice, "street")
    w = worker(platform, alice)
    r = _run(platform, alice, d, w)
    crops.record_run_crops(platform, alice, r, RunCrops(task=TASK, filenames=["a.png"]))
    datasources.put(
        platform, alice, d, DatasourceConfigLocal(purpose="LIGHTLY", full_path="elsewhere/")
    )
    r2 = _run(platform, alice, d, w)
    crops.record_run_crops(platform, alice, r2, RunCrops(task=TASK, filenames=["b.png"]))
    c = _crops_dataset(platform, alice, "street-crops").id
    assert datasources.get(platform, alice, c, "INPUT").full_path == "elsewhere/.lightly/crops"
