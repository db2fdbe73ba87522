"""COVERAGE: prefer the sample that covers the most of the data not covered yet.

A sample ``s`` covers a sample ``j`` with the Gaussian kernel weight
``k(s, j) = exp(-|x_s - x_j|^2 / (2 sigma^2))``; a chosen set covers ``j`` as well as its best
member does, and the coverage of the data is the mean over samples of that. The objective of a
sample is its gain: how much the coverage grows if it is chosen next. This is MaxHerding, the
"generalized coverage" of Bae et al. (ECCV 2024), a soft version of ProbCover's balls (Yehuda
et al., NeurIPS 2022): the first picks sit in the densest regions, later picks in the densest
regions left uncovered, which is what TypiClust's "one typical sample per cluster" aims at,
without clustering.

The gain of a sample only shrinks as others are chosen (coverage is submodular), so the greedy
combiner can pick lazily: an old gain is an upper bound.

Scale. Coverage is measured on reference rows: every row up to :data:`REFERENCE_SIZE`, a seeded
random subset beyond (fewer at very large N, so that N x R stays below :data:`PAIR_BUDGET`, as
for TYPICALITY). Each sample's kernel is cut to its ``K`` nearest reference rows: enough to
reach the ~R/n rows one of ``n`` picks has to cover, ``K = R / n``, and at least
:data:`NEIGHBORS` scaled by the subsampling ratio R/N (never below :data:`MIN_NEIGHBORS`). When
N x K would exceed :data:`GRAPH_BUDGET` entries (a small pick from a very large pool), only the
reference rows are candidates (a seeded random sample many times larger than the pick), and K
is cut to what fits (a very small pick from a pool of 5,000 to 20,000 rows). So memory stays
below 256 MiB and the one nearest-neighbour search is O(N * R * D). ``sigma`` is
``kernel_width`` times the median distance between two samples (measured on at most 2,000
reference rows), so one width fits embeddings of any scale. When every reference row is
covered as well as it can be (possible only when the pick is large compared with the reference
rows), the gains are all zero; the lazy engine then continues with farthest-point picks
(DIVERSITY).

Example:
    >>> import numpy as np
    >>> x = np.array([[0.0], [0.1], [0.2], [5.0]], dtype=np.float32)
    >>> obj = CoverageObjective.from_embeddings(x, kernel_width=0.5, backend="numpy")
    >>> int(np.argmax(obj.gains()))  # the middle of the dense group covers most
    1
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

import numpy as np
from numpy.typing import NDArray

from thresher.selection.knn import Backend, NeighbourGraph, knn
from thresher.selection.objective import Objective, Pool, safe_log

if TYPE_CHECKING:
    from thresher.config.selection import CoverageStrategy
    from thresher.selection.inputs import Resolved

REFERENCE_SIZE = 20_000
PAIR_BUDGET = 10**10
MIN_REFERENCE = 2_000
NEIGHBORS = 64
MIN_NEIGHBORS = 8
COVER_FACTOR = 1
GRAPH_BUDGET = 2**25
SCALE_SAMPLE = 2_000


def kernel_sigma(embeddings: NDArray[np.float32], kernel_width: float, *, seed: int = 0) -> float:
    """``kernel_width`` times the median pairwise distance of (at most 2,000 of) the rows.

    Args:
        embeddings: (R, D) float32 rows.
        kernel_width: Multiplier, > 0.
        seed: Seeds the subset when R > 2,000.

    Returns:
        sigma > 0 (a tiny positive number when all rows coincide).
    """
    n = embeddings.shape[0]
    rows = np.arange(n)
    if n > SCALE_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(n, SCALE_SAMPLE, replace=False))
    x = embeddings[rows].astype(np.float64)
    sq = (x * x).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    iu = np.triu_indices(len(rows), 1)
    med = float(np.median(np.sqrt(np.maximum(d2[iu], 0.0)))) if len(iu[0]) else 0.0
    return max(kernel_width * med, 1e-12)


class CoverageObjective(Objective):
    """Coverage gain of each sample over its ``K`` nearest reference rows.

    Args:
        neighbors: (C, K) int32 indices into the reference rows, per candidate.
        weights: (C, K) float32 kernel weights ``k(candidate, reference row)``, in (0, 1].
        n_reference: Number of reference rows R.
        embeddings: (N, D) float32, for the farthest-point continuation.
        strength: Exponent of the gain in the product of objectives.
        candidates: (C,) rows of the candidates, ascending; None means every row (C = N).
            Other rows have no gain.
        reference: (R, D) the reference rows and ``sigma``, to find what a chosen row that is
            not a candidate (preselected) covers; None: such a row covers nothing.
        sigma: The kernel's sigma.
        backend: knn backend for those rows.
    """

    name = "COVERAGE"
    dynamic = True

    def __init__(
        self,
        neighbors: NDArray[np.int64],
        weights: NDArray[np.float32],
        n_reference: int,
        embeddings: NDArray[np.float32],
        strength: float = 1.0,
        candidates: NDArray[np.int64] | None = None,
        reference: NDArray[np.float32] | None = None,
        sigma: float = 1.0,
        backend: Backend = "auto",
    ) -> None:
        super().__init__(strength)
        self.neighbors = neighbors
        self.weights = weights
        self.n_reference = max(int(n_reference), 1)
        self.embeddings = embeddings
        self.covered = np.zeros(self.n_reference, np.float32)
        self.reference, self.sigma, self.backend = reference, sigma, backend
        n = embeddings.shape[0]
        self.slot = np.arange(n, dtype=np.int64)  # row -> graph row, -1 for no gain
        if candidates is not None:
            self.slot = np.full(n, -1, np.int64)
            self.slot[candidates] = np.arange(len(candidates))

    @classmethod
    def from_embeddings(
        cls,
        embeddings: NDArray[np.float32],
        kernel_width: float,
        *,
        budget: int | None = None,
        strength: float = 1.0,
        seed: int = 0,
        backend: Backend = "auto",
        reference_size: int = REFERENCE_SIZE,
        neighbours: NeighbourGraph | None = None,
    ) -> CoverageObjective:
        """Build the truncated kernel of ``embeddings`` (N, D) against its reference rows.

        Args:
            embeddings: (N, D) float32.
            kernel_width: sigma in units of the median pairwise distance.
            budget: How many samples will be picked (sets K); None: unknown (smallest K).
            strength: Exponent of the gain.
            seed: Seeds the reference subset and the scale sample.
            backend: knn backend.
            reference_size: Largest reference set (all rows below it).
            neighbours: The exact neighbour graph of ``embeddings`` over themselves: where
                every row is a reference row and the graph is at least K wide, the
                neighbourhoods are its first K columns (what the search would return).
        """
        n = embeddings.shape[0]
        if n > reference_size:
            reference_size = min(reference_size, max(MIN_REFERENCE, PAIR_BUDGET // n))
        rng = np.random.default_rng(seed)
        if n <= reference_size:
            ref = np.arange(n)
        else:
            ref = np.sort(rng.choice(n, reference_size, replace=False))
        n_ref = len(ref)
        k = max(MIN_NEIGHBORS, round(NEIGHBORS * n_ref / max(n, 1)))
        if budget is not None and budget > 0:
            k = max(k, math.ceil(COVER_FACTOR * n_ref / budget))
        k = max(min(k, n_ref), 0)
        candidates: NDArray[np.int64] | None = None
        queries = embeddings
        if n * k > GRAPH_BUDGET:
            if n_ref < n:
                candidates = ref
                queries = embeddings[ref]
            k = min(k, max(1, GRAPH_BUDGET // len(queries)))
        xr = np.ascontiguousarray(embeddings[ref])
        sigma = kernel_sigma(xr, kernel_width, seed=seed)
        if n == 0 or k == 0:
            d = np.zeros((len(queries), 0), np.float32)
            idx = np.zeros((len(queries), 0), np.int64)
        elif neighbours is not None and n_ref == n and candidates is None and neighbours.k >= k:
            d, idx = neighbours.first(k)
        else:
            d, idx = knn(queries, xr, k=k, backend=backend)
        w = np.exp(-(d.astype(np.float64) ** 2) / (2.0 * sigma * sigma)).astype(np.float32)
        return cls(
            idx.astype(np.int32),
            w,
            n_ref,
            embeddings,
            strength,
            candidates,
            reference=xr,
            sigma=sigma,
            backend=backend,
        )

    def gains(self, rows: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
        """(len(rows),) current gains (all rows when None), in [0, K / R]."""
        slots = self.slot if rows is None else self.slot[rows]
        has = slots >= 0
        out = np.zeros(len(slots), np.float64)
        nb, w = self.neighbors[slots[has]], self.weights[slots[has]]
        g = np.maximum(w - self.covered[nb], 0.0).sum(axis=1, dtype=np.float64)
        out[has] = g / self.n_reference
        return out

    def log_value(self) -> NDArray[np.float64]:
        """(N,) ``strength * log(gain)``; a zero gain is clipped to a tiny one."""
        return self.strength * safe_log(self.gains())

    def observe(self, i: int) -> None:
        """Row ``i`` was chosen: the reference rows it reaches are covered at least by it."""
        self.observe_many(np.array([i], np.int64))

    def observe_many(self, rows: NDArray[np.int64]) -> None:
        """Rows were chosen (picks, or preselected before the loop)."""
        slots = self.slot[rows]
        for j in slots[slots >= 0].tolist():
            nb = self.neighbors[j]
            self.covered[nb] = np.maximum(self.covered[nb], self.weights[j])
        others = rows[slots < 0]
        if others.size and self.reference is not None and self.neighbors.shape[1]:
            # Not candidates (a small pick from a huge pool): find what they reach now.
            k = self.neighbors.shape[1]
            d, idx = knn(self.embeddings[others], self.reference, k=k, backend=self.backend)
            w = np.exp(-(d.astype(np.float64) ** 2) / (2.0 * self.sigma**2)).astype(np.float32)
            for nb, wj in zip(idx, w, strict=True):
                self.covered[nb] = np.maximum(self.covered[nb], wj)


def build(cfg: CoverageStrategy, r: Resolved, pool: Pool) -> Objective:
    """The registry's builder: COVERAGE over the run's embeddings."""
    return CoverageObjective.from_embeddings(
        pool.embeddings,
        cfg.kernel_width,
        budget=pool.budget,
        strength=cfg.strength,
        seed=pool.seed,
        backend=cast(Backend, pool.backend),
        neighbours=pool.neighbours,
    )
