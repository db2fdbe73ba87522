"""A 2-D map of the embeddings: PCA fitted by SVD on a seeded subsample.

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


def pca_2d(
    embeddings: NDArray[Any],
    *,
    max_fit_points: int = 10_000,
    seed: int = 0,
    chunk: int = 65_536,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Project embeddings to 2-D with PCA fitted by SVD on a seeded subsample.

    Args:
        embeddings: Array of shape (N, D).
        max_fit_points: The principal axes are fitted on at most this many points.
        seed: Seed of the fitting subsample.
        chunk: Rows projected at a time.

    Returns:
        ``(coords, explained_variance_ratio)``: float64 (N, 2) and the ratio of the first two
        components (length 2, zeros padded when D < 2 or the data has no variance).
    """
    x = np.asarray(embeddings)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2)), np.zeros(2)
    # One numpy SVD of a <= 10k-row subsample is all a 2-component PCA needs; scikit-learn is
    # no longer a runtime dependency and would add ~40 MB for this one call.
    fit = x[subsample(n, max_fit_points, seed)].astype(np.float64)
    mean = fit.mean(axis=0)
    _, s, vt = np.linalg.svd(fit - mean, full_matrices=False)
    comps = np.zeros((2, x.shape[1]))
    k = min(2, vt.shape[0])
    comps[:k] = vt[:k]
    # A fixed sign convention keeps the map stable across runs and platforms.
    for i in range(k):
        j = int(np.argmax(np.abs(comps[i])))
        if comps[i, j] < 0:
            comps[i] = -comps[i]
    var = s**2
    ratio = np.zeros(2)
    if var.sum() > 0:
        ratio[:k] = var[:k] / var.sum()
    out = np.empty((n, 2))
    for i in range(0, n, chunk):
        out[i : i + chunk] = (x[i : i + chunk].astype(np.float64) - mean) @ comps.T
    return out, ratio
