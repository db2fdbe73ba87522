"""THRESHOLD: a hard filter on a numeric input, applied before every other strategy.

Example:
    >>> import numpy as np
    >>> ThresholdObjective(np.array([1.0, 5.0, 3.0]), 3.0, "BIGGER_EQUAL").keep().tolist()
    [False, True, True]
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from thresher.selection.objective import Objective, Pool

if TYPE_CHECKING:
    from thresher.config.selection import ThresholdStrategy
    from thresher.selection.inputs import Resolved

OPERATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "SMALLER": operator.lt,
    "SMALLER_EQUAL": operator.le,
    "BIGGER": operator.gt,
    "BIGGER_EQUAL": operator.ge,
}


class ThresholdObjective(Objective):
    """Keep the samples whose value passes ``value <operation> threshold``.

    Args:
        values: (N,) numeric input values.
        threshold: The bound.
        operation: One of SMALLER, SMALLER_EQUAL, BIGGER, BIGGER_EQUAL.
    """

    name = "THRESHOLD"

    def __init__(self, values: NDArray[np.float64], threshold: float, operation: str) -> None:
        super().__init__(1.0)
        self._mask = np.asarray(OPERATIONS[operation](values, threshold), bool)

    def keep(self) -> NDArray[np.bool_]:
        """The samples that pass the threshold."""
        return self._mask


def build(cfg: ThresholdStrategy, r: Resolved, pool: Pool) -> Objective:
    """The registry's builder: a THRESHOLD filter over a numeric input."""
    assert r.values is not None
    return ThresholdObjective(r.values, cfg.threshold, cfg.operation)
