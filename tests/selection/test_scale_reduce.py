"""Searches over embeddings past the in-memory bound run on a PCA projection (selection.reduce).

On rows that lie in a subspace of fewer than REDUCED_DIM dimensions the projection keeps every
distance, so DIVERSITY must pick exactly what it picks on the full rows, and the near-duplicate
search (candidates on the projection, checked on the full rows) must find the same groups with
the same distances. On rows with noise in every dimension the picks may part, which
``benchmarks/scale.py --overlap`` measures.
"""

from __future__ import annotations

import numpy as np
import pytest

from thresher.selection import reduce, select
from thresher.selection.near_duplicates import find_near_duplicates

DIV = {
    "n_samples": 60,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


def _low_rank(n: int, d: int, rank: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, rank)) * 3
    z = centers[rng.integers(0, 20, n)] + rng.normal(size=(n, rank))
    basis, _ = np.linalg.qr(rng.normal(size=(d, rank)))
    return (z @ basis.T + rng.normal(size=d)).astype(np.float32)


def test_pca_keeps_distances_of_low_rank_rows_and_diversity_picks_the_same(tmp_path):
    x = _low_rank(3000, 300, 40)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    pca = reduce.fit_pca(mm, sample=1000)
    assert pca.dim == reduce.REDUCED_DIM and pca.explained > 0.9999
    r = pca.transform_all(mm)
    assert r.shape == (3000, reduce.REDUCED_DIM)
    i, j = np.arange(0, 3000, 7), np.arange(1, 3000, 7)
    np.testing.assert_allclose(
        np.linalg.norm(r[i] - r[j], axis=1), np.linalg.norm(x[i] - x[j], axis=1), rtol=1e-3
    )
    full = select(DIV, embeddings=x)
    reduced = select(DIV, embeddings=r)
    assert full.tolist() == reduced.tolist()


def test_search_rows_reduces_only_past_the_bound(tmp_path, monkeypatch):
    x = _low_rank(2000, 200, 30)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    rows, pca = reduce.search_rows(mm)
    assert pca is None and not isinstance(rows, np.memmap)
    np.testing.assert_array_equal(rows, x)
    monkeypatch.setattr(reduce, "FULL_BYTES_MAX", x.nbytes - 1)
    rows, pca = reduce.search_rows(mm)
    assert pca is not None and rows.shape == (2000, reduce.REDUCED_DIM)


@pytest.mark.parametrize("exact_max", [10**9, 100])  # exact search, and the IVF index
def test_near_duplicates_on_the_projection_match_the_full_search(tmp_path, exact_max):
    rng = np.random.default_rng(5)
    x = _low_rank(1500, 256, 200, seed=5) + rng.normal(size=(1500, 256)).astype(np.float32)
    dup = rng.choice(1500, size=60, replace=False)
    x[dup[:30]] = x[dup[30:]] + rng.normal(size=(30, 256)).astype(np.float32) * 0.01
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    want = find_near_duplicates(x, 0.01, backend="numpy")
    assert len(want.groups) >= 30
    pca = reduce.fit_pca(mm, normalize=True)
    assert pca.explained < 0.999  # a real projection: distances shrink
    got = find_near_duplicates(
        pca.transform_all(mm), 0.01, backend="numpy", full=mm, exact_max=exact_max
    )
    assert got.groups == want.groups
    np.testing.assert_allclose(
        np.concatenate([np.array(d) for d in got.distances]),
        np.concatenate([np.array(d) for d in want.distances]),
        atol=1e-5,
    )


def test_checked_pairs_are_bounded_closest_first(tmp_path, monkeypatch):
    """Noise the projection drops makes every pair a candidate: only the closest are checked."""
    from thresher.selection import near_duplicates as nd

    rng = np.random.default_rng(6)
    x = rng.normal(size=(600, 256)).astype(np.float32)  # white noise: PCA keeps ~half
    x[300:310] = x[:10] + rng.normal(size=(10, 256)).astype(np.float32) * 0.01
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    pca = reduce.fit_pca(mm, dim=8, normalize=True)  # 8 of 256 dims: all pairs look close
    monkeypatch.setattr(nd, "MAX_CHECKED_PAIRS", 40)
    got = find_near_duplicates(pca.transform_all(mm), 0.5, backend="numpy", full=mm)
    assert got.n_unchecked > 1000
    assert got.groups == [[i, 300 + i] for i in range(10)]
