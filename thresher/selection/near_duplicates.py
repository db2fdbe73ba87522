"""Near duplicates: groups of samples closer than a threshold in embedding space.

Two rows are near duplicates when their **cosine distance** ``1 - cos(a, b)`` is below the
threshold (crops, resizes, JPEG re-encodes and small colour shifts of one photo land well
below it; distinct photos well above; the default is calibrated in
``benchmarks/near_duplicates.py``, see ``docs/selection.md``). Groups are stars, not chains:
going through the rows in listing order, a row not in a group yet is kept and every row within
the threshold of it that is not in a group yet joins its group. So every member is a near
duplicate of the kept row (the first file in listing order, as exact deduplication keeps the
first by name). Connected components (single linkage) chained look-alikes into a few huge
groups instead: on 3,000 Fashion-MNIST images, 2,094 images in 58 groups with members 0.56
apart, a boot grouped with a sandal.

No N × N matrix is built: each row's ``k`` nearest neighbours come from
:func:`thresher.selection.knn.knn` (exact, in chunks); above :data:`EXACT_MAX_ROWS` rows an
inverted-file faiss index (approximate, probing :data:`IVF_PROBES` lists) replaces the exact
search so a million rows stay affordable on a CPU. Memory is the (unit-norm) embeddings plus
``N × k`` neighbours.

Rows too large to hold (``full``, a memory map) are searched through their projection on
principal components (:mod:`thresher.selection.reduce`; the stage makes it): a projection
never lengthens a distance, so every pair below the threshold is still a candidate there, and
each candidate pair is then measured on the full rows (read a chunk of pairs at a time), so
the groups and distances are the full rows' own.

Example:
    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.999, 0.04], [0.0, 1.0]], np.float32)
    >>> find_near_duplicates(x, 0.01, backend="numpy").groups
    [[0, 1]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.config.worker import NEAR_DUPLICATE_THRESHOLD
from thresher.selection.knn import Backend, NeighbourGraph, knn

#: The default ``worker_config.near_duplicate_threshold`` (cosine distance), calibrated on the
#: planted set of ``benchmarks/near_duplicates.py`` (docs/selection.md, "Near duplicates").
DEFAULT_THRESHOLD = NEAR_DUPLICATE_THRESHOLD
#: Neighbours looked at per row: a group holds at most the kept row's ``k`` nearest
#: neighbours (copies beyond them form further groups, each with its own kept row).
DEFAULT_K = 16
#: Above this many rows the exact search gives way to an IVF index (faiss).
EXACT_MAX_ROWS = 200_000
#: Inverted lists the IVF index probes per query.
IVF_PROBES = 16
#: Most candidate pairs of a projected search checked on the full rows (the closest in the
#: projection first); the rest are counted in :attr:`NearDuplicateGroups.n_unchecked`.
MAX_CHECKED_PAIRS = 200_000


@dataclass(frozen=True)
class NearDuplicateGroups:
    """The near-duplicate groups of a set of rows.

    Attributes:
        threshold: The cosine-distance threshold used.
        groups: Row indices per group, the kept row first, the others ascending; groups
            ordered by their kept row.
        distances: Per group, each member's cosine distance to the kept row (0.0 first).
    """

    threshold: float
    groups: list[list[int]] = field(default_factory=list)
    distances: list[list[float]] = field(default_factory=list)
    #: Candidate pairs of a projected search left unchecked past :data:`MAX_CHECKED_PAIRS`.
    n_unchecked: int = 0

    @property
    def duplicates(self) -> dict[int, int]:
        """Every non-kept row -> the kept row of its group."""
        return {r: g[0] for g in self.groups for r in g[1:]}

    @property
    def n_duplicates(self) -> int:
        """Rows that are near duplicates of a kept row (all members but the first)."""
        return sum(len(g) - 1 for g in self.groups)


def unit_rows(x: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    """``x`` as float32 rows of length 1 (a copy only when it is not already so)."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(a, axis=1)
    if a.shape[0] and np.allclose(norms, 1.0, atol=1e-4):
        return a
    out: NDArray[np.float32] = a / np.maximum(norms, 1e-12)[:, None]
    return out


def _neighbours(
    x: NDArray[np.float32], k: int, backend: Backend, exact_max: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Each row's ``k`` nearest other rows: Euclidean distances and indices."""
    if x.shape[0] <= exact_max:
        return knn(x, x, k, exclude_self=True, backend=backend)
    import faiss

    n, d = x.shape
    nlist = int(min(4096, max(16, round(4 * np.sqrt(n)))))
    quantizer = faiss.IndexFlatL2(d)
    index: Any = faiss.IndexIVFFlat(quantizer, d, nlist)
    rng = np.random.default_rng(0)
    train = x[np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))]
    index.train(train)
    index.add(x)
    index.nprobe = IVF_PROBES
    out_d = np.empty((n, k), np.float32)
    out_i = np.empty((n, k), np.int64)
    for s in range(0, n, 16384):
        d2, i = index.search(x[s : s + 16384], k + 1)
        rows = np.arange(s, s + i.shape[0])[:, None]
        d2 = np.where((i == rows) | (i < 0), np.inf, d2)
        order = np.argsort(d2, axis=1, kind="stable")[:, :k]
        out_i[s : s + 16384] = np.take_along_axis(i, order, axis=1)
        out_d[s : s + 16384] = np.sqrt(np.maximum(np.take_along_axis(d2, order, axis=1), 0))
    return out_d, out_i


def _stars(a: list[int], b: list[int]) -> list[list[int]]:
    """Star groups of the pairs ``(a[i], b[i])``.

    In row order, each row not grouped yet and its ungrouped partners; the kept (smallest) row
    first, the others ascending.
    """
    partners: dict[int, set[int]] = {}
    for i, j in zip(a, b, strict=True):
        if i != j:
            partners.setdefault(i, set()).add(j)
            partners.setdefault(j, set()).add(i)
    grouped: set[int] = set()
    groups: list[list[int]] = []
    for r in sorted(partners):
        if r in grouped:
            continue
        members = sorted(j for j in partners[r] if j not in grouped)
        if members:  # partners grouped earlier belong to a kept row that r is not close to
            groups.append([r, *members])
            grouped.update(groups[-1])
    return groups


def find_near_duplicates(
    embeddings: NDArray[np.floating[Any]],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    k: int = DEFAULT_K,
    backend: Backend = "auto",
    exact_max: int = EXACT_MAX_ROWS,
    full: NDArray[np.floating[Any]] | None = None,
    graph: NeighbourGraph | None = None,
) -> NearDuplicateGroups:
    """Group the rows whose cosine distance is below ``threshold``.

    Args:
        embeddings: (N, D) embeddings; need not be normalised (cosine distance ignores length).
        threshold: Cosine distance in [0, 2); pairs strictly below it are near duplicates.
        k: Neighbours per row to look at.
        backend: The :func:`~thresher.selection.knn.knn` backend.
        exact_max: Above this many rows an approximate IVF search is used.
        full: The full rows when ``embeddings`` is their projection on orthonormal components
            of unit rows (:class:`thresher.selection.reduce.Pca` with ``normalize``): the
            search runs on the projection as given, and each candidate pair is checked on
            ``full``.
        graph: The exact :class:`~thresher.selection.knn.NeighbourGraph` of the rows as
            searched (``unit_rows(embeddings)``: ``embeddings`` itself when its rows are
            unit already), at least ``k + 1`` wide: the search is skipped and the groups are
            the ones it would find. The stage makes one graph for this search and the
            selection's.

    Returns:
        The groups (only groups of two or more rows).

    Raises:
        ValueError: ``threshold`` outside [0, 2) or embeddings that are not finite (N, D).
    """
    if not 0.0 <= threshold < 2.0:
        raise ValueError(f"near-duplicate threshold must be in [0, 2), got {threshold}")
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {x.shape}")
    n = x.shape[0]
    if n < 2 or threshold == 0.0:
        return NearDuplicateGroups(float(threshold))
    if not np.isfinite(x).all():
        raise ValueError("embeddings hold NaN or inf values")
    u = unit_rows(x) if full is None else np.ascontiguousarray(x, dtype=np.float32)
    if graph is not None and full is None:
        dist, idx = graph.others(min(k, n - 1))
    else:
        dist, idx = _neighbours(u, min(k, n - 1), backend, exact_max)
    # unit rows: ||a - b||^2 = 2 (1 - cos), so cosine distance = d^2 / 2
    close = (dist * dist) / 2.0 < threshold
    rows, cols = np.nonzero(close)
    n_unchecked = 0
    if full is not None:  # candidates from the projection: keep the pairs the full rows confirm
        if rows.size > MAX_CHECKED_PAIRS:  # bounded: the closest in the projection first
            first = np.argsort(dist[rows, cols], kind="stable")[:MAX_CHECKED_PAIRS]
            n_unchecked = int(rows.size - MAX_CHECKED_PAIRS)
            rows, cols = rows[np.sort(first)], cols[np.sort(first)]
        ok = _cosine_pairs(full, rows, idx[rows, cols]) < threshold
        rows, cols = rows[ok], cols[ok]
    groups = _stars(rows.tolist(), idx[rows, cols].tolist())
    distances = []
    for g in groups:
        if full is None:
            cos = u[g] @ u[g[0]]
        else:
            cos = 1.0 - _cosine_pairs(full, np.full(len(g), g[0]), np.asarray(g))
        distances.append([round(float(max(0.0, 1.0 - c)), 6) for c in cos])
        distances[-1][0] = 0.0
    return NearDuplicateGroups(float(threshold), groups, distances, n_unchecked)


def _cosine_pairs(
    x: NDArray[np.floating[Any]], a: NDArray[np.int64], b: NDArray[np.int64], chunk: int = 8192
) -> NDArray[np.float64]:
    """Cosine distance of rows ``a[i]`` and ``b[i]`` of ``x``, a chunk of pairs at a time."""
    from thresher.storage.embeddings_npy import read_rows

    out = np.empty(len(a), np.float64)
    for s in range(0, len(a), chunk):
        ra = read_rows(x, a[s : s + chunk]).astype(np.float64)
        rb = read_rows(x, b[s : s + chunk]).astype(np.float64)
        na = np.maximum(np.linalg.norm(ra, axis=1), 1e-12)
        nb = np.maximum(np.linalg.norm(rb, axis=1), 1e-12)
        out[s : s + chunk] = 1.0 - np.einsum("ij,ij->i", ra, rb) / (na * nb)
    return out
