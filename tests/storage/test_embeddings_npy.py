"""worker_config.embeddings as a .npy + .filenames.txt: the embed stage's large-run input.

Real files, real stages (list_input, corruption_check, deduplicate, embed) on a LIGHTLY folder
and on an in-memory fsspec bucket; every error path names the file and the fix.
"""

from __future__ import annotations

import numpy as np
import pytest

from thresher.config import load_configs
from thresher.errors import ConfigError, InputError, SchemaError
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.embed import embed
from thresher.stages.list_input import list_input
from thresher.storage.embeddings_npy import (
    check_npy_input,
    iter_chunks,
    open_npy,
    read_rows,
)
from thresher.storage.location import Location

N, D = 12, 6


def _images(root, n=N):
    from PIL import Image

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
            root / f"img_{i:02d}.png"
        )
    return [f"img_{i:02d}.png" for i in range(n)]


def _put(lightly, name, arr, names):
    folder = lightly / ".lightly" / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / name, arr)
    if names is not None:
        stem = name.removesuffix(".npy")
        (folder / f"{stem}.filenames.txt").write_text("".join(n + "\n" for n in names))


def _embed(inp, lightly, name="e.npy", normalize=True):
    cfg = load_configs({"embeddings": name, "normalize_embeddings": normalize}, {"n_samples": 2})
    listing = list_input(str(inp), str(lightly))
    dedup = deduplicate(corruption_check(listing))
    return embed(listing, dedup, cfg.worker, cfg.lightly)


@pytest.fixture
def data(tmp_path):
    names = _images(tmp_path / "input")
    x = np.random.default_rng(1).normal(size=(N, D)).astype(np.float32)
    return tmp_path / "input", tmp_path / "lightly", names, x


def test_npy_rows_are_matched_by_name_and_stored_as_a_read_only_memmap(data):
    inp, lightly, names, x = data
    order = np.random.default_rng(2).permutation(N)  # the file's rows in another order
    _put(lightly, "e.npy", x[order], [names[i] for i in order])
    embedded = _embed(inp, lightly, normalize=False)
    emb = embedded.embeddings()
    assert isinstance(emb, np.memmap) and not emb.flags.writeable
    assert embedded.filenames() == names
    np.testing.assert_array_equal(np.asarray(emb), x)
    assert embedded.model == "embeddings .npy (e.npy)"
    # normalised (the default), float16 accepted
    _put(lightly, "h.npy", x.astype(np.float16), names)
    emb16 = _embed(inp, lightly, "h.npy").embeddings()
    np.testing.assert_allclose(np.linalg.norm(emb16, axis=1), 1.0, atol=1e-5)
    ref = x.astype(np.float16).astype(np.float32)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(emb16), ref, atol=1e-6)


def test_npy_rows_of_dropped_files_are_ignored(data):
    inp, lightly, names, x = data
    (inp / "img_03.png").write_bytes((inp / "img_02.png").read_bytes())  # a duplicate
    _put(lightly, "e.npy", x, names)
    embedded = _embed(inp, lightly, normalize=False)
    assert "img_03.png" not in embedded.filenames() and embedded.n == N - 1
    np.testing.assert_array_equal(np.asarray(embedded.embeddings())[3], x[4])


@pytest.mark.parametrize(
    ("arr", "names", "error", "words"),
    [
        ("rows", "missing", SchemaError, ["has no filenames file", "e.filenames.txt"]),
        ("rows", "short", SchemaError, ["has 12 rows but", "lists 11 file names"]),
        ("rows", "unknown", InputError, ["1 rows name files not in the input", "nope.png"]),
        ("rows", "lacking", InputError, ["1 input files have no row", "img_11.png"]),
        ("f64", "ok", SchemaError, ["float64", "x.astype(numpy.float32)"]),
        ("3d", "ok", SchemaError, ["must be 2-D"]),
        ("nan", "ok", SchemaError, ["img_05.png", "NaN or infinite"]),
    ],
)
def test_npy_input_errors_name_the_file_and_the_fix(data, arr, names, error, words):
    inp, lightly, all_names, x = data
    a = {
        "rows": x,
        "f64": x.astype(np.float64),
        "3d": x.reshape(N, 2, 3),
        "nan": np.where(np.arange(N)[:, None] == 5, np.nan, x).astype(np.float32),
    }[arr]
    listed = {
        "missing": None,
        "ok": all_names,
        "short": all_names[:-1],
        "unknown": [*all_names[:-1], "nope.png"],
        "lacking": [*all_names[:-1], "img_00.png"],
    }[names]
    if names == "lacking":  # 12 rows, img_00 twice, img_11 without a row
        listed = [*all_names[:-1], "img_00.png"]
    _put(lightly, "e.npy", a, listed)
    with pytest.raises(error) as err:
        _embed(inp, lightly)
    for w in words:
        assert w in str(err.value)
    assert "e.npy" in str(err.value) or "worker_config.embeddings" in str(err.value)


def test_preflight_check_reads_only_the_header_and_the_names(data):
    _inp, lightly, names, x = data
    _put(lightly, "e.npy", x, names)
    loc = Location(str(lightly))
    assert check_npy_input(loc, ".lightly/embeddings/e.npy", names, "worker_config.embeddings") == D
    with pytest.raises(ConfigError, match=r"worker_config\.embeddings: .*nope\.npy was not found"):
        check_npy_input(loc, ".lightly/embeddings/nope.npy", names, "worker_config.embeddings")
    _put(lightly, "f.npy", np.asfortranarray(x), names)
    with pytest.raises(SchemaError, match="Fortran order"):
        check_npy_input(loc, ".lightly/embeddings/f.npy", names, "worker_config.embeddings")
    with pytest.raises(InputError, match="not in the input"):
        check_npy_input(loc, ".lightly/embeddings/e.npy", names[1:], "worker_config.embeddings")


def test_read_rows_and_iter_chunks_read_a_memmap_like_slicing(tmp_path):
    x = np.random.default_rng(3).normal(size=(1000, 7)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    m = open_npy(str(tmp_path / "x.npy"), "x.npy")
    idx = np.array([999, 0, 5, 6, 7, 300, 301, 5, 998])
    np.testing.assert_array_equal(read_rows(m, idx), x[idx])
    np.testing.assert_array_equal(read_rows(m[10:], [0, 1]), x[10:12])  # a view: sliced
    got = np.concatenate([c for _, c in iter_chunks(m, 128)])
    np.testing.assert_array_equal(got, x)
    assert [a for a, _ in iter_chunks(m, 400)] == [0, 400, 800]
    with pytest.raises(IndexError):
        read_rows(m, [1000])


def test_embed_stage_on_a_bucket_maps_a_local_copy(data, tmp_path, monkeypatch):
    """LIGHTLY in a (memory://) bucket: the .npy is read from a cached local copy."""
    import fsspec

    inp, _, names, x = data
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path / "home"))
    fs = fsspec.filesystem("memory")
    url = "memory://npy-bucket/lightly"
    for rel, raw in [
        (".lightly/embeddings/e.npy", _npy_bytes(x)),
        (".lightly/embeddings/e.filenames.txt", "".join(n + "\n" for n in names).encode()),
    ]:
        fs.pipe_file(f"/npy-bucket/lightly/{rel}", raw)
    try:
        cfg = load_configs({"embeddings": "e.npy", "normalize_embeddings": False}, {"n_samples": 2})
        listing = list_input(str(inp), url)
        embedded = embed(listing, deduplicate(corruption_check(listing)), cfg.worker, cfg.lightly)
        emb = embedded.embeddings()
        assert isinstance(emb, np.memmap)
        assert str(tmp_path / "home") in str(emb.filename)
        np.testing.assert_array_equal(np.asarray(emb), x)
    finally:
        fs.rm("/npy-bucket", recursive=True)


def _npy_bytes(x):
    import io

    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


def test_streamed_csv_and_parquet_hold_what_the_whole_array_writers_write(tmp_path):
    import pyarrow.parquet as pq

    from thresher.stages.write_results import _write_embeddings_parquet
    from thresher.storage.embeddings_csv import write_embeddings_csv, write_embeddings_csv_rows

    x = np.random.default_rng(4).normal(size=(50, 5)).astype(np.float32)
    names = [f"d/img,{i}.png" if i % 7 == 0 else f"img_{i}.png" for i in range(50)]
    np.save(tmp_path / "x.npy", x)
    m = open_npy(str(tmp_path / "x.npy"), "x.npy")
    loc = Location(str(tmp_path / "out"), writable=True)
    write_embeddings_csv_rows(loc, "a.csv", names, m, chunk_rows=8)
    write_embeddings_csv(loc, names, x, "b.csv")
    assert (tmp_path / "out/a.csv").read_bytes() == (tmp_path / "out/b.csv").read_bytes()
    _write_embeddings_parquet(loc, "e.parquet", names, m)
    table = pq.read_table(tmp_path / "out/e.parquet")
    assert table.column("filename").to_pylist() == names
    np.testing.assert_array_equal(np.array(table.column("embedding").to_pylist()), x)
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp-")]
