"""The .lightly/predictions reader on real files in a temporary LIGHTLY folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from thresher.errors import SchemaError
from thresher.storage.location import Location
from thresher.storage.predictions import read_predictions, read_tasks


def write(root: Path, rel: str, data: Any) -> Path:
    p = root / ".lightly" / "predictions" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


CLS_SCHEMA = {
    "task_type": "classification",
    "categories": [{"id": 0, "name": "cat"}, {"id": 2, "name": "dog"}],
}
DET_SCHEMA = {
    "task_type": "object-detection",
    "categories": [{"id": 1, "name": "car"}, {"id": 3, "name": "bus"}],
}


@pytest.fixture
def lightly(tmp_path: Path) -> Path:
    write(tmp_path, "tasks.json", ["cls", "det"])
    write(tmp_path, "cls/schema.json", CLS_SCHEMA)
    write(
        tmp_path,
        "cls/a.json",
        {"file_name": "a.jpg", "predictions": [{"category_id": 2, "probabilities": [0.3, 0.7]}]},
    )
    write(
        tmp_path, "cls/sub/b.json", {"file_name": "sub/b.png", "predictions": [{"category_id": 0}]}
    )
    write(tmp_path, "det/schema.json", DET_SCHEMA)
    write(
        tmp_path,
        "det/a.json",
        {
            "file_name": "a.jpg",
            "predictions": [
                {"category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
                {
                    "category_id": 1,
                    "bbox": [5, 5, 10, 10],
                    "score": 0.5,
                    "probabilities": [0.5, 0.5],
                },
                {"category_id": 3, "bbox": [1, 1, 2, 2], "score": 0.8},
            ],
        },
    )
    return tmp_path


def test_classification(lightly: Path) -> None:
    p = read_predictions(Location(str(lightly)), ["a.jpg", "sub/b.png", "c.jpg"], "cls")
    assert p.category_names == ["cat", "dog"] and p.category_ids.tolist() == [0, 2]
    expected = np.array([[0.3, 0.7], [1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(p.class_distribution, expected, atol=1e-6)
    assert p.has_predictions.tolist() == [True, True, False]
    # [0.3, 0.7], C=2: least confidence (1-.7)/(1-.5) = .6; margin 1-(.7-.3) = .6;
    # entropy -(.3 ln .3 + .7 ln .7)/ln 2 = .881.
    assert p.scores["uncertainty_least_confidence"][0] == pytest.approx(0.6, abs=1e-5)
    assert p.scores["uncertainty_margin"][0] == pytest.approx(0.6, abs=1e-5)
    assert p.scores["uncertainty_entropy"][0] == pytest.approx(0.8813, abs=1e-3)
    assert p.scores["uncertainty_margin"][1] == 0.0  # one-hot: certain


def test_detection_sums_and_counts(lightly: Path) -> None:
    p = read_predictions(Location(f"file://{lightly}"), ["a.jpg", "x.jpg"], "det")
    # Objects: car [1, 0] + car [.5, .5] + bus [0, 1] = [1.5, 1.5]; counts [2, 1].
    np.testing.assert_allclose(p.class_distribution[0], [1.5, 1.5])
    assert p.category_counts.tolist() == [[2, 1], [0, 0]]
    # Max over objects; the [.5, .5] object is maximally uncertain.
    assert p.scores["uncertainty_margin"][0] == pytest.approx(1.0)
    assert read_tasks(Location(str(lightly))) == ["cls", "det"]


@pytest.mark.parametrize(
    ("rel", "data", "field"),
    [
        ("cls/schema.json", {"task_type": "ranking", "categories": []}, "task_type"),
        (
            "cls/schema.json",
            {"task_type": "classification", "categories": [{"id": -1, "name": "x"}]},
            "categories[0].id",
        ),
        (
            "cls/schema.json",
            {
                "task_type": "classification",
                "categories": [{"id": 0, "name": "x"}, {"id": 0, "name": "y"}],
            },
            "categories[1].id",
        ),
        (
            "cls/a.json",
            {"file_name": "a.jpg", "predictions": [{"category_id": 5}]},
            "predictions[0].category_id",
        ),
        (
            "cls/a.json",
            {
                "file_name": "a.jpg",
                "predictions": [{"category_id": 0, "probabilities": [0.9, 0.9]}],
            },
            "predictions[0].probabilities",
        ),
        ("cls/a.json", {"predictions": []}, "file_name"),
        ("cls/a.json", "{not json", "<file>"),
        (
            "det/a.json",
            {
                "file_name": "a.jpg",
                "predictions": [{"category_id": 1, "bbox": [0, 0, 1], "score": 0.5}],
            },
            "predictions[0].bbox",
        ),
        (
            "det/a.json",
            {"file_name": "a.jpg", "predictions": [{"category_id": 1, "bbox": [0, 0, 1, 1]}]},
            "predictions[0].score",
        ),
    ],
)
def test_schema_errors_name_file_and_field(lightly: Path, rel: str, data: Any, field: str) -> None:
    path = write(lightly, rel, data)
    task = rel.split("/")[0]
    with pytest.raises(SchemaError) as e:
        read_predictions(Location(str(lightly)), ["a.jpg"], task)
    assert e.value.field == field
    assert e.value.path.endswith(str(path.relative_to(lightly)))


def test_unlisted_task_refused(lightly: Path) -> None:
    write(lightly, "tasks.json", ["det"])
    with pytest.raises(SchemaError, match="'cls' is not listed"):
        read_predictions(Location(str(lightly)), ["a.jpg"], "cls")


def test_memory_filesystem() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/pl/.lightly/predictions/tasks.json", b'["cls"]')
    fs.pipe("/pl/.lightly/predictions/cls/schema.json", json.dumps(CLS_SCHEMA).encode())
    fs.pipe(
        "/pl/.lightly/predictions/cls/a.json",
        b'{"file_name": "a.jpg", "predictions": [{"category_id": 2}]}',
    )
    p = read_predictions(Location("memory://pl"), ["a.jpg"], "cls")
    assert p.class_distribution.tolist() == [[0.0, 1.0]]
