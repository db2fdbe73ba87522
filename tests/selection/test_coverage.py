"""COVERAGE (kernel herding): planted picks, lazy vs dense engine, scale, saturation."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.selection import select
from thresher.selection.combiner import greedy
from thresher.selection.coverage import CoverageObjective, kernel_sigma
from thresher.selection.typicality import TypicalityObjective, typicality

E = {"type": "EMBEDDINGS"}


def coverage(n: int, width: float = 0.3) -> dict[str, object]:
    return {
        "n_samples": n,
        "strategies": [{"input": E, "strategy": {"type": "COVERAGE", "kernel_width": width}}],
    }


def test_one_pick_per_cluster_centre_before_any_outlier() -> None:
    # Three tight groups on a line: 9 points around 0, 5 around 5, 3 around 10, and two
    # lone outliers at -20 and 30. The median pairwise distance is about 5, so with width
    # 0.3 sigma is about 1.5: a pick covers its own group and nothing else. Each group's
    # middle point covers its group best, and a bigger group covers more, so the picks go
    # group by group, largest first, each at its centre; the outliers (which cover only
    # themselves) come after every group.
    rng = np.random.default_rng(0)
    groups = [
        np.linspace(-0.4, 0.4, 9),
        5 + np.linspace(-0.2, 0.2, 5),
        10 + np.array([-0.1, 0, 0.1]),
    ]
    values = np.concatenate([*groups, [-20.0, 30.0]])
    perm = rng.permutation(len(values))
    x = values[perm].astype(np.float32)[:, None]
    picks = select(coverage(5), embeddings=x, backend="numpy")
    picked = x[picks, 0].tolist()
    assert picked[0] == pytest.approx(0.0, abs=1e-6)
    assert picked[1] == pytest.approx(5.0, abs=1e-6)
    assert picked[2] == pytest.approx(10.0, abs=1e-6)
    assert sorted(picked[3:]) == [-20.0, 30.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lazy_engine_matches_dense(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    typ = typicality(x, 8, backend="numpy")
    pre = np.array([3, 40], np.int64)
    runs = []
    for engine in ("dense", "auto"):
        objs = [
            CoverageObjective.from_embeddings(x, 0.4, backend="numpy"),
            TypicalityObjective(typ, 0.7),
        ]
        runs.append(greedy(objs, 300, 120, pre, engine=engine))
    assert np.array_equal(runs[0], runs[1])
    assert not set(runs[1].tolist()) & {3, 40}


def test_scale_free() -> None:
    x = np.random.default_rng(1).normal(size=(200, 8)).astype(np.float32)
    a = select(coverage(30), embeddings=x)
    b = select(coverage(30), embeddings=x * 100)
    assert np.array_equal(a, b)


def test_kernel_sigma_is_width_times_median_distance() -> None:
    # Three points at 0, 1, 3: pairwise distances 1, 2, 3, median 2.
    x = np.array([[0.0], [1.0], [3.0]], np.float32)
    assert kernel_sigma(x, 0.5) == pytest.approx(1.0)


def test_saturated_coverage_continues_farthest_point() -> None:
    # 3,000 rows but only 2,000 reference rows (the smallest reference set), each row seeing
    # its 8 nearest. Picking 2,500 covers every reference row fully long before the end, so
    # the last picks come from the farthest-point continuation: still 2,500 unique rows.
    x = np.random.default_rng(2).normal(size=(3000, 4)).astype(np.float32)
    obj = CoverageObjective.from_embeddings(x, 0.3, reference_size=2000, backend="numpy")
    assert obj.n_reference == 2000
    picks = greedy([obj], 3000, 2500)
    assert len(picks) == 2500 == len(np.unique(picks))
    assert float(obj.gains().max()) == 0.0


def test_small_pick_from_a_large_pool_uses_reference_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a graph budget of 20,000 entries, 3,000 rows x K neighbours do not fit, so only
    # the 1,000 reference rows are candidates. A chosen row outside them (preselected) still
    # covers what lies around it: the gains in a planted tight group of 50 far rows drop once
    # one of its non-reference rows is chosen.
    from thresher.selection import coverage as cov_mod

    monkeypatch.setattr(cov_mod, "GRAPH_BUDGET", 20_000)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 3)).astype(np.float32)
    x[:50] = 20 + 0.05 * rng.normal(size=(50, 3))
    obj = CoverageObjective.from_embeddings(x, 0.3, budget=5, reference_size=1000)
    assert obj.n_reference == 1000 and int((obj.slot >= 0).sum()) == 1000
    picks = greedy([obj], 3000, 5)
    assert len(picks) == 5 and all(obj.slot[picks] >= 0)
    obj2 = CoverageObjective.from_embeddings(x, 0.3, budget=5, reference_size=1000)
    group = np.arange(50)
    outside = int(group[obj2.slot[group] < 0][0])
    before = obj2.gains(group).max()
    assert before > 0
    obj2.observe_many(np.array([outside]))
    assert obj2.gains(group).max() < 0.5 * before


@pytest.mark.parametrize("batch", [1, 7, 500])
def test_lazy_batches_match_dense(batch: int) -> None:
    from thresher.selection.combiner import _lazy_gain

    x = np.random.default_rng(5).normal(size=(250, 4)).astype(np.float32)
    dense = greedy(
        [CoverageObjective.from_embeddings(x, 0.4, backend="numpy")], 250, 80, engine="dense"
    )
    cand = np.ones(250, bool)
    obj = CoverageObjective.from_embeddings(x, 0.4, backend="numpy")
    lazy = _lazy_gain(obj, np.zeros(250), cand, 80, batch=batch)
    assert np.array_equal(dense, lazy)


def test_graph_stays_within_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3,000 rows, all of them reference rows, and a pick of 1 would want K = 3,000 (a dense
    # 9M-entry graph); with a budget of 30,000 entries K is cut to 10.
    from thresher.selection import coverage as cov_mod

    monkeypatch.setattr(cov_mod, "GRAPH_BUDGET", 30_000)
    x = np.random.default_rng(4).normal(size=(3000, 3)).astype(np.float32)
    obj = CoverageObjective.from_embeddings(x, 0.4, budget=1)
    assert obj.neighbors.shape == (3000, 10) and obj.weights.dtype == np.float32
    assert len(greedy([obj], 3000, 1)) == 1
