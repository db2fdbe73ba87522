"""The interface every strategy implements, and the values it works on.

A strategy bound to its input values is an :class:`Objective`. The greedy combiner
(:mod:`thresher.selection.combiner`) asks each objective for

- a hard filter (:meth:`Objective.keep`), applied before anything else (THRESHOLD);
- a constant per-sample log-objective (:meth:`Objective.static`), already multiplied by the
  strength (WEIGHTS, SIMILARITY, TYPICALITY);
- for dynamic objectives (DIVERSITY, BALANCE, WEIGHTS with a sum condition), the current
  log-objective and eligibility after each pick (:meth:`Objective.log_value`,
  :meth:`Objective.allowed`, :meth:`Objective.observe`).

Every pick maximises ``sum_i strength_i * log(objective_i)``, i.e. the product of each
objective raised to its strength. Objective values are clipped to ``[TINY, HUGE]`` first, so a
zero objective is a very small number rather than ``-inf`` and negative strengths stay finite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from thresher.selection.knn import NeighbourGraph

TINY = 1e-12
HUGE = 1e12


def safe_log(x: NDArray[Any]) -> NDArray[np.float64]:
    """``log(clip(x, TINY, HUGE))`` in float64."""
    return np.log(np.clip(np.asarray(x, np.float64), TINY, HUGE))


@dataclass
class Pool:
    """The arrays a selection runs over; built and validated by :func:`thresher.selection.select`.

    Attributes:
        embeddings: (N, D) float32, finite.
        seed: The run's seed; the only source of randomness.
        backend: knn backend name (see :func:`thresher.selection.knn.knn`).
        budget: Number of new picks asked for, None when unbounded (COVERAGE sizes its
            neighbourhoods with it).
        neighbours: The exact neighbour graph of the embeddings over themselves, when one was
            searched already (COVERAGE reuses it); None otherwise.
        cache: Per-run scratch space shared by objectives (e.g. squared norms).
    """

    embeddings: NDArray[np.float32]
    seed: int = 0
    backend: str = "auto"
    budget: int | None = None
    neighbours: NeighbourGraph | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.embeddings.shape[0])

    def sq_norms(self) -> NDArray[np.float32]:
        """(N,) squared L2 norms of the embeddings, computed once."""
        if "sq" not in self.cache:
            x = self.embeddings
            self.cache["sq"] = np.einsum("ij,ij->i", x, x).astype(np.float32)
        out: NDArray[np.float32] = self.cache["sq"]
        return out


class Objective:
    """Base class: a strategy bound to its values. Subclasses override what they need.

    Attributes:
        name: The strategy type (``"DIVERSITY"``...).
        strength: Exponent of the objective in the product.
        dynamic: True when :meth:`log_value` or :meth:`allowed` change after picks.
    """

    name: str = ""
    dynamic: bool = False

    def __init__(self, strength: float = 1.0) -> None:
        self.strength = float(strength)

    def keep(self) -> NDArray[np.bool_] | None:
        """(N,) hard filter applied before the greedy loop, or None."""
        return None

    def static(self) -> NDArray[np.float64] | None:
        """(N,) constant ``strength * log(objective)``, or None."""
        return None

    def log_value(self) -> NDArray[np.float64] | None:
        """(N,) current ``strength * log(objective)`` of a dynamic objective, or None."""
        return None

    def allowed(self) -> NDArray[np.bool_] | None:
        """(N,) current eligibility of a dynamic objective (stopping conditions), or None."""
        return None

    def observe(self, i: int) -> None:
        """Row ``i`` was picked."""

    def observe_many(self, rows: NDArray[np.int64]) -> None:
        """Rows were chosen before the loop (preselected); by default one at a time."""
        for i in rows.tolist():
            self.observe(int(i))


def minmax_weights(values: NDArray[np.float64], eps: float = 0.01) -> NDArray[np.float64]:
    """Rescale values to ``[eps, 1]`` by min-max over the pool (all 1 when constant).

    Why: a product of objectives needs positive factors, and user values (metadata, counts)
    can be zero or negative. ``eps`` keeps the least wanted sample 100x less likely, not
    impossible, so a weight never vetoes the other objectives outright.
    """
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.ones_like(values, dtype=np.float64)
    return eps + (1.0 - eps) * (values - lo) / (hi - lo)
