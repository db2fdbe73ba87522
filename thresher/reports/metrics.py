"""Pure numbers for the report: distance histograms, coverage, PCA, sizes and examples.

Everything here is numpy only and bounded in memory: pairwise distances are computed on a
seeded subsample, nearest-neighbour searches run in blocks, and no function ever builds an
N x N matrix for the full dataset.

Example:
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> h = pairwise_distance_histogram(x, bins=3, value_range=(0.5, 3.5))
    >>> h["counts"]
    [3, 2, 1]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Upper bound on the points used for a pairwise-distance block, whatever the memory allows.
MAX_PAIRWISE_POINTS = 2000

#: Bytes one block of a chunked nearest-neighbour search may use.
DEFAULT_BLOCK_BYTES = 64 * 1024**2

#: Multiply-adds one nearest-neighbour statistic may spend; beyond it, queries are subsampled.
DEFAULT_FLOP_BUDGET = 5e9

#: Fewest queries a subsampled nearest-neighbour statistic uses, whatever the budget.
MIN_QUERIES = 256

#: Percentiles reported for distance distributions.
PERCENTILES = (5, 25, 50, 75, 90, 95, 99)


# ---------------------------------------------------------------------------------------------
# helpers


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


def subsample(n: int, max_points: int, seed: int) -> np.ndarray:
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


def is_normalized(embeddings: np.ndarray, atol: float = 1e-3) -> bool:
    """Whether every row has unit L2 norm (so distances lie in [0, 2]).

    Args:
        embeddings: Array of shape (N, D).
        atol: Tolerance on the norm.

    Returns:
        True if all norms are within ``atol`` of 1 (True for an empty array).
    """
    if len(embeddings) == 0:
        return True
    norms = np.linalg.norm(np.asarray(embeddings, dtype=np.float64), axis=1)
    return bool(np.all(np.abs(norms - 1.0) <= atol))


def n_queries(n_set: int, n_reference: int, dim: int, flop_budget: float) -> int:
    """How many queries a nearest-neighbour statistic can afford.

    Args:
        n_set: Number of candidate query points.
        n_reference: Number of reference points each query is compared with.
        dim: Embedding dimension.
        flop_budget: Multiply-adds allowed.

    Returns:
        ``min(n_set, max(MIN_QUERIES, flop_budget // (n_reference * dim)))``.
    """
    per_query = max(1, n_reference * max(dim, 1))
    return int(min(n_set, max(MIN_QUERIES, flop_budget // per_query)))


def _pairwise(x: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix of a small block, float64, exact zeros on the diagonal."""
    x = np.asarray(x, dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2)


def _upper(d: np.ndarray) -> np.ndarray:
    """The strictly upper-triangular entries (each unordered pair once)."""
    iu = np.triu_indices(len(d), k=1)
    return d[iu]


def summary(values: np.ndarray) -> dict[str, float | int | None]:
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


def histogram(values: np.ndarray, bins: int, value_range: tuple[float, float]) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------------------------
# pairwise-distance histograms


def pairwise_distance_histogram(
    embeddings: np.ndarray,
    *,
    bins: int = 50,
    value_range: tuple[float, float] | None = None,
    max_points: int = MAX_PAIRWISE_POINTS,
    seed: int = 0,
) -> dict[str, Any]:
    """Histogram of the distances between all unordered pairs of a (subsampled) set.

    Args:
        embeddings: Array of shape (N, D).
        bins: Number of bins.
        value_range: Bin range; default [0, 2] for normalised embeddings, else [0, max].
        max_points: At most this many points (seeded subsample) enter the pairwise block.
        seed: Seed of the subsample.

    Returns:
        ``{"bins", "counts", "range", "nPoints", "nPairs", "subsampled"}``.
    """
    x = np.asarray(embeddings)
    idx = subsample(len(x), max_points, seed)
    d = _upper(_pairwise(x[idx])) if len(idx) > 1 else np.zeros(0)
    if value_range is None:
        value_range = (0.0, 2.0) if is_normalized(x) else (0.0, float(d.max()) if d.size else 1.0)
    out = histogram(d, bins, value_range)
    out.update(nPoints=len(idx), nPairs=int(d.size), subsampled=bool(len(idx) < len(x)))
    return out


def distance_histograms(
    embeddings: np.ndarray,
    selected: np.ndarray,
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
        ``{"before": histogram, "after": histogram}``, see :func:`pairwise_distance_histogram`.
    """
    x = np.asarray(embeddings)
    sel = np.asarray(selected, dtype=np.int64)
    m = max_pairwise_points(memory_requirement_in_GB)
    if normalized is None:
        normalized = is_normalized(x)
    idx_before = subsample(len(x), m, seed)
    idx_after = sel[subsample(len(sel), m, seed + 1)]
    d_before = _upper(_pairwise(x[idx_before])) if len(idx_before) > 1 else np.zeros(0)
    d_after = _upper(_pairwise(x[idx_after])) if len(idx_after) > 1 else np.zeros(0)
    if normalized:
        rng: tuple[float, float] = (0.0, 2.0)
    else:
        top = max([float(d.max()) for d in (d_before, d_after) if d.size] or [1.0])
        rng = (0.0, top if top > 0 else 1.0)
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


# ---------------------------------------------------------------------------------------------
# chunked nearest neighbours


def nearest_neighbors(
    queries: np.ndarray,
    reference: np.ndarray,
    *,
    exclude: np.ndarray | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Distance and index of each query's nearest reference point, in bounded blocks.

    Args:
        queries: Array of shape (Q, D).
        reference: Array of shape (R, D), R >= 1.
        exclude: Optional int array of shape (Q,): for query i, reference row ``exclude[i]``
            is ignored (use it to skip the point itself; -1 excludes nothing).
        block_bytes: Memory one (query block x reference block) distance block may use.

    Returns:
        ``(distances, indices)``: float64 of shape (Q,) and int64 of shape (Q,). A query whose
        only reference point is excluded gets distance inf and index -1.

    Raises:
        ValueError: If ``reference`` is empty or dimensions differ.
    """
    q = np.asarray(queries)
    r = np.asarray(reference)
    if len(r) == 0:
        raise ValueError("nearest_neighbors needs at least one reference point.")
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"queries {q.shape} and reference {r.shape} must be 2-D with same D.")
    dtype = np.result_type(q.dtype, r.dtype, np.float32)
    q = q.astype(dtype, copy=False)
    r = r.astype(dtype, copy=False)
    item = np.dtype(dtype).itemsize
    qb = int(min(max(len(q), 1), 1024))
    rb = int(max(1, block_bytes // (qb * item)))
    best_d = np.full(len(q), np.inf)
    best_i = np.full(len(q), -1, dtype=np.int64)
    r_sq = np.einsum("ij,ij->i", r, r)
    for q0 in range(0, len(q), qb):
        qq = q[q0 : q0 + qb]
        q_sq = np.einsum("ij,ij->i", qq, qq)
        ex = None if exclude is None else np.asarray(exclude[q0 : q0 + qb], dtype=np.int64)
        for r0 in range(0, len(r), rb):
            # In place, so a block costs one (qb x rb) array and not three.
            d2 = qq @ r[r0 : r0 + rb].T
            d2 *= -2.0
            d2 += q_sq[:, None]
            d2 += r_sq[None, r0 : r0 + rb]
            if ex is not None:
                rows = np.nonzero((ex >= r0) & (ex < r0 + d2.shape[1]))[0]
                d2[rows, ex[rows] - r0] = np.inf
            j = np.argmin(d2, axis=1)
            dj = d2[np.arange(len(qq)), j].astype(np.float64)
            better = dj < best_d[q0 : q0 + qb]
            best_d[q0 : q0 + qb][better] = dj[better]
            best_i[q0 : q0 + qb][better] = j[better] + r0
    finite = np.isfinite(best_d)
    best_d[finite] = np.sqrt(np.maximum(best_d[finite], 0.0))
    return best_d, best_i


def nearest_neighbor_in_set(
    embeddings: np.ndarray,
    members: np.ndarray | None = None,
    *,
    flop_budget: float = DEFAULT_FLOP_BUDGET,
    seed: int = 0,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> np.ndarray:
    """Distance from each member of a set to its nearest other member.

    The set is ``embeddings[members]`` (all rows when None). When querying every member would
    cost more than ``flop_budget`` multiply-adds, a seeded subsample of members is queried
    against the whole set, which estimates the distribution without the quadratic cost.

    Args:
        embeddings: Array of shape (N, D).
        members: 1-D indices of the set, or None for all rows.
        flop_budget: Multiply-adds allowed, see :func:`n_queries`.
        seed: Seed of the query subsample.
        block_bytes: Block memory, see :func:`nearest_neighbors`.

    Returns:
        Float64 distances, one per queried member (empty when the set has < 2 members).
    """
    x = np.asarray(embeddings)
    s = x if members is None else x[np.asarray(members, dtype=np.int64)]
    if len(s) < 2:
        return np.zeros(0)
    qi = subsample(len(s), n_queries(len(s), len(s), s.shape[1], flop_budget), seed)
    d, _ = nearest_neighbors(s[qi], s, exclude=qi, block_bytes=block_bytes)
    return d


def embedding_statistics(
    embeddings: np.ndarray,
    selected: np.ndarray,
    *,
    bins: int = 50,
    flop_budget: float = DEFAULT_FLOP_BUDGET,
    seed: int = 0,
    normalized: bool | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> dict[str, Any]:
    """Nearest-neighbour distances within input and selection, and coverage of the input.

    ``distanceToNearestNeighborInSet`` compares how crowded the input and the selection are
    (a good diverse selection has larger nearest-neighbour distances). ``distanceToCoverInput``
    is the distance from each input point to its nearest selected point: its max is the
    radius a k-center selection minimises.

    Args:
        embeddings: Array of shape (N, D).
        selected: 1-D indices into ``embeddings``.
        bins: Histogram bins.
        flop_budget: Multiply-adds per statistic; beyond it queries are a seeded subsample
            (``exact`` says whether every point was queried).
        seed: Seed.
        normalized: Whether rows are L2-normalised (bins then span [0, 2]); detected if None.
        block_bytes: Block memory, see :func:`nearest_neighbors`.

    Returns:
        ``{"distanceToNearestNeighborInSet": {"input", "selected"}, "distanceToCoverInput"}``
        where each entry holds ``metrics`` (see :func:`summary`), ``bins``, ``counts``,
        ``nQueries`` and ``exact``.
    """
    x = np.asarray(embeddings)
    sel = np.asarray(selected, dtype=np.int64)
    if normalized is None:
        normalized = is_normalized(x)
    nn_in = nearest_neighbor_in_set(
        x, None, flop_budget=flop_budget, seed=seed, block_bytes=block_bytes
    )
    nn_sel = nearest_neighbor_in_set(
        x, sel, flop_budget=flop_budget, seed=seed + 1, block_bytes=block_bytes
    )
    dim = x.shape[1] if x.ndim == 2 else 1
    qi = subsample(len(x), n_queries(len(x), len(sel), dim, flop_budget), seed + 2)
    if len(sel) and len(qi):
        cover, _ = nearest_neighbors(x[qi], x[sel], block_bytes=block_bytes)
    else:
        cover = np.zeros(0)
    if normalized:
        rng: tuple[float, float] = (0.0, 2.0)
    else:
        top = max([float(v.max()) for v in (nn_in, nn_sel, cover) if v.size] or [1.0])
        rng = (0.0, top if top > 0 else 1.0)

    def pack(v: np.ndarray, n_set: int) -> dict[str, Any]:
        h = histogram(v, bins, rng)
        h.update(metrics=summary(v), nQueries=int(v.size), exact=bool(v.size >= n_set))
        return h

    return {
        "distanceToNearestNeighborInSet": {
            "input": pack(nn_in, len(x) if len(x) > 1 else 0),
            "selected": pack(nn_sel, len(sel) if len(sel) > 1 else 0),
        },
        "distanceToCoverInput": pack(cover, len(x) if len(sel) else 0),
    }


# ---------------------------------------------------------------------------------------------
# PCA


def pca_2d(
    embeddings: np.ndarray,
    *,
    max_fit_points: int = 10_000,
    seed: int = 0,
    chunk: int = 65_536,
) -> tuple[np.ndarray, np.ndarray]:
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


# ---------------------------------------------------------------------------------------------
# sizes and examples

_SIZE_KEYS = (
    ("n_input", "nInput"),
    ("n_filtered", "nFiltered"),
    ("n_corrupt", "nCorrupt"),
    ("n_duplicate", "nDuplicate"),
    ("n_removed", "nRemoved"),
    ("n_selected", "nSelected"),
)


def dataset_sizes(sizes: dict[str, int]) -> dict[str, int]:
    """Convert the flow's sizes to camelCase DatasetSizes and check that they add up.

    Args:
        sizes: Keys ``n_input``, ``n_filtered`` (dropped by relevant_filenames), ``n_corrupt``,
            ``n_duplicate``, ``n_removed``, ``n_selected``; non-negative ints.

    Returns:
        ``{"nInput", "nFiltered", "nCorrupt", "nDuplicate", "nRemoved", "nSelected"}``.

    Raises:
        ValueError: If a key is missing or negative, or
            input != filtered + corrupt + duplicate + removed + selected.
    """
    missing = [k for k, _ in _SIZE_KEYS if k not in sizes]
    if missing:
        raise ValueError(f"sizes is missing {missing}; expected keys {[k for k, _ in _SIZE_KEYS]}.")
    out = {camel: int(sizes[k]) for k, camel in _SIZE_KEYS}
    negative = {k: v for k, v in out.items() if v < 0}
    if negative:
        raise ValueError(f"sizes must be non-negative, got {negative}.")
    parts = out["nFiltered"] + out["nCorrupt"] + out["nDuplicate"] + out["nRemoved"]
    parts += out["nSelected"]
    if parts != out["nInput"]:
        raise ValueError(
            f"sizes do not add up: nInput={out['nInput']} but nFiltered + nCorrupt + nDuplicate"
            f" + nRemoved + nSelected = {out['nFiltered']} + {out['nCorrupt']} + "
            f"{out['nDuplicate']} + {out['nRemoved']} + {out['nSelected']} = {parts}. "
            "Every input file must be counted in exactly one stage."
        )
    return out


def removed_mask(n: int, selected: np.ndarray) -> np.ndarray:
    """Boolean mask of the embedded points that were not selected."""
    mask = np.ones(n, dtype=bool)
    mask[np.asarray(selected, dtype=np.int64)] = False
    return mask


def selected_removed_examples(
    embeddings: np.ndarray,
    selected: np.ndarray,
    filenames: Sequence[str],
    n_examples: int = 6,
    *,
    max_candidates: int = 50_000,
    seed: int = 0,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> list[dict[str, Any]]:
    """The removed images closest to a selected image, with that image and the distance.

    The closest pairs are shown because they explain why an image was dropped: a near copy of
    it is already in the selection. Each selected image appears at most once until every
    selected image with a removed neighbour has appeared, so the pairs show different regions.
    Picks are deterministic (ties broken by index); beyond ``max_candidates`` removed images,
    a seeded subsample is searched.

    Args:
        embeddings: Array of shape (N, D).
        selected: 1-D indices into ``embeddings``.
        filenames: N filenames, aligned with ``embeddings``.
        n_examples: Number of pairs.
        max_candidates: Most removed images searched.
        seed: Seed of the candidate subsample.
        block_bytes: Block memory, see :func:`nearest_neighbors`.

    Returns:
        Up to ``n_examples`` dicts ``{"selectedImage", "removedImage", "distance",
        "selectedIndex", "removedIndex"}``, closest first among distinct selected images.
    """
    x = np.asarray(embeddings)
    sel = np.asarray(selected, dtype=np.int64)
    removed = np.nonzero(removed_mask(len(x), sel))[0]
    if n_examples <= 0 or len(sel) == 0 or len(removed) == 0:
        return []
    removed = removed[subsample(len(removed), max_candidates, seed)]
    d, j = nearest_neighbors(x[removed], x[sel], block_bytes=block_bytes)
    ranked = np.lexsort((removed, d))
    # Closest pairs first, but each selected image once before any repeats, so the examples
    # are not all near-copies of the one image that sits in the densest cluster.
    seen: set[int] = set()
    first: list[int] = []
    repeats: list[int] = []
    for k in ranked:
        (repeats if int(j[k]) in seen else first).append(int(k))
        seen.add(int(j[k]))
        if len(first) >= n_examples:
            break
    order = (first + repeats)[:n_examples]
    return [
        {
            "selectedImage": filenames[int(sel[j[k]])],
            "removedImage": filenames[int(removed[k])],
            "distance": float(d[k]),
            "selectedIndex": int(sel[j[k]]),
            "removedIndex": int(removed[k]),
        }
        for k in order
    ]
