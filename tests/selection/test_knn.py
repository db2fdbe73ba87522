"""The fast knn backends against the numpy brute-force reference."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from thresher.selection.knn import Backend, knn

BACKENDS: list[Backend] = ["torch"]
if importlib.util.find_spec("faiss") is not None:
    BACKENDS.append("faiss")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("exclude_self", [False, True])
def test_backends_agree_with_reference(backend: Backend, exclude_self: bool) -> None:
    rng = np.random.default_rng(0)
    db = rng.normal(size=(700, 12)).astype(np.float32)
    q = db if exclude_self else rng.normal(size=(300, 12)).astype(np.float32)
    d0, i0 = knn(q, db, 7, exclude_self=exclude_self, backend="numpy", chunk_size=64)
    d1, i1 = knn(q, db, 7, exclude_self=exclude_self, backend=backend, chunk_size=64)
    np.testing.assert_allclose(d0, d1, rtol=1e-4, atol=1e-4)
    assert (i0 == i1).mean() > 0.999


def test_reference_matches_full_sort() -> None:
    rng = np.random.default_rng(1)
    db = rng.normal(size=(50, 3)).astype(np.float32)
    q = rng.normal(size=(5, 3)).astype(np.float32)
    d, i = knn(q, db, 4, backend="numpy")
    full = np.linalg.norm(q[:, None] - db[None], axis=2)
    assert np.array_equal(i, np.argsort(full, axis=1, kind="stable")[:, :4])
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :4], rtol=1e-5, atol=1e-5)


def test_exclude_self_and_k_clipped() -> None:
    x = np.array([[0.0], [1.0], [5.0]], np.float32)
    _, i = knn(x, x, 10, exclude_self=True, backend="numpy")
    assert i.shape == (3, 2)
    assert i[:, 0].tolist() == [1, 0, 1]
    assert all(r not in row for r, row in enumerate(i.tolist()))


def test_ties_ordered_by_index_in_every_backend() -> None:
    db = np.array([[1.0], [-1.0], [1.0], [-1.0]], np.float32)
    q = np.zeros((1, 1), np.float32)
    every: list[Backend] = ["numpy", *BACKENDS]
    for b in every:
        assert knn(q, db, 4, backend=b)[1].tolist() == [[0, 1, 2, 3]], b


def test_bad_arguments() -> None:
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="'k' parameter"):
        knn(x, x, 0)
    with pytest.raises(ValueError, match="'backend' parameter"):
        knn(x, x, 1, backend="annoy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="D"):
        knn(x, np.zeros((3, 3), np.float32), 1)
