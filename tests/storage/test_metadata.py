"""The .lightly/metadata reader on real files in a temporary LIGHTLY folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from thresher.errors import SchemaError
from thresher.storage.location import Location
from thresher.storage.metadata import read_metadata, read_metadata_schema

SCHEMA = [
    {
        "name": "Temperature",
        "path": "weather.temperature",
        "defaultValue": 20,
        "valueDataType": "NUMERIC_FLOAT",
    },
    {"name": "Cars", "path": "cars", "defaultValue": None, "valueDataType": "NUMERICAL_INT"},
    {
        "name": "Scene",
        "path": "scene",
        "defaultValue": "unknown",
        "valueDataType": "CATEGORICAL_STRING",
    },
    {
        "name": "Night",
        "path": "night",
        "defaultValue": False,
        "valueDataType": "CATEGORICAL_BOOLEAN",
    },
]


def write(root: Path, rel: str, data: Any) -> Path:
    p = root / ".lightly" / "metadata" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


@pytest.fixture
def lightly(tmp_path: Path) -> Path:
    write(tmp_path, "schema.json", SCHEMA)
    write(
        tmp_path,
        "a.json",
        {
            "file_name": "a.jpg",
            "type": "image",
            "metadata": {
                "weather": {"temperature": 31.5},
                "cars": 3,
                "scene": "city",
                "night": True,
            },
        },
    )
    write(
        tmp_path,
        "sub/b.json",
        {"file_name": "sub/b.png", "type": "image", "metadata": {"scene": "road"}},
    )
    return tmp_path


def test_values_and_defaults(lightly: Path) -> None:
    names = ["a.jpg", "sub/b.png", "missing.jpg"]
    v = read_metadata(Location(str(lightly)), names)
    assert v["weather.temperature"].tolist() == [31.5, 20.0, 20.0]
    assert v["cars"][0] == 3 and np.isnan(v["cars"][1:]).all()  # no default: NaN
    assert v["scene"].tolist() == ["city", "road", "unknown"]
    assert v["night"].tolist() == ["true", "false", "false"]
    only = read_metadata(Location(str(lightly)), names, ["scene"])
    assert list(only) == ["scene"]
    assert read_metadata_schema(Location(str(lightly)))["cars"].numeric


@pytest.mark.parametrize(
    ("rel", "data", "field"),
    [
        (
            "schema.json",
            [{"name": "x", "path": "x", "valueDataType": "FLOAT"}],
            "[0].valueDataType",
        ),
        (
            "schema.json",
            [{"name": "x", "path": "lightly.x", "valueDataType": "NUMERIC_INT"}],
            "[0].path",
        ),
        (
            "schema.json",
            [{"name": "x", "path": "x", "valueDataType": "NUMERIC_INT", "defaultValue": "zero"}],
            "[0].defaultValue",
        ),
        ("schema.json", {"not": "a list"}, "<root>"),
        (
            "a.json",
            {"file_name": "a.jpg", "type": "image", "metadata": {"cars": 2.5}},
            "metadata.cars",
        ),
        (
            "a.json",
            {"file_name": "a.jpg", "type": "image", "metadata": {"night": "yes"}},
            "metadata.night",
        ),
        ("a.json", {"file_name": "a.jpg", "type": "photo", "metadata": {}}, "type"),
        ("a.json", {"file_name": "a.jpg", "metadata": []}, "metadata"),
        ("a.json", "][", "<file>"),
    ],
)
def test_schema_errors_name_file_and_field(lightly: Path, rel: str, data: Any, field: str) -> None:
    path = write(lightly, rel, data)
    with pytest.raises(SchemaError) as e:
        read_metadata(Location(str(lightly)), ["a.jpg"])
    assert e.value.field == field
    assert e.value.path.endswith(str(path.relative_to(lightly)))


def test_unknown_key(lightly: Path) -> None:
    with pytest.raises(SchemaError, match="key not in the schema"):
        read_metadata(Location(str(lightly)), ["a.jpg"], ["weather.humidity"])


def test_missing_schema(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="file not found"):
        read_metadata(Location(str(tmp_path)), ["a.jpg"])
