"""The read-only registry of strategies, keyed by the config's ``strategy.type`` names.

One line per strategy: its config class (which declares the input kinds it accepts, see
:data:`thresher.config.selection.InputKind`) and the function that builds its
:class:`~thresher.selection.objective.Objective` from the config, the resolved input values
and the pool. docs/architecture.md lists the files a new strategy touches.

Example:
    >>> sorted(REGISTRY)
    ['BALANCE', 'COVERAGE', 'DIVERSITY', 'SIMILARITY', 'THRESHOLD', 'TYPICALITY', 'WEIGHTS']
    >>> REGISTRY["BALANCE"].input_kinds
    ('categorical', 'distribution')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from thresher.config.selection import (
    BalanceStrategy,
    CoverageStrategy,
    DiversityStrategy,
    InputKind,
    SimilarityStrategy,
    ThresholdStrategy,
    TypicalityStrategy,
    WeightsStrategy,
    strategy_type,
)
from thresher.selection import (
    balance,
    coverage,
    diversity,
    similarity,
    threshold,
    typicality,
    weights,
)
from thresher.selection.inputs import Resolved
from thresher.selection.objective import Objective, Pool


@dataclass(frozen=True)
class StrategySpec:
    """How to build one strategy type.

    Attributes:
        config: The pydantic class of its config; its ``accepts`` names the input kinds.
        build: ``(config, resolved input, pool) -> Objective``.
    """

    config: type[Any]
    build: Callable[[Any, Resolved, Pool], Objective]

    @property
    def name(self) -> str:
        """The ``strategy.type`` name."""
        return strategy_type(self.config)

    @property
    def input_kinds(self) -> tuple[InputKind, ...]:
        """The resolved input kinds it accepts (declared on its config class)."""
        kinds: tuple[InputKind, ...] = self.config.accepts
        return kinds


_SPECS = (
    StrategySpec(DiversityStrategy, diversity.build),
    StrategySpec(WeightsStrategy, weights.build),
    StrategySpec(ThresholdStrategy, threshold.build),
    StrategySpec(BalanceStrategy, balance.build),
    StrategySpec(SimilarityStrategy, similarity.build),
    StrategySpec(TypicalityStrategy, typicality.build),
    StrategySpec(CoverageStrategy, coverage.build),
)

REGISTRY: Mapping[str, StrategySpec] = MappingProxyType({s.name: s for s in _SPECS})
