"""Small numeric helpers the report's metrics share: seeded subsamples, summaries, histograms.

Example:
    >>> summary(np.array([1.0, 3.0]))["mean"]
    2.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.storage.embeddings_npy import read_rows

#: Percentiles reported for distance distributions.
PERCENTILES = (5, 25, 50, 75, 90, 95, 99)


def subsample(n: int, max_points: int, seed: int) -> NDArray[np.int64]:
    """Seeded, sorted subsample of ``range(n)`` with at most ``max_points`` entries.

    Args:
        n: Population size.
        max_points: Maximum sample size.
        seed: Seed of the random generator.

    Returns:
        Sorted int64 indices; all of ``range(n)`` when ``n <= max_points``.
    """
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_points, replace=False)).astype(np.int64)


#: Rows whose norms :func:`is_normalized` checks, at most (a seeded sample beyond).
MAX_NORM_CHECK_ROWS = 20_000


def is_normalized(embeddings: NDArray[Any], atol: float = 1e-3, seed: int = 0) -> bool:
    """Whether the rows have unit L2 norm (so distances lie in [0, 2]); True when empty.

    Checks every row up to :data:`MAX_NORM_CHECK_ROWS` rows, a seeded sample of that many
    beyond (embeddings are normalised all or none, by the model), reading only those rows.
    """
    if len(embeddings) == 0:
        return True
    rows = subsample(len(embeddings), MAX_NORM_CHECK_ROWS, seed)
    for i in range(0, len(rows), 4096):  # float64 in blocks: no copy of the whole sample
        norms = np.linalg.norm(read_rows(embeddings, rows[i : i + 4096]).astype(np.float64), axis=1)
        if not np.all(np.abs(norms - 1.0) <= atol):
            return False
    return True


def summary(values: NDArray[Any]) -> dict[str, float | int | None]:
    """Mean, std, min, median, max and percentiles of a 1-D array.

    Args:
        values: Any 1-D array (may be empty).

    Returns:
        A dict with ``n``, ``mean``, ``std``, ``min``, ``median``, ``max`` and ``p5`` .. ``p99``;
        the statistics are None for an empty array.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    out: dict[str, float | int | None] = {"n": int(v.size)}
    keys = ["mean", "std", "min", "median", "max"] + [f"p{p}" for p in PERCENTILES]
    if v.size == 0:
        out.update(dict.fromkeys(keys))
        return out
    out.update(
        mean=float(v.mean()),
        std=float(v.std()),
        min=float(v.min()),
        median=float(np.median(v)),
        max=float(v.max()),
    )
    pct = np.percentile(v, PERCENTILES)
    out.update({f"p{p}": float(q) for p, q in zip(PERCENTILES, pct, strict=True)})
    return out


def histogram(values: NDArray[Any], bins: int, value_range: tuple[float, float]) -> dict[str, Any]:
    """Histogram as JSON-ready lists.

    Args:
        values: 1-D array of values.
        bins: Number of equal-width bins.
        value_range: (lo, hi) of the bins; values outside are clipped into the end bins.

    Returns:
        ``{"bins": edges (bins + 1 floats), "counts": bins ints, "range": [lo, hi]}``.
    """
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        hi = lo + 1.0
    v = np.clip(np.asarray(values, dtype=np.float64).ravel(), lo, hi)
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    return {"bins": edges.tolist(), "counts": counts.astype(int).tolist(), "range": [lo, hi]}


def distance_range(normalized: bool, *values: NDArray[Any]) -> tuple[float, float]:
    """Bin range of distance histograms: [0, 2] when normalised, else [0, the largest value]."""
    if normalized:
        return (0.0, 2.0)
    top = max([float(v.max()) for v in values if v.size] or [1.0])
    return (0.0, top if top > 0 else 1.0)
