"""gather_inputs and report_distributions on real files: images, predictions, metadata, tags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from thresher.selection import gather_inputs, report_distributions, select
from thresher.selection.image_metadata import image_metrics
from thresher.selection.report import dump_distributions

N = 12


@pytest.fixture
def locations(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    inp, lig = tmp_path / "input", tmp_path / "lightly"
    rng = np.random.default_rng(0)
    names = []
    for i in range(N):
        name = f"sub/img_{i:02d}.png" if i % 2 else f"img_{i:02d}.png"
        (inp / name).parent.mkdir(parents=True, exist_ok=True)
        # Even rows: noise (sharp); odd rows: flat grey (no edges, uniform rows).
        arr = (
            rng.integers(0, 255, (16, 20, 3), dtype=np.uint8)
            if i % 2 == 0
            else np.full((16, 20, 3), 128, np.uint8)
        )
        Image.fromarray(arr).save(inp / name)
        names.append(name)
    pred = lig / ".lightly" / "predictions"
    (pred / "cls" / "sub").mkdir(parents=True)
    (pred / "tasks.json").write_text('["cls"]')
    (pred / "cls" / "schema.json").write_text(
        json.dumps(
            {
                "task_type": "classification",
                "categories": [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}],
            }
        )
    )
    meta = lig / ".lightly" / "metadata"
    (meta / "sub").mkdir(parents=True)
    (meta / "schema.json").write_text(
        json.dumps(
            [
                {
                    "name": "w",
                    "path": "weather",
                    "defaultValue": "sun",
                    "valueDataType": "CATEGORICAL_STRING",
                },
                {"name": "t", "path": "temp", "defaultValue": 0, "valueDataType": "NUMERIC_FLOAT"},
            ]
        )
    )
    for i, name in enumerate(names):
        stem = name.rsplit(".", 1)[0]
        p = [0.9, 0.1] if i < 8 else [0.45, 0.55]
        (pred / "cls" / f"{stem}.json").write_text(
            json.dumps(
                {
                    "file_name": name,
                    "predictions": [{"category_id": int(i >= 8), "probabilities": p}],
                }
            )
        )
        (meta / f"{stem}.json").write_text(
            json.dumps(
                {
                    "file_name": name,
                    "type": "image",
                    "metadata": {"weather": "rain" if i < 3 else "sun", "temp": float(i)},
                }
            )
        )
    (lig / ".lightly" / "tags").mkdir(parents=True)
    (lig / ".lightly" / "tags" / "qtag.txt").write_text(f"{names[0]}\n{names[2]}\n")
    (lig / ".lightly" / "embeddings").mkdir(parents=True)
    (lig / ".lightly" / "embeddings" / "q.csv").write_text(
        "filenames,embedding_0,embedding_1,labels\nz.png,0.5,0.5,0\n"
    )
    return inp, lig, names


CONFIG: dict[str, Any] = {
    "n_samples": 5,
    "strategies": [
        {"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}},
        {
            "input": {"type": "SCORES", "task": "cls", "score": "uncertainty_margin"},
            "strategy": {"type": "WEIGHTS"},
        },
        {
            "input": {"type": "PREDICTIONS", "task": "cls", "name": "CLASS_DISTRIBUTION"},
            "strategy": {"type": "BALANCE", "distribution": "UNIFORM"},
        },
        {
            "input": {"type": "METADATA", "key": "weather"},
            "strategy": {"type": "BALANCE", "target": {"rain": 0.5}},
        },
        {"input": {"type": "METADATA", "key": "temp"}, "strategy": {"type": "WEIGHTS"}},
        {
            "input": {"type": "METADATA", "key": "lightly.sharpness"},
            "strategy": {"type": "THRESHOLD", "threshold": 5, "operation": "BIGGER"},
        },
        {
            "input": {"type": "METADATA", "key": "lightly.uniformRowRatio"},
            "strategy": {"type": "THRESHOLD", "threshold": 0.5, "operation": "SMALLER"},
        },
        {"input": {"type": "EMBEDDINGS", "tag_name": "qtag"}, "strategy": {"type": "SIMILARITY"}},
        {
            "input": {"type": "EMBEDDINGS", "query_embeddings": "q.csv"},
            "strategy": {"type": "SIMILARITY", "strength": 0.5},
        },
    ],
}


def test_gather_select_report(locations: tuple[Path, Path, list[str]]) -> None:
    inp, lig, names = locations
    x = np.random.default_rng(1).normal(size=(N, 2)).astype(np.float32)
    inputs = gather_inputs(
        CONFIG, input_url=str(inp), lightly_url=str(lig), filenames=names, embeddings=x
    )
    assert set(inputs) == {
        "embeddings",
        "filenames",
        "scores",
        "predictions",
        "metadata",
        "queries",
    }
    md = inputs["metadata"]
    # Noise images are sharp and have no uniform rows; flat ones the opposite.
    assert (md["lightly.sharpness"][0::2] > 5).all() and (md["lightly.sharpness"][1::2] == 0).all()
    assert (md["lightly.uniformRowRatio"][1::2] == 1).all()
    assert inputs["queries"]["qtag"] == [names[0], names[2]]
    assert inputs["queries"]["q.csv"].shape == (1, 2)
    picks = select(CONFIG, **inputs, seed=0)
    # Both thresholds keep only the noise images (even rows): 6 rows, pick 5.
    assert len(picks) == 5 and all(p % 2 == 0 for p in picks)
    rep = {d.label: d for d in report_distributions(CONFIG, inputs, picks, seed=0)}
    json.dumps(dump_distributions(list(rep.values())))  # JSON-serialisable
    assert set(rep) == {
        "SCORES cls uncertainty_margin",
        "PREDICTIONS cls CLASS_DISTRIBUTION",
        "METADATA weather",
        "METADATA temp",
        "METADATA lightly.sharpness",
        "METADATA lightly.uniformRowRatio",
    }
    num = rep["METADATA temp"]
    assert num.kind == "numeric" and num.range == (0.0, 11.0)
    assert sum(num.input.counts) == N and sum(num.selected.counts) == 5
    assert sum(num.random.counts) == 5
    assert num.selected.metrics.mean is not None
    cat = rep["METADATA weather"]
    assert cat.kind == "categorical" and cat.input.counts == {"rain": 3, "sun": 9}
    pr = rep["PREDICTIONS cls CLASS_DISTRIBUTION"]
    assert pr.input.counts == {"cat": 8, "dog": 4}
    assert pr.strategies == ["BALANCE"]


def test_image_metrics_hand_worked() -> None:
    # A 3x3 image with one bright centre: Laplacian at the only interior pixel is -4*255.
    img = np.zeros((3, 3, 3), np.uint8)
    img[1, 1] = 255
    m = image_metrics(img, 123)
    assert m["lightly.sizeInBytes"] == 123
    assert m["lightly.sharpness"] == 0.0  # one interior value: std 0
    # Rows 0 and 2 are uniform (all 0); row 1 spans 255.
    assert m["lightly.uniformRowRatio"] == pytest.approx(2 / 3)
    # Grey mean 255/9, std sqrt(8)*255/9: snr = 1/sqrt(8).
    assert m["lightly.snr"] == pytest.approx(1 / np.sqrt(8), rel=1e-4)


def test_default_recipe_report_is_empty() -> None:
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    picks = select({"n_samples": 4}, embeddings=x)
    assert report_distributions({"n_samples": 4}, {"embeddings": x}, picks, 0) == []
