"""Combination, threshold-first, preselected and engine-equivalence tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from selection_fixtures import make_inputs

from thresher.errors import ConfigError, NotSupportedYetError
from thresher.selection import select
from thresher.selection.combiner import greedy
from thresher.selection.diversity import DiversityObjective
from thresher.selection.typicality import TypicalityObjective, typicality
from thresher.selection.weights import WeightsObjective

E = {"type": "EMBEDDINGS"}


def _naive(x: np.ndarray, w: np.ndarray, typ: np.ndarray, n: int) -> list[int]:
    """Textbook greedy: argmax of distance-to-chosen * weight * typicality, recomputed."""
    chosen: list[int] = []
    mu = x.mean(0)
    for _ in range(n):
        best, arg = -np.inf, -1
        for i in range(len(x)):
            if i in chosen:
                continue
            if chosen:
                div = min(float(np.linalg.norm(x[i] - x[c])) for c in chosen)
            else:
                div = 1.0 / (1.0 + float(np.linalg.norm(x[i] - mu)))
            v = np.log(max(div, 1e-12)) + np.log(w[i]) + np.log(typ[i])
            if v > best:
                best, arg = v, i
        chosen.append(arg)
    return chosen


def test_product_of_objectives_matches_naive_greedy() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    vals = rng.random(40)
    typ = typicality(x, 5, backend="numpy")
    w = 0.01 + 0.99 * (vals - vals.min()) / (vals.max() - vals.min())
    cfg = {
        "n_samples": 12,
        "strategies": [
            {"input": E, "strategy": {"type": "DIVERSITY"}},
            {"input": {"type": "METADATA", "key": "v"}, "strategy": {"type": "WEIGHTS"}},
            {"input": E, "strategy": {"type": "TYPICALITY", "num_nearest_neighbors": 5}},
        ],
    }
    got = select(cfg, embeddings=x, metadata={"v": vals}, backend="numpy").tolist()
    assert got == _naive(x, w, typ, 12)


def test_thresholds_apply_first() -> None:
    inputs = make_inputs()
    m = inputs["metadata"]["m.num"]
    cfg = {
        "n_samples": 1000,
        "strategies": [
            {"input": E, "strategy": {"type": "DIVERSITY"}},
            {
                "input": {"type": "METADATA", "key": "m.num"},
                "strategy": {"type": "THRESHOLD", "threshold": 0.5, "operation": "SMALLER"},
            },
        ],
    }
    picks = select(cfg, **inputs)
    assert set(picks.tolist()) == set(np.flatnonzero(m < 0.5).tolist())
    cfg["n_samples"] = 5
    assert all(m[p] < 0.5 for p in select(cfg, **inputs))


def test_two_thresholds_intersect() -> None:
    inputs = make_inputs()
    m = inputs["metadata"]["m.num"]
    th = [
        {
            "input": {"type": "METADATA", "key": "m.num"},
            "strategy": {"type": "THRESHOLD", "threshold": t, "operation": op},
        }
        for t, op in ((0.2, "BIGGER"), (0.6, "SMALLER_EQUAL"))
    ]
    picks = select({"n_samples": 100, "strategies": th}, **inputs)
    assert set(picks.tolist()) == set(np.flatnonzero((m > 0.2) & (m <= 0.6)).tolist())


def test_diversity_with_balance_keeps_both() -> None:
    inputs = make_inputs(n=300)
    cats = inputs["metadata"]["m.cat"]
    cfg = {
        "n_samples": 60,
        "strategies": [
            {"input": E, "strategy": {"type": "DIVERSITY"}},
            {
                "input": {"type": "METADATA", "key": "m.cat"},
                "strategy": {"type": "BALANCE", "target": {"a": 0.6, "b": 0.2, "c": 0.2}},
            },
        ],
    }
    picks = select(cfg, **inputs)
    share_a = float(np.mean(cats[picks] == "a"))
    assert 0.5 <= share_a <= 0.7


def test_preselected_count_as_chosen_for_diversity() -> None:
    # Chosen row 0 at 0: the next DIVERSITY pick is the farthest from it, 11 (row 4).
    x = np.asarray([0, 1, 2, 10, 11], np.float32)[:, None]
    cfg = {"n_samples": 1, "strategies": [{"input": E, "strategy": {"type": "DIVERSITY"}}]}
    assert select(cfg, embeddings=x, preselected=[0]).tolist() == [4]


def test_proportion_counts_non_preselected_rows() -> None:
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    assert len(select({"proportion_samples": 0.2}, embeddings=x, preselected=range(10))) == 8


def test_minus_one_selects_until_stopping_condition() -> None:
    x = np.asarray([0, 1, 2, 10, 11], np.float32)[:, None]
    s = {"type": "DIVERSITY", "stopping_condition_minimum_distance": 1.5}
    assert (
        len(select({"n_samples": -1, "strategies": [{"input": E, "strategy": s}]}, embeddings=x))
        == 3
    )
    assert len(select({"n_samples": -1}, embeddings=x)) == 5


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("shortlist", "pool_size"), [(4, 16), (8, 100), (2048, 32768)])
def test_lazy_engine_matches_dense(seed: int, shortlist: int, pool_size: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    typ = typicality(x, 8, backend="numpy")
    pre = np.array([5, 17], np.int64)
    runs = []
    for engine in ("dense", "lazy"):
        objs = [
            DiversityObjective(x, 1.0, 0.5),
            TypicalityObjective(typ, 1.5),
            WeightsObjective(np.linspace(0, 1, 400), 0.3),
        ]
        runs.append(
            greedy(objs, 400, 150, pre, engine=engine, shortlist=shortlist, pool_size=pool_size)
        )
    assert np.array_equal(runs[0], runs[1])


def test_lazy_refused_for_dynamic_mix() -> None:
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="lazy"):
        greedy([DiversityObjective(x, -1.0)], 4, 2, engine="lazy")


def test_unsupported_keys_refused_at_selection() -> None:
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(NotSupportedYetError, match="lightly_path_regex"):
        select({"n_samples": 2, "lightly_path_regex": ".*"}, embeddings=x)


def test_object_level_configs_select_over_the_rows_given() -> None:
    # The pipeline makes and embeds the crops (docs/objects.md); the engine picks rows.
    x = np.eye(4, dtype=np.float32)
    tiling = {"type": "TILING", "name": "t", "num_rows": 2, "num_cols": 2}
    obj = [{"input": {"type": "EMBEDDINGS", "task": "t"}, "strategy": {"type": "DIVERSITY"}}]
    picked = select({"n_samples": 2, "auto_tasks": [tiling], "strategies": obj}, embeddings=x)
    assert len(set(picked.tolist())) == 2


@pytest.mark.parametrize(
    ("entry", "kw", "match"),
    [
        (
            {"input": {"type": "METADATA", "key": "nope"}, "strategy": {"type": "WEIGHTS"}},
            {},
            "no metadata values for key 'nope'",
        ),
        (
            {
                "input": {"type": "METADATA", "key": "m.num"},
                "strategy": {"type": "BALANCE", "distribution": "UNIFORM"},
            },
            {},
            "BALANCE needs categorical",
        ),
        (
            {"input": {"type": "METADATA", "key": "m.cat"}, "strategy": {"type": "WEIGHTS"}},
            {},
            "needs numeric metadata",
        ),
        (
            {
                "input": {"type": "SCORES", "task": "zzz", "score": "uncertainty_margin"},
                "strategy": {"type": "WEIGHTS"},
            },
            {},
            "no scores for task 'zzz'",
        ),
        (
            {
                "input": {"type": "EMBEDDINGS", "tag_name": "missing"},
                "strategy": {"type": "SIMILARITY"},
            },
            {},
            "no query embeddings for 'missing'",
        ),
        (
            {"input": {"type": "METADATA", "key": "m.num"}, "strategy": {"type": "WEIGHTS"}},
            {"metadata": {"m.num": np.array([np.nan] * 60)}},
            "NaN",
        ),
    ],
)
def test_input_errors_name_the_input(entry: dict[str, Any], kw: dict[str, Any], match: str) -> None:
    inputs = make_inputs()
    inputs.update(kw)
    with pytest.raises(ConfigError, match=match):
        select({"n_samples": 3, "strategies": [entry]}, **inputs)
