"""A 2-D map of the embeddings: PCA fitted on a seeded subsample, by a randomized SVD.

Example:
    >>> xy, ratio = pca_2d(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))
    >>> [round(float(r), 3) for r in ratio]
    [1.0, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.reports.stats import subsample
from thresher.storage.embeddings_npy import read_rows

#: Rows read from the embeddings at a time when projecting (bounds memory on a memmap).
PROJECT_CHUNK = 8192


def pca_basis(
    x: NDArray[Any], n_components: int, *, seed: int = 0, n_iter: int = 4
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:
    """The first ``n_components`` principal axes of the rows of ``x`` (a randomized SVD).

    A full SVD of a (N, 1280) block costs seconds; the leading axes alone need a few products
    with a thin random matrix (Halko, Martinsson and Tropp, 2011), refined by ``n_iter``
    power iterations, which recover the leading axes to float precision on embedding data.

    Args:
        x: (N, D) rows (already the subsample to fit on).
        n_components: Axes wanted.
        seed: Seed of the random test matrix.
        n_iter: Power iterations.

    Returns:
        ``(mean (D,), components (k, D), singular values (k,), total squared norm of the
        centred rows)``, ``k = min(n_components, N, D)``; the components follow a fixed sign
        convention (largest-magnitude entry positive) so the map is stable across runs.
    """
    a = np.array(x, dtype=np.float64)  # a copy, centred in place
    mean = a.mean(axis=0) if len(a) else np.zeros(a.shape[1])
    a -= mean
    total = float(np.einsum("ij,ij->", a, a))
    k = int(min(n_components, *a.shape))
    if k <= 0:
        return mean, np.zeros((0, a.shape[1])), np.zeros(0), total
    width = min(k + 10, *a.shape)
    if width >= min(a.shape) * 0.8:  # small: the exact SVD is as cheap
        _, s, vt = np.linalg.svd(a, full_matrices=False)
    else:
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(a @ rng.standard_normal((a.shape[1], width)))
        for _ in range(n_iter):
            q, _ = np.linalg.qr(a.T @ q)
            q, _ = np.linalg.qr(a @ q)
        _, s, vt = np.linalg.svd(q.T @ a, full_matrices=False)
    comps, s = vt[:k].copy(), s[:k]
    for i in range(len(comps)):
        j = int(np.argmax(np.abs(comps[i])))
        if comps[i, j] < 0:
            comps[i] = -comps[i]
    return mean, comps, s, total


def pca_2d(
    embeddings: NDArray[Any],
    *,
    max_fit_points: int = 10_000,
    seed: int = 0,
    chunk: int = PROJECT_CHUNK,
    rows: NDArray[np.integer[Any]] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Project embeddings to 2-D with PCA fitted on a seeded subsample.

    The embeddings are read ``chunk`` rows at a time and never copied whole, so a read-only
    ``np.memmap`` of any size works in bounded memory (the result is N x 2 floats).

    Args:
        embeddings: Array-like of shape (N, D).
        max_fit_points: The principal axes are fitted on at most this many points.
        seed: Seed of the fitting subsample.
        chunk: Rows projected at a time.
        rows: Project only these rows (the others stay NaN): a map drawn from a sample of a
            million rows then reads the sample, not the whole array.

    Returns:
        ``(coords, explained_variance_ratio)``: float64 (N, 2) and the ratio of the first two
        components (length 2, zeros padded when D < 2 or the data has no variance).
    """
    x = embeddings
    n = len(x)
    if n == 0:
        return np.zeros((0, 2)), np.zeros(2)
    # scikit-learn is no runtime dependency; numpy does a 2-component PCA in a few products.
    mean, vt, s, total = pca_basis(read_rows(x, subsample(n, max_fit_points, seed)), 2, seed=seed)
    comps = np.zeros((2, x.shape[1]))
    comps[: len(vt)] = vt
    ratio = np.zeros(2)
    if total > 0:
        ratio[: len(s)] = s**2 / total
    if rows is None:
        out = np.empty((n, 2))
        for i in range(0, n, chunk):
            out[i : i + chunk] = (
                read_rows(x, np.arange(i, min(n, i + chunk))).astype(np.float64) - mean
            ) @ comps.T
        return out, ratio
    out = np.full((n, 2), np.nan)
    take = np.unique(np.asarray(rows, np.int64))
    for i in range(0, len(take), chunk):
        part = take[i : i + chunk]
        out[part] = (read_rows(x, part).astype(np.float64) - mean) @ comps.T
    return out, ratio
