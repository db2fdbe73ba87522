"""Embeddings CSVs in the Lightly format: exact text, round trips, matching, errors."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest

from thresher.errors import InputError, SchemaError, StorageError
from thresher.storage.embeddings_csv import (
    match_embeddings,
    read_embeddings_csv,
    write_embeddings_csv,
)


def test_exact_format() -> None:
    buf = io.BytesIO()
    emb = np.array([[0.5, -1.25], [3.0, 0.1]], dtype=np.float32)
    write_embeddings_csv(buf, ["a/b.png", "c,d é.jpg"], emb)
    assert buf.getvalue().decode("utf-8") == (
        'filenames,embedding_0,embedding_1,labels\na/b.png,0.5,-1.25,0\n"c,d é.jpg",3,0.1,0\n'
    )


@pytest.mark.parametrize("where", ["local", "memory"])
def test_round_trip_is_exact(where: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(50, 7)).astype(np.float32)
    names = [f"dir {i % 3}/img_{i}.jpg" for i in range(50)]
    url = (
        str(tmp_path / "embeddings.csv")
        if where == "local"
        else f"memory://emb-{uuid.uuid4().hex}/embeddings.csv"
    )
    write_embeddings_csv(url, names, emb)
    got_names, got = read_embeddings_csv(url)
    assert got_names == names
    assert got.dtype == np.float32 and np.array_equal(got, emb)


def test_text_file_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        write_embeddings_csv(fh, [], np.zeros((0, 3), dtype=np.float32))
    assert path.read_text() == "filenames,embedding_0,embedding_1,embedding_2,labels\n"
    names, emb = read_embeddings_csv(str(path))
    assert names == [] and emb.shape == (0, 3)


def test_reads_lightly_written_csv_with_bom_and_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(
        b"\xef\xbb\xbffilenames,embedding_0,embedding_1,labels,masked\r\n"
        b"x.png,1.0,2.0,0,0\r\ny.png,3e-1,-4,0,1\r\n"
    )
    names, emb = read_embeddings_csv(str(path))
    assert names == ["x.png", "y.png"]
    np.testing.assert_allclose(emb, [[1, 2], [0.3, -4]])


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("name,embedding_0,labels\na,1,0\n", "filenames"),
        ("filenames,labels\na,0\n", "embedding_0"),
        ("filenames,embedding_1,embedding_0,labels\na,1,2,0\n", "embedding_*"),
        ("filenames,embedding_0,score,labels\na,1,2,0\n", "score"),
        ("filenames,embedding_0,labels\na,abc,0\n", "embedding_0"),
        ("filenames,embedding_0,labels\na,,0\n", "embedding_0"),
        ("filenames,embedding_0,labels\na,nan,0\n", "embedding_0"),
        ("filenames,embedding_0,labels\na,1,0\na,2,0\n", "filenames"),
    ],
)
def test_schema_errors_name_file_and_field(text: str, field: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(SchemaError) as info:
        read_embeddings_csv(str(path))
    assert info.value.field == field and "bad.csv" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"nope\.csv: file not found"):
        read_embeddings_csv(str(tmp_path / "nope.csv"))


def test_write_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"shape \(len\(filenames\), D\)"):
        write_embeddings_csv(io.BytesIO(), ["a"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"NaN"):
        write_embeddings_csv(io.BytesIO(), ["a"], np.full((1, 3), np.nan))


def test_match_reorders_to_the_input() -> None:
    emb = np.arange(6, dtype=np.float32).reshape(3, 2)
    out = match_embeddings(["a", "b", "c"], emb, ["c", "a", "b"])
    np.testing.assert_array_equal(out, [[4, 5], [0, 1], [2, 3]])
    out = match_embeddings(["a", "b", "c"], emb, ["b"], also_known=["a", "c"])
    np.testing.assert_array_equal(out, [[2, 3]])


def test_match_lists_up_to_ten_missing_and_extra() -> None:
    csv_names = [f"csv_{i}.png" for i in range(12)] + ["both.png"]
    inputs = ["both.png"] + [f"in_{i}.png" for i in range(3)]
    with pytest.raises(InputError) as info:
        match_embeddings(csv_names, np.zeros((13, 2)), inputs)
    msg = str(info.value)
    assert "3 input files have no row: 'in_0.png', 'in_1.png', 'in_2.png'" in msg
    assert "12 rows name files not in the input" in msg
    assert "'csv_9.png' and 2 more" in msg and "csv_10.png" not in msg
    assert "worker_config.embeddings" in msg


def test_memory_url_with_storage_options() -> None:
    url = f"memory://emb-{uuid.uuid4().hex}/e.csv"
    write_embeddings_csv(url, ["a"], np.ones((1, 2)), storage_options={})
    assert fsspec.open(url, "rb").open().read().startswith(b"filenames,embedding_0")
    assert read_embeddings_csv(url, storage_options={})[0] == ["a"]
