"""The selection_config schema: one class per type, allowed pairs, the size rule."""

from __future__ import annotations

from typing import Any

import pytest

from thresher.config._base import parse_config
from thresher.config.selection import SelectionConfig, default_strategies
from thresher.errors import ConfigError


def parse(data: dict[str, Any]) -> SelectionConfig:
    return parse_config(SelectionConfig, data, "selection_config")


def entry(inp: dict[str, Any], strat: dict[str, Any]) -> dict[str, Any]:
    return {"n_samples": 5, "strategies": [{"input": inp, "strategy": strat}]}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({}, "exactly one of 'n_samples' and 'proportion_samples' \\(neither is set\\)"),
        ({"n_samples": 3, "proportion_samples": 0.1}, "\\(both are set\\)"),
        ({"n_samples": -2}, "n_samples"),
        ({"proportion_samples": 1.5}, "proportion_samples"),
        ({"n_sampels": 3}, "Did you mean 'n_samples'"),
        ({"n_samples": 3, "strategies": []}, "strategies"),
    ],
)
def test_size_rules(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse(data)


def test_threshold_key_on_diversity_is_unknown() -> None:
    with pytest.raises(
        ConfigError,
        match=r"strategies\[0\].strategy: Unknown key "
        r"'threshold' for a DIVERSITY strategy",
    ):
        parse(entry({"type": "EMBEDDINGS"}, {"type": "DIVERSITY", "threshold": 1}))


@pytest.mark.parametrize(
    ("inp", "strategy", "allowed"),
    [
        (
            {"type": "SCORES", "task": "t", "score": "uncertainty_margin"},
            "DIVERSITY",
            "WEIGHTS, THRESHOLD",
        ),
        ({"type": "EMBEDDINGS"}, "WEIGHTS", "DIVERSITY, TYPICALITY"),
        ({"type": "RANDOM"}, "BALANCE", "WEIGHTS, THRESHOLD"),
        ({"type": "PREDICTIONS", "task": "t", "name": "CLASS_DISTRIBUTION"}, "WEIGHTS", "BALANCE"),
        (
            {"type": "PREDICTIONS", "task": "t", "name": "CATEGORY_COUNT"},
            "BALANCE",
            "WEIGHTS, THRESHOLD",
        ),
        ({"type": "METADATA", "key": "a.b"}, "DIVERSITY", "WEIGHTS, THRESHOLD, BALANCE"),
        ({"type": "EMBEDDINGS", "tag_name": "abc"}, "DIVERSITY", "SIMILARITY"),
    ],
)
def test_invalid_pairs_list_the_allowed(inp: dict[str, Any], strategy: str, allowed: str) -> None:
    extra = {"threshold": 1, "operation": "BIGGER"} if strategy == "THRESHOLD" else {}
    if strategy == "BALANCE":
        extra = {"distribution": "UNIFORM"}
    with pytest.raises(ConfigError, match=f"allowed: {allowed}"):
        parse(entry(inp, {"type": strategy, **extra}))


def test_similarity_needs_a_query() -> None:
    with pytest.raises(ConfigError, match="allowed: DIVERSITY, TYPICALITY"):
        parse(entry({"type": "EMBEDDINGS"}, {"type": "SIMILARITY"}))


@pytest.mark.parametrize(
    ("strat", "match"),
    [
        ({"type": "BALANCE"}, "needs 'target'"),
        ({"type": "BALANCE", "target": {"a": 0.7, "b": 0.6}}, "sum to at most 1"),
        ({"type": "TYPICALITY", "num_nearest_neighbors": 1}, "num_nearest_neighbors"),
        ({"type": "TYPICALITY", "stopping_condition_minimum_typicality": 0}, "typicality"),
        ({"type": "DIVERSITY", "strength": 2e9}, "strength"),
    ],
)
def test_strategy_parameter_rules(strat: dict[str, Any], match: str) -> None:
    inp = {"type": "METADATA", "key": "k"} if strat["type"] == "BALANCE" else {"type": "EMBEDDINGS"}
    with pytest.raises(ConfigError, match=match):
        parse(entry(inp, strat))


def test_unknown_builtin_metadata_key() -> None:
    with pytest.raises(ConfigError, match=r"lightly\.sharpness"):
        parse(entry({"type": "METADATA", "key": "lightly.blur"}, {"type": "WEIGHTS"}))


def test_default_recipe_and_n_for() -> None:
    cfg = parse({"n_samples": 7})
    assert [e.strategy.type for e in cfg.effective_strategies()] == [
        e.strategy.type for e in default_strategies()
    ]
    assert cfg.n_for(100) == 7
    assert parse({"proportion_samples": 0.25}).n_for(10) == 2
    assert parse({"n_samples": -1}).n_for(10) is None


def test_negative_strength_accepted() -> None:
    cfg = parse(entry({"type": "EMBEDDINGS"}, {"type": "DIVERSITY", "strength": -3}))
    assert cfg.effective_strategies()[0].strategy.strength == -3
