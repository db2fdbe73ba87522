"""Nearest-neighbour statistics of the report: crowding, coverage and example pairs.

Every search goes through :func:`thresher.selection.knn.knn` (the one nearest-neighbour
function of thresher), with query blocks sized so that one block of distances stays within
``block_bytes``, and with queries subsampled (seeded) once a statistic would cost more than
``flop_budget`` multiply-adds.

Example:
    >>> x = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> nearest_neighbor_in_set(x).round(3).tolist()
    [1.0, 1.0, 2.0, 4.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.reports.stats import distance_range, histogram, is_normalized, subsample, summary
from thresher.selection.knn import knn
from thresher.storage.embeddings_npy import read_rows

#: Bytes one block of a nearest-neighbour search may use.
DEFAULT_BLOCK_BYTES = 64 * 1024**2

#: Multiply-adds one nearest-neighbour statistic may spend; beyond it, queries are subsampled.
DEFAULT_FLOP_BUDGET = 5e9

#: Fewest queries a subsampled nearest-neighbour statistic uses, whatever the budget.
MIN_QUERIES = 256

#: Most rows a search runs against (the "database"). A bigger set is replaced by a seeded
#: sample of this many rows, so a search never copies more than 20,000 x D floats (100 MB at
#: D = 1280) whatever N is; the statistic then says so (``nReference``).
MAX_REFERENCE_ROWS = 20_000

#: Fewest removed images searched for the selected-vs-removed examples, whatever the budget.
MIN_EXAMPLE_CANDIDATES = 2000

# Bytes per (query, database row) pair while knn ranks a block: the float32 distance and its
# temporaries plus argpartition's int64 indices.
_BYTES_PER_PAIR = 24


def n_queries(n_set: int, n_reference: int, dim: int, flop_budget: float) -> int:
    """How many queries a nearest-neighbour statistic can afford.

    Returns:
        ``min(n_set, max(MIN_QUERIES, flop_budget // (n_reference * dim)))``.
    """
    per_query = max(1, n_reference * max(dim, 1))
    return int(min(n_set, max(MIN_QUERIES, flop_budget // per_query)))


def _search(
    queries: NDArray[Any], database: NDArray[Any], k: int, block_bytes: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    chunk = max(1, block_bytes // (max(len(database), 1) * _BYTES_PER_PAIR))
    d, i = knn(queries, database, k, chunk_size=chunk)
    return d.astype(np.float64), i


def reference_rows(
    n: int, seed: int, members: NDArray[np.integer[Any]] | None = None
) -> NDArray[np.int64]:
    """The rows a search runs against: ``members`` (all rows when None), at most a sample.

    Beyond :data:`MAX_REFERENCE_ROWS` rows, a seeded sample of that many.
    """
    rows = np.arange(n, dtype=np.int64) if members is None else np.asarray(members, np.int64)
    return rows[subsample(len(rows), MAX_REFERENCE_ROWS, seed)]


def nearest_neighbor_in_set(
    embeddings: NDArray[Any],
    members: NDArray[np.integer[Any]] | None = None,
    *,
    flop_budget: float = DEFAULT_FLOP_BUDGET,
    seed: int = 0,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NDArray[np.float64]:
    """Distance from each member of a set to its nearest other member.

    The set is ``embeddings[members]`` (all rows when None). Beyond
    :data:`MAX_REFERENCE_ROWS` members the set is a seeded sample of that many (distances are
    then to the nearest other member *of the sample*: larger than in the whole set, the more so
    the bigger the set). When querying every member would cost more than ``flop_budget``
    multiply-adds, a seeded subsample of members is queried, which estimates the distribution
    without the quadratic cost. Only the rows used are read, so ``embeddings`` may be a
    read-only memmap of any size.

    Returns:
        Float64 distances, one per queried member (empty when the set has < 2 members).
    """
    ref = reference_rows(len(embeddings), seed + 97, members)
    if len(ref) < 2:
        return np.zeros(0)
    s = read_rows(embeddings, ref)
    qi = subsample(len(s), n_queries(len(s), len(s), s.shape[1], flop_budget), seed)
    # Two neighbours, then the first that is not the query itself (an exact copy elsewhere in
    # the set may come first, at the same distance 0).
    d, i = _search(s[qi], s, 2, block_bytes)
    first_other = np.where(i[:, 0] == qi, 1, 0)
    out: NDArray[np.float64] = d[np.arange(len(qi)), first_other]
    return out


def embedding_statistics(
    embeddings: NDArray[Any],
    selected: NDArray[np.integer[Any]],
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
        normalized: Whether rows are L2-normalised; detected if None. (The bins span 0 to the
            largest distance seen either way.)
        block_bytes: Memory of one search block.

    Returns:
        ``{"distanceToNearestNeighborInSet": {"input", "selected"}, "distanceToCoverInput"}``
        where each entry holds ``metrics`` (see :func:`~thresher.reports.stats.summary`),
        ``bins``, ``counts``, ``nQueries`` (rows queried), ``nReference`` (rows searched: the
        set, or for the coverage the selection), ``referenceSubsampled`` (those were a seeded
        sample of :data:`MAX_REFERENCE_ROWS`) and ``exact`` (every row queried against the
        whole set).
    """
    x = embeddings
    n = len(x)
    sel = np.asarray(selected, dtype=np.int64)
    if normalized is None:
        normalized = is_normalized(x)
    kw: dict[str, Any] = {"flop_budget": flop_budget, "block_bytes": block_bytes}
    nn_in = nearest_neighbor_in_set(x, None, seed=seed, **kw)
    nn_sel = nearest_neighbor_in_set(x, sel, seed=seed + 1, **kw)
    dim = x.shape[1] if x.ndim == 2 else 1
    ref_sel = reference_rows(n, seed + 3, sel)
    qi = subsample(n, n_queries(n, len(ref_sel), dim, flop_budget), seed + 2)
    cover = np.zeros(0)
    if len(sel) and len(qi):
        db = read_rows(x, ref_sel)
        cover = _search(read_rows(x, qi), db, 1, block_bytes)[0][:, 0]
    # Bins over the distances seen, not [0, 2]: nearest-neighbour distances of normalised
    # embeddings sit far below 2, and on [0, 2] they would fill the first few bins only.
    rng = distance_range(False, nn_in, nn_sel, cover)

    def pack(v: NDArray[np.float64], n_set: int, n_ref: int) -> dict[str, Any]:
        h = histogram(v, bins, rng)
        h.update(
            metrics=summary(v),
            nQueries=int(v.size),
            exact=bool(v.size >= n_set and n_ref <= MAX_REFERENCE_ROWS),
            nReference=int(min(n_ref, MAX_REFERENCE_ROWS)),
            referenceSubsampled=bool(n_ref > MAX_REFERENCE_ROWS),
        )
        return h

    return {
        "distanceToNearestNeighborInSet": {
            "input": pack(nn_in, n if n > 1 else 0, n),
            "selected": pack(nn_sel, len(sel) if len(sel) > 1 else 0, len(sel)),
        },
        "distanceToCoverInput": pack(cover, n if len(sel) else 0, len(sel)),
    }


def selected_removed_examples(
    embeddings: NDArray[Any],
    selected: NDArray[np.integer[Any]],
    filenames: Sequence[str],
    n_examples: int = 6,
    *,
    max_candidates: int = 50_000,
    seed: int = 0,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    flop_budget: float = 2 * DEFAULT_FLOP_BUDGET,
) -> list[dict[str, Any]]:
    """The removed images closest to a selected image, with that image and the distance.

    The closest pairs are shown because they explain why an image was dropped: a near copy of
    it is already in the selection. Each selected image appears at most once until every
    selected image with a removed neighbour has appeared, so the pairs show different regions.
    Picks are deterministic (ties broken by index); beyond ``max_candidates`` removed images
    (or fewer, as ``flop_budget`` multiply-adds allow), a seeded subsample is searched, and
    beyond :data:`MAX_REFERENCE_ROWS` selected images, a seeded sample of them.

    Returns:
        Up to ``n_examples`` dicts ``{"selectedImage", "removedImage", "distance",
        "selectedIndex", "removedIndex", "removedRank"}``, closest first among distinct
        selected images; ``removedRank`` is the removed image's place among the removed images
        searched, closest to a selected image first (0 = the closest of all).
    """
    x = embeddings
    sel_all = np.asarray(selected, dtype=np.int64)
    is_removed = np.ones(len(x), dtype=bool)
    is_removed[sel_all] = False
    removed = np.nonzero(is_removed)[0]
    if n_examples <= 0 or len(sel_all) == 0 or len(removed) == 0:
        return []
    # Bounded at any N: the selected rows searched are at most MAX_REFERENCE_ROWS, the removed
    # candidates as many as flop_budget affords (at least MIN_EXAMPLE_CANDIDATES).
    sel = reference_rows(len(x), seed + 5, sel_all)
    dim = x.shape[1] if x.ndim == 2 else 1
    affordable = int(flop_budget // max(1, len(sel) * dim))
    most = min(max_candidates, max(MIN_EXAMPLE_CANDIDATES, affordable))
    removed = removed[subsample(len(removed), most, seed)]
    db = read_rows(x, sel)
    d2, j2 = _search(read_rows(x, removed), db, 1, block_bytes)
    d, j = d2[:, 0], j2[:, 0]
    ranked = np.lexsort((removed, d))
    rank = np.empty(len(ranked), np.int64)
    rank[ranked] = np.arange(len(ranked))
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
            "removedRank": int(rank[k]),
        }
        for k in order
    ]
