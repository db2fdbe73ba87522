"""The stored embeddings are streamed and memory-mapped; later stages never load them whole.

Real stages on real files: a CSV input is stored as a memory-mapped ``embeddings.npy``; past
the in-memory bound the select stage picks on the PCA projection (same picks on low-rank rows)
and the near-duplicate stage writes its kept rows in chunks; ``thresher.*`` quality metadata
comes from the corruption check's stored scores (the images are not decoded again).
"""

from __future__ import annotations

import numpy as np
import pytest

from thresher.config import load_configs
from thresher.selection import reduce
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.embed import embed
from thresher.stages.list_input import list_input
from thresher.stages.near_duplicates import near_duplicates
from thresher.stages.select import select
from thresher.storage.embeddings_csv import write_embeddings_csv

N = 400


def _setup(tmp_path, *, dim=200, rank=30, name="e.npy"):
    from PIL import Image

    rng = np.random.default_rng(0)
    inp = tmp_path / "input"
    inp.mkdir()
    names = []
    for i in range(N):
        grey = 10 if i % 5 == 0 else 200  # every 5th image dark
        arr = np.clip(rng.normal(grey, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(inp / f"img_{i:03d}.png")
        names.append(f"img_{i:03d}.png")
    centers = rng.normal(size=(10, rank)) * 3
    z = centers[rng.integers(0, 10, N)] + rng.normal(size=(N, rank))
    basis, _ = np.linalg.qr(rng.normal(size=(dim, rank)))
    x = (z @ basis.T + 5.0).astype(np.float32)  # low rank: the projection keeps distances
    folder = tmp_path / "lightly" / ".lightly" / "embeddings"
    folder.mkdir(parents=True)
    if name.endswith(".npy"):
        np.save(folder / name, x)
        (folder / "e.filenames.txt").write_text("".join(n + "\n" for n in names))
    else:
        write_embeddings_csv(str(folder / name), names, x)
    return inp, tmp_path / "lightly", x


def _upstream(inp, lightly, worker):
    cfg = load_configs(worker, {"n_samples": 5})
    listing = list_input(str(inp), str(lightly))
    checked = corruption_check(listing)
    dedup = deduplicate(checked)
    return listing, checked, dedup, embed(listing, dedup, cfg.worker, cfg.lightly)


def test_a_csv_input_is_stored_as_a_read_only_memmap(tmp_path):
    inp, lightly, x = _setup(tmp_path, name="e.csv")
    *_, embedded = _upstream(inp, lightly, {"embeddings": "e.csv", "normalize_embeddings": False})
    emb = embedded.embeddings()
    assert isinstance(emb, np.memmap) and not emb.flags.writeable
    np.testing.assert_allclose(np.asarray(emb), x, rtol=1e-6)


DIV = {
    "n_samples": 40,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


def test_select_past_the_bound_picks_on_the_projection_the_same_rows(tmp_path, monkeypatch):
    inp, lightly, _ = _setup(tmp_path)
    listing, _checked, _dedup, embedded = _upstream(inp, lightly, {"embeddings": "e.npy"})
    sel_cfg = load_configs({}, DIV).selection
    full = select(listing, embedded, sel_cfg, seed=0).indices().tolist()
    monkeypatch.setattr(reduce, "FULL_BYTES_MAX", 1000)  # 400 x 200 floats are "too large"
    seed1 = load_configs({}, {**DIV, "n_samples": 41}).selection  # another key: not cached
    reduced = select(listing, embedded, seed1, seed=0).indices().tolist()
    assert reduced[:40] == full


def test_near_duplicate_removal_past_the_bound_writes_the_kept_rows(tmp_path, monkeypatch):
    inp, lightly, x = _setup(tmp_path, dim=200, rank=150)
    folder = lightly / ".lightly" / "embeddings"
    x[7] = x[3] * 1.0001  # a near duplicate of row 3
    np.save(folder / "e.npy", x)
    _listing, _checked, dedup, embedded = _upstream(inp, lightly, {"embeddings": "e.npy"})
    monkeypatch.setattr(reduce, "FULL_BYTES_MAX", 1000)
    near = near_duplicates(embedded, dedup, threshold=0.001, remove=True)
    assert near.document()["groups"] == [["img_003.png", "img_007.png"]]
    kept = near.embedded.embeddings()
    assert isinstance(kept, np.memmap) and kept.shape == (N - 1, 200)
    assert "img_007.png" not in near.embedded.filenames()
    np.testing.assert_array_equal(np.asarray(kept)[7], np.asarray(embedded.embeddings())[8])


@pytest.mark.parametrize("with_check", [True, False])
def test_quality_metadata_comes_from_the_corruption_check(tmp_path, with_check):
    inp, lightly, _ = _setup(tmp_path)
    listing, checked, _dedup, embedded = _upstream(inp, lightly, {"embeddings": "e.npy"})
    selection = load_configs(
        {},
        {
            "n_samples": 20,
            "strategies": [
                {
                    "input": {"type": "METADATA", "key": "thresher.dark_score"},
                    "strategy": {"type": "WEIGHTS"},
                }
            ],
        },
    ).selection
    for p in inp.iterdir():  # the images are gone: only the stored scores can answer
        p.write_bytes(b"not an image any more")
    if not with_check:
        with pytest.raises(Exception, match="cannot decode image for metadata"):
            select(listing, embedded, selection, seed=0)
        return
    picks = select(listing, embedded, selection, seed=0, checked=checked).indices()
    names = embedded.filenames()
    assert all(int(names[i][4:7]) % 5 == 0 for i in picks)  # the dark ones
