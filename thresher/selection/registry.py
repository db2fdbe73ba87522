"""The read-only registry of strategies, keyed by the config's ``strategy.type`` names.

Each entry builds an :class:`~thresher.selection.objective.Objective` from a strategy config,
the resolved input values and the pool.

Example:
    >>> sorted(REGISTRY)
    ['BALANCE', 'DIVERSITY', 'SIMILARITY', 'THRESHOLD', 'TYPICALITY', 'WEIGHTS']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

import numpy as np

from thresher.config.selection import (
    BalanceStrategy,
    DiversityStrategy,
    SimilarityStrategy,
    ThresholdStrategy,
    TypicalityStrategy,
    WeightsStrategy,
)
from thresher.selection.balance import BalanceObjective
from thresher.selection.diversity import DiversityObjective
from thresher.selection.inputs import Resolved
from thresher.selection.knn import Backend
from thresher.selection.objective import Objective, Pool
from thresher.selection.similarity import SimilarityObjective
from thresher.selection.threshold import ThresholdObjective
from thresher.selection.typicality import TypicalityObjective, typicality
from thresher.selection.weights import WeightsObjective


@dataclass(frozen=True)
class StrategySpec:
    """How to build one strategy type.

    Attributes:
        name: The ``strategy.type`` name.
        config: The pydantic class of its config.
        input_kinds: The resolved input kinds it accepts.
        build: ``(config, resolved input, pool) -> Objective``.
    """

    name: str
    config: type
    input_kinds: tuple[str, ...]
    build: Callable[[Any, Resolved, Pool], Objective]


def _diversity(cfg: DiversityStrategy, r: Resolved, pool: Pool) -> Objective:
    return DiversityObjective(
        pool.embeddings,
        cfg.strength,
        cfg.stopping_condition_minimum_distance,
        sq_norms=pool.sq_norms(),
        backend=cast(Backend, pool.backend),
    )


def _weights(cfg: WeightsStrategy, r: Resolved, pool: Pool) -> Objective:
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


def _threshold(cfg: ThresholdStrategy, r: Resolved, pool: Pool) -> Objective:
    assert r.values is not None
    return ThresholdObjective(r.values, cfg.threshold, cfg.operation)


def _balance(cfg: BalanceStrategy, r: Resolved, pool: Pool) -> Objective:
    assert r.values is not None
    if r.kind == "categorical":
        return BalanceObjective.from_labels(r.values, cfg.target, cfg.distribution, cfg.strength)
    return BalanceObjective(r.values, r.classes, cfg.target, cfg.distribution, cfg.strength)


def _similarity(cfg: SimilarityStrategy, r: Resolved, pool: Pool) -> Objective:
    assert r.values is not None
    return SimilarityObjective(
        pool.embeddings,
        np.asarray(r.values, np.float32),
        cfg.strength,
        backend=cast(Backend, pool.backend),
    )


def _typicality(cfg: TypicalityStrategy, r: Resolved, pool: Pool) -> Objective:
    # Strategies with the same K share one kNN search.
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


REGISTRY: Mapping[str, StrategySpec] = MappingProxyType(
    {
        "DIVERSITY": StrategySpec("DIVERSITY", DiversityStrategy, ("embeddings",), _diversity),
        "WEIGHTS": StrategySpec("WEIGHTS", WeightsStrategy, ("numeric",), _weights),
        "THRESHOLD": StrategySpec("THRESHOLD", ThresholdStrategy, ("numeric",), _threshold),
        "BALANCE": StrategySpec(
            "BALANCE", BalanceStrategy, ("categorical", "distribution"), _balance
        ),
        "SIMILARITY": StrategySpec("SIMILARITY", SimilarityStrategy, ("queries",), _similarity),
        "TYPICALITY": StrategySpec("TYPICALITY", TypicalityStrategy, ("embeddings",), _typicality),
    }
)
