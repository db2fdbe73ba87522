"""Object level (issue 13 item 5): the boxes of a detection task, or of an auto task, are the samples.

The planted data: 10 grey 128x96 PNGs holding 17 objects pasted at known boxes, 24x24 each,
of five kinds: ``checker`` (red/white checkerboard), ``stripes`` (green/black), ``disk``
(blue disk on grey) five copies each, and one ``cross`` (yellow) and one ``dots`` (magenta).
Copies are pixel-identical. A detection task ``shapes`` in Lightly's format predicts every box
exactly with its kind; the disks are predicted with an uncertain probability vector
``[0.3, 0.3, 0.4, 0, 0]`` (least confidence 0.75), every other object confidently (0.1).

The planted answers:

- every crop is its object's pixels (no padding), or the object plus a ring of background
  (padding 0.5: 6 pixels on each side of a 24-pixel box);
- DIVERSITY picks 5 crops of the 5 different kinds (copies have equal embeddings);
- THRESHOLD on the per-object least confidence > 0.5 keeps exactly the 5 disks;
- TILING 2x2 (no overlap) on a 128x96 image gives the four 64x48 quadrants; CROP with
  ``[0.5, 0.5, 0.25, 0.5]`` gives the box (64, 48, 96, 96).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli.test_cli_errors import run_cli
from thresher.config import load_configs
from thresher.errors import ConfigError
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.list_input import list_input
from thresher.stages.objects import Objects, object_task, objects
from thresher.storage.crops import CropReader, parse_crop_name
from thresher.storage.location import Location

KINDS = ("checker", "stripes", "disk", "cross", "dots")
SIZE = (128, 96)
BACKGROUND = (200, 200, 200)
SLOTS = [(8, 8), (52, 8), (96, 8), (8, 60), (52, 60), (96, 60)]
TASK = "shapes"


def patch(kind: str) -> np.ndarray:
    """The 24x24 RGB pixels of one object kind."""
    p = np.zeros((24, 24, 3), np.uint8)
    yy, xx = np.mgrid[:24, :24]
    if kind == "checker":
        on = ((yy // 4 + xx // 4) % 2).astype(bool)
        p[on], p[~on] = (220, 20, 20), (255, 255, 255)
    elif kind == "stripes":
        on = (yy // 3) % 2 == 0
        p[on], p[~on] = (20, 180, 20), (0, 0, 0)
    elif kind == "disk":
        on = (yy - 11.5) ** 2 + (xx - 11.5) ** 2 < 100
        p[:], p[on] = BACKGROUND, (20, 40, 230)
    elif kind == "cross":
        p[:] = (40, 40, 40)
        p[9:15, :], p[:, 9:15] = (250, 230, 0), (250, 230, 0)
    else:  # dots
        p[:] = (255, 255, 255)
        p[(yy % 6 < 3) & (xx % 6 < 3)] = (230, 0, 200)
    return p


@dataclass
class Planted:
    root: Path
    boxes: dict[str, list[tuple[str, int, int]]]  # image -> [(kind, x, y)], prediction order

    def kind_of(self, crop: str) -> str:
        image, index = parse_crop_name(crop, TASK) or ("", -1)
        return self.boxes[image][index][0]


def make_planted(root: Path) -> Planted:
    objs = ["checker"] * 5 + ["stripes"] * 5 + ["disk"] * 5 + ["cross", "dots"]
    order = np.random.default_rng(0).permutation(len(objs))
    root.mkdir(parents=True)
    boxes: dict[str, list[tuple[str, int, int]]] = {}
    k = 0
    for i in range(10):
        n = 2 if i < 7 else 1
        img = np.full((SIZE[1], SIZE[0], 3), BACKGROUND, np.uint8)
        placed = []
        for s in range(n):
            kind = objs[order[k]]
            k += 1
            x, y = SLOTS[(i + 2 * s) % len(SLOTS)]
            img[y : y + 24, x : x + 24] = patch(kind)
            placed.append((kind, x, y))
        name = f"img_{i:02d}.png"
        Image.fromarray(img).save(root / name)
        boxes[name] = placed
    return Planted(root, boxes)


def write_predictions(lightly: Path, planted: Planted, bad_box: bool = False) -> None:
    """Task ``shapes`` in Lightly's format: schema.json, tasks.json, one JSON per image."""
    folder = lightly / ".lightly" / "predictions" / TASK
    folder.mkdir(parents=True)
    (folder.parent / "tasks.json").write_text(json.dumps([TASK]))
    cats = [{"id": j, "name": k} for j, k in enumerate(KINDS)]
    (folder / "schema.json").write_text(
        json.dumps({"task_type": "object-detection", "categories": cats})
    )
    for image, placed in planted.boxes.items():
        preds = []
        for kind, x, y in placed:
            j = KINDS.index(kind)
            probs = [0.02] * 5
            probs[j] = 0.92
            if kind == "disk":
                probs = [0.3, 0.3, 0.4, 0.0, 0.0]
            preds.append(
                {"category_id": j, "bbox": [x, y, 24, 24], "score": 0.9, "probabilities": probs}
            )
        if bad_box and image == "img_03.png":
            preds[0]["bbox"] = [110, 80, 24, 24]  # reaches 6 and 8 pixels past the edges
        data = {"file_name": image, "predictions": preds}
        (folder / f"{Path(image).stem}.json").write_text(json.dumps(data))


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return make_planted(tmp_path_factory.mktemp("objects") / "input")


def _strategy(task: str = TASK) -> dict:
    return {"input": {"type": "EMBEDDINGS", "task": task}, "strategy": {"type": "DIVERSITY"}}


def _objects(planted: Planted, lightly: Path, selection: dict, worker: dict | None = None):
    """The stages up to ``objects``, run directly (no Prefect, no embedding)."""
    cfg = load_configs(worker or {}, selection)
    task = object_task(cfg)
    assert task is not None
    listing = list_input(str(planted.root), str(lightly))
    checked = corruption_check(listing)
    return objects(listing, deduplicate(checked), task)


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


# ------------------------------------------------------------------------ crops and boxes


def test_crops_are_the_planted_objects_and_padding_adds_a_ring(planted, tmp_path):
    lightly = tmp_path / "lightly"
    write_predictions(lightly, planted)
    found = _objects(planted, lightly, {"n_samples": 5, "strategies": [_strategy()]})
    assert (found.n_images, found.n_kept) == (10, 17)
    reader = CropReader(Location(str(planted.root)), found.crops())
    for name in found.kept():
        assert np.array_equal(_pixels(reader.read_crop(name)), patch(planted.kind_of(name)))
    assert found.kept()[:2] == ["img_00-shapes-0-png.png", "img_00-shapes-1-png.png"]

    write_predictions(tmp_path / "lightly2", planted)
    padded = _objects(
        planted,
        tmp_path / "lightly2",
        {"n_samples": 5, "strategies": [_strategy()]},
        {"object_level": {"padding": 0.5}},
    )
    crops = padded.crops()
    reader = CropReader(Location(str(planted.root)), crops)
    for name in padded.kept():
        image, index = parse_crop_name(name, TASK) or ("", 0)
        kind, x, y = planted.boxes[image][index]
        # 24 px box + 50 %: 6 px more on each side, clipped to the image
        want = (max(0, x - 6), max(0, y - 6), min(128, x + 30), min(96, y + 30))
        assert crops[name][1] == want
        px = _pixels(reader.read_crop(name))
        ox, oy = x - want[0], y - want[1]
        assert np.array_equal(px[oy : oy + 24, ox : ox + 24], patch(kind))
        ring = px.copy()
        ring[oy : oy + 24, ox : ox + 24] = BACKGROUND
        assert (ring == BACKGROUND).all()  # the padding holds background only


def test_tiling_and_crop_auto_tasks_give_the_expected_boxes(planted, tmp_path):
    tiling = {
        "n_samples": 4,
        "auto_tasks": [{"type": "TILING", "name": "tiles", "num_rows": 2, "num_cols": 2}],
        "strategies": [_strategy("tiles")],
    }
    found = _objects(planted, tmp_path / "a", tiling)
    assert found.n_kept == 40
    crops = found.crops()
    first = [crops[n][1] for n in found.kept()[:4]]
    assert first == [(0, 0, 64, 48), (64, 0, 128, 48), (0, 48, 64, 96), (64, 48, 128, 96)]
    reader = CropReader(Location(str(planted.root)), crops)
    whole = _pixels(Image.open(planted.root / "img_00.png"))
    assert np.array_equal(_pixels(reader.read_crop(found.kept()[3])), whole[48:96, 64:128])

    overlap = dict(tiling, auto_tasks=[dict(tiling["auto_tasks"][0], num_cols=3, overlap=0.5)])
    found = _objects(planted, tmp_path / "b", overlap)
    boxes = [found.crops()[n][1] for n in found.kept()[:3]]
    # 3 tiles of width 64 overlapping by 32 span 128 pixels; 2 of height 64 overlapping by 32, 96
    assert boxes == [(0, 0, 64, 64), (32, 0, 96, 64), (64, 0, 128, 64)]
    assert found.crops()[found.kept()[3]][1] == (0, 32, 64, 96)

    crop = {
        "n_samples": 2,
        "auto_tasks": [{"type": "CROP", "name": "centre", "bboxs": [[0.5, 0.5, 0.25, 0.5]]}],
        "strategies": [_strategy("centre")],
    }
    found = _objects(planted, tmp_path / "c", crop)
    assert found.n_kept == 10
    assert {found.crops()[n][1] for n in found.kept()} == {(64, 48, 96, 96)}


@pytest.mark.parametrize(
    ("selection", "worker", "words"),
    [
        (
            {"strategies": [_strategy(), {"input": {"type": "METADATA", "key": "lightly.snr"},
                                          "strategy": {"type": "WEIGHTS"}}]},
            {},
            "strategies[1].input: METADATA is not supported yet in an object-level run",
        ),
        (
            {"strategies": [_strategy(), _strategy("other")]},
            {},
            "one object task per run",
        ),
        (
            {"strategies": [_strategy(), {"input": {"type": "EMBEDDINGS"},
                                          "strategy": {"type": "DIVERSITY"}}]},
            {},
            "strategies[1].input: an EMBEDDINGS input without task",
        ),
        (
            {"auto_tasks": [{"type": "TILING", "name": "t", "num_rows": 2, "num_cols": 2}]},
            {},
            "auto_tasks[0]: the TILING task 't' is used by no input",
        ),
        (
            {"strategies": [_strategy(), {"input": {"type": "SCORES", "task": "other",
                                          "score": "uncertainty_margin"},
                                          "strategy": {"type": "WEIGHTS"}}]},
            {},
            "only the predictions of the object task 'shapes' apply per object",
        ),
        ({"strategies": [_strategy()]}, {"embedding_precision": "int8"}, "embedding_precision"),
    ],
)  # fmt: skip
def test_what_object_level_cannot_honour_is_refused_naming_the_key(selection, worker, words):
    cfg = load_configs(worker, {"n_samples": 3, **selection})
    with pytest.raises(ConfigError) as e:
        object_task(cfg)
    assert words in str(e.value)


def test_crop_task_boxes_must_lie_inside_the_image():
    bad = {"type": "CROP", "name": "c", "bboxs": [[0.5, 0.5, 0.6, 0.2]]}
    with pytest.raises(ConfigError, match=r"bboxs\[0\]"):
        load_configs({}, {"n_samples": 1, "auto_tasks": [bad], "strategies": [_strategy("c")]})


# -------------------------------------------------------------------- runs through the flow


def _run_dir(lightly: Path, result) -> Path:
    return lightly / ".lightly" / "runs" / result.run_id


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_object_diversity_through_the_flow_writes_the_planted_crops(
    prefect_server, planted, tmp_path
):
    from thresher.flows import curate

    lightly = tmp_path / "lightly"
    write_predictions(lightly, planted)
    before = _tree_digest(planted.root)
    result = curate(
        input=str(planted.root),
        lightly=str(lightly),
        selection_config={"n_samples": 5, "strategies": [_strategy()]},
    )
    run = _run_dir(lightly, result)
    crops = (run / "filenames" / "selected_crops.txt").read_text().split()
    assert len(crops) == 5
    assert {planted.kind_of(c) for c in crops} == set(KINDS)  # one of each kind
    for name in crops:  # written, and exactly the planted object
        written = Image.open(lightly / ".lightly" / "crops" / TASK / name)
        assert np.array_equal(_pixels(written), patch(planted.kind_of(name)))
    assert len(list((lightly / ".lightly" / "crops" / TASK).rglob("*.png"))) == 5
    images = (run / "filenames" / "selected.txt").read_text().split()
    holding = list(dict.fromkeys((parse_crop_name(c, TASK) or ("",))[0] for c in crops))
    assert images == holding
    removed = set((run / "filenames" / "removed.txt").read_text().split())
    assert removed == set(planted.boxes) - set(images)
    assert result.sizes["n_selected"] == len(images)
    assert result.object_sizes is not None
    assert result.object_sizes["nObjects"] == 17
    assert result.object_sizes["nSelectedObjects"] == 5
    report = json.loads((run / "report.json").read_text())
    sizes = report["generalInformation"]["datasetInformation"]["objectLevelSizes"]
    assert (sizes["nObjects"], sizes["nSelectedObjects"]) == (17, 5)
    assert (run / "report.pdf").stat().st_size > 0
    csv_names = [line.split(",")[0] for line in (run / "embeddings.csv").read_text().split()[1:]]
    assert len(csv_names) == 17 and all(parse_crop_name(n, TASK) for n in csv_names)
    assert _tree_digest(planted.root) == before  # INPUT is never written


def test_scores_apply_per_object_and_crops_are_not_written_without_upload(
    prefect_server, planted, tmp_path
):
    from thresher.flows import curate

    lightly = tmp_path / "lightly"
    write_predictions(lightly, planted)
    scores = {"type": "SCORES", "task": TASK, "score": "uncertainty_least_confidence"}
    result = curate(
        input=str(planted.root),
        lightly=str(lightly),
        worker_config={"crops": {"enable_upload": False}, "object_level": {"padding": 0.1}},
        selection_config={
            "n_samples": -1,
            "strategies": [
                _strategy(),
                {
                    "input": scores,
                    "strategy": {"type": "THRESHOLD", "threshold": 0.5, "operation": "BIGGER"},
                },
            ],
        },
    )
    run = _run_dir(lightly, result)
    crops = (run / "filenames" / "selected_crops.txt").read_text().split()
    assert sorted(planted.kind_of(c) for c in crops) == ["disk"] * 5  # only the uncertain ones
    assert not (lightly / ".lightly" / "crops").exists()
    assert result.object_sizes is not None and result.object_sizes["cropsWritten"] is False


# ------------------------------------------------------------------------ through the CLI


def test_tiling_through_the_cli(planted, tmp_path):
    lightly = tmp_path / "lightly"
    selection = {
        "n_samples": 4,
        "auto_tasks": [{"type": "TILING", "name": "tiles", "num_rows": 2, "num_cols": 2}],
        "strategies": [_strategy("tiles")],
    }
    code, _, err = run_cli(
        "run", str(planted.root), "--lightly", str(lightly),
        "--selection-config", json.dumps(selection), cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert code == 0, err
    written = sorted((lightly / ".lightly" / "crops" / "tiles").rglob("*.png"))
    assert len(written) == 4
    assert all(Image.open(p).size == (64, 48) for p in written)


@pytest.mark.parametrize("mistake", ["box outside the image", "unknown task"])
def test_bad_predictions_exit_2_naming_the_file_and_write_nothing(planted, tmp_path, mistake):
    lightly = tmp_path / "lightly"
    write_predictions(lightly, planted, bad_box=mistake == "box outside the image")
    task = TASK if mistake == "box outside the image" else "vehicles"
    before = _tree_digest(lightly)
    code, prefect, err = run_cli(
        "run", str(planted.root), "--lightly", str(lightly),
        "--selection-config", json.dumps({"n_samples": 3, "strategies": [_strategy(task)]}),
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 2 and not prefect, err
    assert "Traceback" not in err
    text = " ".join(err.split())
    if mistake == "box outside the image":
        assert "predictions/shapes/img_03.json" in text and "predictions[0].bbox" in text
        assert "reaches outside the image, which is 128x96 pixels" in text
    else:
        assert "selection_config.strategies[0].input.task: task 'vehicles'" in text
        assert "tasks.json" in text
    assert _tree_digest(lightly) == before


def test_objects_summary_is_served_from_the_store(planted, tmp_path):
    lightly = tmp_path / "lightly"
    write_predictions(lightly, planted)
    selection = {"n_samples": 5, "strategies": [_strategy()]}
    first = _objects(planted, lightly, selection)
    again = _objects(planted, lightly, selection)
    assert isinstance(again, Objects) and again.cached == "cached" and first.cached == ""
    assert again.kept() == first.kept()


def test_enable_upload_for_tasks_names_the_tasks_whose_crops_are_written():
    selection = {"n_samples": 3, "strategies": [_strategy()]}
    upload = {
        tasks: (
            object_task(
                load_configs({"crops": {"enable_upload_for_tasks": list(tasks)}}, selection)
            )
        )
        for tasks in ((), ("other",), (TASK,))
    }
    assert {k: v.upload for k, v in upload.items() if v is not None} == {
        (): True,  # empty: every task
        ("other",): False,
        (TASK,): True,
    }
    off = object_task(load_configs({"crops": {"enable_upload": False}}, selection))
    assert off is not None and off.upload is False
