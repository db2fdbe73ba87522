"""Unit checks of single objectives: the paths the end-to-end tests do not reach."""

from __future__ import annotations

import numpy as np

from thresher.selection.balance import BalanceObjective
from thresher.selection.diversity import DiversityObjective
from thresher.selection.objective import minmax_weights
from thresher.selection.typicality import typicality
from thresher.selection.weights import WeightsObjective


def test_typicality_reference_subset_tracks_exact() -> None:
    rng = np.random.default_rng(0)
    # Two blobs of different density: the dense one must stay more typical.
    x = np.concatenate([rng.normal(0, 0.1, (300, 2)), rng.normal(5, 1.0, (300, 2))])
    x = x.astype(np.float32)
    exact = typicality(x, 10, backend="numpy")
    approx = typicality(x, 10, backend="numpy", reference_size=150, seed=3)
    assert approx.max() == 1.0 and (approx > 0).all()
    # Same ordering up to noise (rank correlation), which is what a greedy product needs.
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(rank(exact), rank(approx))[0, 1] > 0.8
    assert approx[:300].mean() > approx[300:].mean()


def test_preselected_many_rows_through_knn_equals_one_by_one() -> None:
    x = np.random.default_rng(1).normal(size=(200, 4)).astype(np.float32)
    rows = np.arange(0, 40, 2, dtype=np.int64)
    a, b = DiversityObjective(x, backend="numpy"), DiversityObjective(x)
    a.observe_many(rows)
    for r in rows.tolist():
        b.observe(r)
    np.testing.assert_allclose(a.min_dist, b.min_dist, atol=1e-4)


def test_balance_input_distribution_keeps_pool_shares() -> None:
    labels = np.array(["a"] * 60 + ["b"] * 30 + ["c"] * 10, dtype=object)
    bal = BalanceObjective.from_labels(labels, distribution="INPUT")
    chosen: list[int] = []
    for _ in range(20):
        v = bal.log_value().copy()
        v[chosen] = -np.inf
        i = int(np.argmax(v))
        chosen.append(i)
        bal.observe(i)
    got = {c: int((labels[chosen] == c).sum()) for c in "abc"}
    assert got == {"a": 12, "b": 6, "c": 2}


def test_balance_soft_distribution_and_missing_mass() -> None:
    m = np.array([[0.9, 0.1], [0.2, 0.8], [0.0, 0.0]], np.float32)
    bal = BalanceObjective(m, ["x", "y"], {"x": 1.0})
    # Row 2 has no class mass: it goes to the "other" bucket, whose target is 0.
    assert bal.bucket_names == ["x", "<other>"]
    assert int(np.argmax(bal.log_value())) == 0


def test_minmax_weights_range_and_constant() -> None:
    w = minmax_weights(np.array([-5.0, 0.0, 5.0]))
    assert w.tolist() == [0.01, 0.505, 1.0]
    assert minmax_weights(np.array([3.0, 3.0])).tolist() == [1.0, 1.0]


def test_weights_max_sum_eligibility() -> None:
    w = WeightsObjective(np.array([3.0, 1.0, 2.0]), max_sum=4.0)
    w.observe(0)
    allowed = w.allowed()
    assert allowed is not None and allowed.tolist() == [False, True, False]
