"""TYPICALITY: prefer samples in dense regions of the embedding space.

Typicality is the inverse mean distance to the K nearest neighbours (as in TypiClust,
Hacohen et al. 2022), divided by its maximum so it lies in (0, 1]. Samples below
``stopping_condition_minimum_typicality`` are filtered out before the greedy loop, which is how
a recipe prunes outliers.

Above :data:`REFERENCE_SIZE` rows the neighbours are searched in a seeded random subset, with K
scaled down by the subsampling ratio (at least 2): the density estimate keeps its ordering while
the search stays O(N * R * D) instead of O(N^2 * D). The subset has R = REFERENCE_SIZE rows,
fewer for very large N so that N * R stays below :data:`PAIR_BUDGET` (10,000 rows at N = 1M).

Example:
    >>> import numpy as np
    >>> x = np.array([[0.0], [0.1], [0.2], [5.0]], dtype=np.float32)
    >>> t = typicality(x, k=2, backend="numpy")
    >>> int(np.argmin(t))
    3
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np
from numpy.typing import NDArray

from thresher.selection.knn import Backend, knn
from thresher.selection.objective import Objective, Pool, safe_log

if TYPE_CHECKING:
    from thresher.config.selection import TypicalityStrategy
    from thresher.selection.inputs import Resolved

REFERENCE_SIZE = 20_000
PAIR_BUDGET = 10**10
MIN_REFERENCE = 2_000


def typicality(
    embeddings: NDArray[np.float32],
    k: int,
    *,
    seed: int = 0,
    backend: Backend = "auto",
    reference_size: int = REFERENCE_SIZE,
) -> NDArray[np.float64]:
    """(N,) typicality in (0, 1]: inverse mean K-NN distance over its maximum.

    Args:
        embeddings: (N, D) float32.
        k: Number of nearest neighbours (others than the sample itself).
        seed: Seeds the reference subset when N > ``reference_size``.
        backend: knn backend.
        reference_size: Largest database searched exactly.
    """
    n = embeddings.shape[0]
    if n <= 1:
        return np.ones(n, np.float64)
    if n > reference_size:
        reference_size = min(reference_size, max(MIN_REFERENCE, PAIR_BUDGET // n))
    if n <= reference_size:
        d, _ = knn(embeddings, embeddings, k=k, exclude_self=True, backend=backend)
    else:
        rng = np.random.default_rng(seed)
        ref = np.sort(rng.choice(n, size=reference_size, replace=False))
        kk = max(2, round(k * reference_size / n))
        d_all, i_all = knn(embeddings, embeddings[ref], k=kk + 1, backend=backend)
        # Drop each reference row's match with itself, keep the first kk others.
        pos = np.full(n, -1, np.int64)
        pos[ref] = np.arange(reference_size)
        is_self = i_all == pos[:, None]
        order = np.argsort(is_self, axis=1, kind="stable")[:, :kk]
        d = np.take_along_axis(d_all, order, axis=1)
    mean = d.astype(np.float64).mean(axis=1)
    typ = 1.0 / (mean + 1e-12)
    out: NDArray[np.float64] = typ / typ.max()
    return out


class TypicalityObjective(Objective):
    """Prefer typical samples; optionally drop those below a minimum typicality.

    Args:
        typicality: (N,) values in (0, 1] from :func:`typicality`.
        strength: Exponent; negative prefers atypical samples (outliers).
        minimum: ``stopping_condition_minimum_typicality`` in (0, 1], or None.
    """

    name = "TYPICALITY"

    def __init__(
        self,
        typicality: NDArray[np.float64],
        strength: float = 1.0,
        minimum: float | None = None,
    ) -> None:
        super().__init__(strength)
        self.typicality = typicality
        self.minimum = minimum
        self._log = self.strength * safe_log(typicality)

    def keep(self) -> NDArray[np.bool_] | None:
        """Samples at or above the minimum typicality."""
        if self.minimum is None:
            return None
        return np.asarray(self.typicality >= self.minimum - 1e-12, bool)

    def static(self) -> NDArray[np.float64]:
        """Constant log-typicality times strength."""
        return self._log


def build(cfg: TypicalityStrategy, r: Resolved, pool: Pool) -> Objective:
    """The registry's builder: TYPICALITY; strategies with the same K share one kNN search."""
    key = f"typicality:{cfg.num_nearest_neighbors}"
    if key not in pool.cache:
        pool.cache[key] = typicality(
            pool.embeddings,
            cfg.num_nearest_neighbors,
            seed=pool.seed,
            backend=cast(Backend, pool.backend),
        )
    return TypicalityObjective(
        pool.cache[key], cfg.strength, cfg.stopping_condition_minimum_typicality
    )
