"""SIMILARITY: prefer samples close to query embeddings.

The objective is ``1 / (d + eps)``, where ``d`` is the distance to the nearest query and
``eps`` is 1e-3 of the mean such distance. With DIVERSITY the product is a ratio, "far from what
is chosen, close to the queries", which does not depend on the scale of the embeddings.

Example:
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [9.0]], dtype=np.float32)
    >>> s = SimilarityObjective(x, np.array([[8.0]], dtype=np.float32), backend="numpy")
    >>> int(np.argmax(s.static()))
    2
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np
from numpy.typing import NDArray

from thresher.selection.knn import Backend, knn
from thresher.selection.objective import Objective, Pool, safe_log

if TYPE_CHECKING:
    from thresher.config.selection import SimilarityStrategy
    from thresher.selection.inputs import Resolved


class SimilarityObjective(Objective):
    """Prefer samples near the queries.

    Args:
        embeddings: (N, D) float32 pool embeddings.
        queries: (Q, D) float32 query embeddings, Q >= 1.
        strength: Exponent; negative prefers samples far from the queries.
        backend: knn backend.
    """

    name = "SIMILARITY"

    def __init__(
        self,
        embeddings: NDArray[np.float32],
        queries: NDArray[np.float32],
        strength: float = 1.0,
        backend: Backend = "auto",
    ) -> None:
        super().__init__(strength)
        d, _ = knn(embeddings, queries, k=1, backend=backend)
        self.distance = d[:, 0].astype(np.float64)
        eps = 1e-3 * float(self.distance.mean()) + 1e-12
        self._log = self.strength * safe_log(1.0 / (self.distance + eps))

    def static(self) -> NDArray[np.float64]:
        """Constant log-similarity times strength."""
        return self._log


def build(cfg: SimilarityStrategy, r: Resolved, pool: Pool) -> Objective:
    """The registry's builder: SIMILARITY to the resolved query embeddings."""
    assert r.values is not None
    return SimilarityObjective(
        pool.embeddings,
        np.asarray(r.values, np.float32),
        cfg.strength,
        backend=cast(Backend, pool.backend),
    )
