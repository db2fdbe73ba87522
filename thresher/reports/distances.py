"""Histograms of pairwise embedding distances before and after selection.

Pairwise distances are computed on a seeded subsample whose size follows the memory budget,
so no function ever builds an N x N matrix for the full dataset.

Example:
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> distance_histograms(x, np.array([0, 2]), bins=4)["after"]["counts"]
    [0, 0, 0, 1]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.reports.stats import distance_range, histogram, is_normalized, subsample, summary
from thresher.storage.embeddings_npy import read_rows

#: Upper bound on the points used for a pairwise-distance block, whatever the memory allows.
MAX_PAIRWISE_POINTS = 2000


def max_pairwise_points(memory_requirement_in_GB: float, cap: int = MAX_PAIRWISE_POINTS) -> int:
    """How many points a float64 pairwise-distance block may hold.

    The m x m block of float64 distances (and its temporaries, about four blocks in all) must
    fit in ``memory_requirement_in_GB``; in practice it is capped far lower (``cap``), so the
    report stays cheap even with a large budget.

    Args:
        memory_requirement_in_GB: Memory budget for the distance block, in GB (1e9 bytes).
        cap: Hard upper bound on the number of points.

    Returns:
        The number of points m, at least 2.

    Raises:
        ValueError: If the budget is not positive.
    """
    if not memory_requirement_in_GB > 0:
        raise ValueError(
            f"memory_requirement_in_GB must be > 0, got {memory_requirement_in_GB!r}; "
            "use e.g. 2 (the Lightly default)."
        )
    # The block lives alongside about three temporaries of its size while it is computed.
    by_memory = math.isqrt(int(memory_requirement_in_GB * 1e9 / (8 * 4)))
    return max(2, min(cap, by_memory))


def _pairwise_upper(x: NDArray[Any]) -> NDArray[np.float64]:
    """Distances of every unordered pair of a small block, float64, each pair once."""
    if len(x) < 2:
        return np.zeros(0)
    x = np.asarray(x, dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.maximum(d2, 0.0, out=d2)
    d: NDArray[np.float64] = np.sqrt(d2[np.triu_indices(len(x), k=1)])
    return d


def distance_histograms(
    embeddings: NDArray[Any],
    selected: NDArray[np.integer[Any]],
    *,
    memory_requirement_in_GB: float = 2.0,
    bins: int = 50,
    seed: int = 0,
    normalized: bool | None = None,
) -> dict[str, dict[str, Any]]:
    """Pairwise-distance histograms of the input and of the selection, on the same bins.

    Both sets are subsampled (seeded) to at most :func:`max_pairwise_points` points. The bin
    range is [0, 2] for normalised embeddings, else [0, the largest distance seen in either].

    Args:
        embeddings: Array of shape (N, D), the embedded (input) set.
        selected: 1-D indices into ``embeddings``.
        memory_requirement_in_GB: Memory budget of one pairwise block.
        bins: Number of bins.
        seed: Seed of the subsamples.
        normalized: Whether the embeddings are L2-normalised; detected when None.

    Returns:
        ``{"before": h, "after": h}`` where each ``h`` holds ``bins`` (edges), ``counts``,
        ``range``, ``nPoints``, ``nPairs``, ``subsampled`` and ``metrics`` (see
        :func:`~thresher.reports.stats.summary`).
    """
    x = embeddings  # only the sampled rows are read (a memmap stays on disk)
    sel = np.asarray(selected, dtype=np.int64)
    m = max_pairwise_points(memory_requirement_in_GB)
    if normalized is None:
        normalized = is_normalized(x)
    idx_before = subsample(len(x), m, seed)
    idx_after = sel[subsample(len(sel), m, seed + 1)]
    d_before = _pairwise_upper(read_rows(x, idx_before))
    d_after = _pairwise_upper(read_rows(x, idx_after))
    rng = distance_range(normalized, d_before, d_after)
    out = {}
    for key, d, idx, n in (
        ("before", d_before, idx_before, len(x)),
        ("after", d_after, idx_after, len(sel)),
    ):
        h = histogram(d, bins, rng)
        h.update(
            nPoints=len(idx),
            nPairs=int(d.size),
            subsampled=bool(len(idx) < n),
            metrics=summary(d),
        )
        out[key] = h
    return out
