"""THRESHOLD: a hard filter on a numeric input, applied before every other strategy.

Example:
    >>> import numpy as np
    >>> ThresholdObjective(np.array([1.0, 5.0, 3.0]), 3.0, "BIGGER_EQUAL").keep().tolist()
    [False, True, True]
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.selection.objective import Objective

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
