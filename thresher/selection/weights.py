"""WEIGHTS: prefer samples with high input values; optional sum conditions.

The objective is the input rescaled to [0.01, 1] (:func:`minmax_weights`). With
``stopping_condition_max_sum`` (or ``target_range.max_sum``) no pick may push the sum of the
raw values of the chosen samples (preselected included) above the bound; the selection ends
when nothing fits. With ``target_range.min_sum`` the preference for high values holds until the
sum reaches ``min_sum``, then becomes neutral so the other strategies decide.

Example:
    >>> import numpy as np
    >>> w = WeightsObjective(np.array([0.0, 1.0, 0.5]))
    >>> int(np.argmax(w.static()))
    1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from thresher.selection.objective import Objective, Pool, minmax_weights, safe_log

if TYPE_CHECKING:
    from thresher.config.selection import WeightsStrategy
    from thresher.selection.inputs import Resolved


class WeightsObjective(Objective):
    """Prefer high values.

    Args:
        values: (N,) numeric input values (finite).
        strength: Exponent; negative prefers low values.
        max_sum: Upper bound on the sum of chosen raw values, or None.
        min_sum: Sum after which the preference becomes neutral, or None.
    """

    name = "WEIGHTS"

    def __init__(
        self,
        values: NDArray[np.float64],
        strength: float = 1.0,
        max_sum: float | None = None,
        min_sum: float | None = None,
    ) -> None:
        super().__init__(strength)
        self.values = np.asarray(values, np.float64)
        self._log = self.strength * safe_log(minmax_weights(self.values))
        self.max_sum = max_sum
        self.min_sum = min_sum
        self.total = 0.0
        self.dynamic = max_sum is not None or min_sum is not None

    def static(self) -> NDArray[np.float64] | None:
        """The constant log-weights (None when a sum condition makes them dynamic)."""
        return None if self.dynamic else self._log

    def log_value(self) -> NDArray[np.float64] | None:
        """The log-weights until ``min_sum`` is reached, then neutral."""
        if not self.dynamic:
            return None
        if self.min_sum is not None and self.total >= self.min_sum:
            return np.zeros_like(self._log)
        return self._log

    def allowed(self) -> NDArray[np.bool_] | None:
        """Samples that still fit under ``max_sum``."""
        if self.max_sum is None:
            return None
        return np.asarray(self.total + self.values <= self.max_sum + 1e-9, bool)

    def observe(self, i: int) -> None:
        """Add the pick's value to the running sum."""
        self.total += float(self.values[i])

    def observe_many(self, rows: NDArray[np.int64]) -> None:
        """Add the preselected values to the running sum."""
        self.total += float(self.values[rows].sum())


def build(cfg: WeightsStrategy, r: Resolved, pool: Pool) -> Objective:
    """The registry's builder: WEIGHTS over a numeric input, sum conditions merged."""
    assert r.values is not None
    max_sum = cfg.stopping_condition_max_sum
    min_sum = None
    if cfg.target_range is not None:
        min_sum = cfg.target_range.min_sum
        if cfg.target_range.max_sum is not None:
            max_sum = (
                cfg.target_range.max_sum
                if max_sum is None
                else min(max_sum, cfg.target_range.max_sum)
            )
    return WeightsObjective(r.values, cfg.strength, max_sum=max_sum, min_sum=min_sum)
