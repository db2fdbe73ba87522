"""DIVERSITY: prefer samples far from everything already chosen (greedy k-center).

The objective of a sample is its Euclidean distance to the nearest chosen sample
(preselected included). It is updated incrementally after each pick with one (N, D) x (D,)
product, never an N x N matrix. Before anything is chosen, the objective is
``1 / (1 + distance to the mean)``, so a lone DIVERSITY starts from the most central sample
instead of an arbitrary one. With ``stopping_condition_minimum_distance`` a sample closer than
that to a chosen one is no longer eligible, and the selection ends when none is left.

On a CUDA machine the distance updates run on the GPU through torch.

Example:
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [10.0]], dtype=np.float32)
    >>> d = DiversityObjective(x)
    >>> d.observe(0)
    >>> d.min_dist.tolist()
    [0.0, 1.0, 10.0]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from thresher.selection._device import cuda_available
from thresher.selection.knn import Backend, knn
from thresher.selection.objective import Objective, Pool, safe_log

if TYPE_CHECKING:
    from thresher.config.selection import DiversityStrategy
    from thresher.selection.inputs import Resolved


def _cuda_tensor(x: NDArray[np.float32]) -> Any:
    if not cuda_available():
        return None
    import torch  # pragma: no cover - needs a GPU

    return torch.from_numpy(x).cuda()  # pragma: no cover - needs a GPU


def distances_to(
    x: NDArray[np.float32], sq: NDArray[np.float32], c: NDArray[np.float32], c_sq: float
) -> NDArray[np.float32]:
    """(N,) Euclidean distances from every row of ``x`` to one point ``c``.

    Args:
        x: (N, D) float32 rows.
        sq: (N,) their squared norms.
        c: (D,) float32 point.
        c_sq: Its squared norm.
    """
    d2 = sq - 2.0 * (x @ c) + c_sq
    out: NDArray[np.float32] = np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2)
    return out


class DiversityObjective(Objective):
    """Farthest-point objective with incremental nearest-chosen distances.

    The dense engine calls :meth:`observe` after every pick (one pass over N); the lazy
    engine in :mod:`thresher.selection.combiner` keeps ``min_dist`` as upper bounds and
    refreshes only the rows that compete for the next picks.

    Args:
        embeddings: (N, D) float32.
        strength: Exponent; negative prefers samples close to the chosen ones.
        minimum_distance: ``stopping_condition_minimum_distance``, or None.
        sq_norms: (N,) squared norms if already computed.
        backend: knn backend used for preselected samples.
    """

    name = "DIVERSITY"
    dynamic = True

    def __init__(
        self,
        embeddings: NDArray[np.float32],
        strength: float = 1.0,
        minimum_distance: float | None = None,
        sq_norms: NDArray[np.float32] | None = None,
        backend: Backend = "auto",
    ) -> None:
        super().__init__(strength)
        self.x = embeddings
        if sq_norms is None:
            sq_norms = np.einsum("ij,ij->i", embeddings, embeddings)
        self.sq = sq_norms
        self.minimum_distance = minimum_distance
        self.backend = backend
        n = embeddings.shape[0]
        self.min_dist = np.full(n, np.inf, np.float32)
        self.chosen: list[int] = []
        self._gpu = _cuda_tensor(embeddings) if n >= 100_000 else None

    @property
    def n_chosen(self) -> int:
        """How many samples are chosen (preselected included)."""
        return len(self.chosen)

    def initial(self) -> NDArray[np.float64]:
        """(N,) strength * log objective before anything is chosen (centrality)."""
        mu = self.x.mean(axis=0, dtype=np.float64).astype(np.float32)
        d = distances_to(self.x, self.sq, mu, float(mu @ mu))
        return self.strength * safe_log(1.0 / (1.0 + d))

    def log_value(self) -> NDArray[np.float64]:
        """(N,) strength * log(distance to the nearest chosen sample)."""
        if self.n_chosen == 0:
            return self.initial()
        return self.strength * safe_log(self.min_dist)

    def allowed(self) -> NDArray[np.bool_] | None:
        """Samples at least ``minimum_distance`` from every chosen one."""
        if self.minimum_distance is None or self.n_chosen == 0:
            return None
        return np.asarray(self.min_dist >= self.minimum_distance, bool)

    def observe(self, i: int) -> None:
        """Lower the nearest-chosen distances with the new pick (one pass over N)."""
        if self._gpu is not None:  # pragma: no cover - needs a GPU
            import torch

            d = torch.cdist(self._gpu, self._gpu[i][None, :])[:, 0].cpu().numpy()
        else:
            d = distances_to(self.x, self.sq, self.x[i], float(self.sq[i]))
        np.minimum(self.min_dist, d, out=self.min_dist)
        self.min_dist[i] = 0.0
        self.chosen.append(i)

    def observe_many(self, rows: NDArray[np.int64]) -> None:
        """Distances to the nearest of many chosen rows at once, through knn."""
        if rows.size == 0:
            return
        if rows.size <= 8:
            super().observe_many(rows)
            return
        d, _ = knn(self.x, self.x[rows], k=1, backend=self.backend)
        np.minimum(self.min_dist, d[:, 0], out=self.min_dist)
        self.min_dist[rows] = 0.0
        self.chosen.extend(rows.tolist())


def build(cfg: DiversityStrategy, r: Resolved, pool: Pool) -> Objective:
    """The registry's builder: a DIVERSITY objective over the pool's embeddings."""
    return DiversityObjective(
        pool.embeddings,
        cfg.strength,
        cfg.stopping_condition_minimum_distance,
        sq_norms=pool.sq_norms(),
        backend=cast(Backend, pool.backend),
    )
