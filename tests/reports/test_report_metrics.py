"""Report metrics on tiny planted inputs whose answers are worked out by hand."""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pytest

from thresher.reports import metrics

LINE = np.array([[0.0], [1.0], [2.0], [3.0]])


def test_pairwise_histogram_of_four_points_on_a_line():
    # Pairs: (0,1)=1 (1,2)=1 (2,3)=1 (0,2)=2 (1,3)=2 (0,3)=3.
    # Bins [0.5,1.5) [1.5,2.5) [2.5,3.5] hold 3, 2, 1.
    h = metrics.pairwise_distance_histogram(LINE, bins=3, value_range=(0.5, 3.5))
    assert h["counts"] == [3, 2, 1]
    assert h["bins"] == pytest.approx([0.5, 1.5, 2.5, 3.5])
    assert (h["nPoints"], h["nPairs"], h["subsampled"]) == (4, 6, False)


def test_pairwise_histogram_default_range_is_zero_to_max_when_not_normalised():
    # Not unit norm, so the range is [0, max distance] = [0, 3]; bins [0,1) [1,2) [2,3].
    h = metrics.pairwise_distance_histogram(LINE, bins=3)
    assert h["range"] == [0.0, 3.0]
    assert h["counts"] == [0, 3, 3]


def test_distance_histograms_before_after_on_unit_circle():
    # Four unit vectors at 0, 90, 180, 270 degrees: 4 neighbouring pairs at sqrt(2) ~ 1.414
    # and 2 opposite pairs at 2. Normalised, so bins span [0, 2]: [0,.5) [.5,1) [1,1.5) [1.5,2].
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    h = metrics.distance_histograms(x, np.array([0, 2]), bins=4)
    assert h["before"]["counts"] == [0, 0, 4, 2]
    assert h["before"]["range"] == [0.0, 2.0]
    # Selecting the opposite pair 0 and 2 leaves one pair at distance 2.
    assert h["after"]["counts"] == [0, 0, 0, 1]
    assert h["after"]["bins"] == h["before"]["bins"]
    assert h["before"]["metrics"]["max"] == pytest.approx(2.0)
    assert h["before"]["metrics"]["min"] == pytest.approx(math.sqrt(2))


def test_pairwise_histogram_subsamples_to_the_memory_bound():
    x = np.random.default_rng(0).normal(size=(3000, 4))
    m = metrics.max_pairwise_points(2.0)
    assert m == metrics.MAX_PAIRWISE_POINTS == 2000
    h = metrics.pairwise_distance_histogram(x, max_points=m, seed=1)
    assert h["nPoints"] == 2000 and h["subsampled"]
    assert sum(h["counts"]) == h["nPairs"] == 2000 * 1999 // 2
    # Same seed, same subsample.
    assert metrics.pairwise_distance_histogram(x, max_points=m, seed=1)["counts"] == h["counts"]


def test_max_pairwise_points_follows_a_small_budget():
    # 1e-5 GB = 10,000 bytes; four float64 blocks of m*m: m = isqrt(10000 / 32) = 17.
    assert metrics.max_pairwise_points(1e-5) == 17
    with pytest.raises(ValueError, match="memory_requirement_in_GB"):
        metrics.max_pairwise_points(0)


def test_nearest_neighbor_in_set_on_a_line():
    # Points 0, 1, 3, 7: nearest neighbours are at 1, 1, 2, 4.
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert metrics.nearest_neighbor_in_set(x) == pytest.approx([1, 1, 2, 4])
    # Within the members {0, 3, 7} (indices 0, 2, 3): 3, 3, 4.
    assert metrics.nearest_neighbor_in_set(x, np.array([0, 2, 3])) == pytest.approx([3, 3, 4])
    assert metrics.nearest_neighbor_in_set(x, np.array([1])).size == 0


def test_coverage_distance_on_a_line():
    # Points 0, 1, 2, 3, 10 with 0 and 3 selected: distances to the nearest selected point are
    # 0, 1, 1, 0, 7 -> mean 9/5 = 1.8, median 1, max 7.
    x = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    stats = metrics.embedding_statistics(x, np.array([0, 3]), bins=7)
    cov = stats["distanceToCoverInput"]
    assert cov["metrics"]["mean"] == pytest.approx(1.8)
    assert cov["metrics"]["median"] == pytest.approx(1.0)
    assert cov["metrics"]["max"] == pytest.approx(7.0)
    assert cov["exact"] and cov["nQueries"] == 5
    # Not normalised: bins span [0, 7] (largest value seen); 7 bins of width 1.
    assert cov["counts"] == [2, 2, 0, 0, 0, 0, 1]
    nn = stats["distanceToNearestNeighborInSet"]
    # Input: 1, 1, 1, 1, 7 -> mean 2.2. Selected {0, 3}: 3, 3.
    assert nn["input"]["metrics"]["mean"] == pytest.approx(2.2)
    assert nn["selected"]["metrics"]["mean"] == pytest.approx(3.0)


def test_blocked_nearest_neighbors_match_brute_force():
    rng = np.random.default_rng(3)
    q, r = rng.normal(size=(37, 5)), rng.normal(size=(101, 5))
    full = np.linalg.norm(q[:, None] - r[None], axis=2)
    # A tiny block budget forces many reference blocks per query block.
    d, i = metrics.nearest_neighbors(q, r, block_bytes=8 * 37 * 3)
    assert i.tolist() == full.argmin(axis=1).tolist()
    assert d == pytest.approx(full.min(axis=1), abs=1e-6)
    # Excluding each query's own row in a self-search gives the second-smallest distance.
    d_self, i_self = metrics.nearest_neighbors(r, r, exclude=np.arange(101), block_bytes=4096)
    self_full = np.linalg.norm(r[:, None] - r[None], axis=2)
    np.fill_diagonal(self_full, np.inf)
    assert i_self.tolist() == self_full.argmin(axis=1).tolist()
    assert d_self == pytest.approx(self_full.min(axis=1), abs=1e-6)


def test_pca_of_points_on_a_diagonal_line():
    # Points at t = -1, 0, 1 along (1, 1, 0)/sqrt(2): all variance on PC 1, and the sign
    # convention (largest component positive) puts t = 1 at +1.
    u = np.array([1.0, 1.0, 0.0]) / math.sqrt(2)
    x = np.array([-1.0, 0.0, 1.0])[:, None] * u + np.array([5.0, 5.0, 5.0])
    xy, ratio = metrics.pca_2d(x)
    assert xy[:, 0] == pytest.approx([-1.0, 0.0, 1.0])
    assert xy[:, 1] == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert ratio == pytest.approx([1.0, 0.0], abs=1e-9)


def test_dataset_sizes_add_up_or_raise():
    sizes = dict(n_input=10, n_filtered=1, n_corrupt=2, n_duplicate=1, n_removed=4, n_selected=2)
    assert metrics.dataset_sizes(sizes) == {
        "nInput": 10,
        "nFiltered": 1,
        "nCorrupt": 2,
        "nDuplicate": 1,
        "nRemoved": 4,
        "nSelected": 2,
    }
    with pytest.raises(ValueError, match="do not add up"):
        metrics.dataset_sizes({**sizes, "n_selected": 3})
    with pytest.raises(ValueError, match="missing"):
        metrics.dataset_sizes({k: v for k, v in sizes.items() if k != "n_corrupt"})


def test_selected_removed_examples_are_the_closest_pairs():
    # Points 0, 1, 2, 3, 10 with x=0 and x=3 selected. Removed: 1 (d=1 to x=0),
    # 2 (d=1 to x=3), 10 (d=7 to x=3). Ties broken by index.
    x = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    names = ["a", "b", "c", "d", "e"]
    ex = metrics.selected_removed_examples(x, np.array([0, 3]), names, 3)
    assert [(e["removedImage"], e["selectedImage"]) for e in ex] == [
        ("b", "a"),
        ("c", "d"),
        ("e", "d"),
    ]
    assert [e["distance"] for e in ex] == pytest.approx([1, 1, 7])


def test_selected_removed_examples_prefer_distinct_selected_images():
    # Points 0, 0.1, 0.2, 5, 5.5 with x=0 and x=5 selected. By distance alone the two closest
    # pairs are 0.1->0 and 0.2->0; distinct selected images give 0.1->0 and 5.5->5 instead.
    x = np.array([[0.0], [0.1], [0.2], [5.0], [5.5]])
    ex = metrics.selected_removed_examples(x, np.array([0, 3]), list("abcde"), 2)
    assert [(e["removedImage"], e["selectedImage"]) for e in ex] == [("b", "a"), ("e", "d")]
    # Asking for more than there are distinct selected images falls back to repeats.
    ex = metrics.selected_removed_examples(x, np.array([0, 3]), list("abcde"), 3)
    assert [e["removedImage"] for e in ex] == ["b", "e", "c"]


def test_summary_of_empty_values_is_null():
    s = metrics.summary(np.zeros(0))
    assert s["n"] == 0 and s["mean"] is None and s["max"] is None


def test_two_hundred_thousand_points_stay_small_and_fast():
    # An N x N float32 matrix would take 160 GB; everything below must stay within ~250 MB.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200_000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sel = rng.choice(len(x), 1000, replace=False)
    names = [str(i) for i in range(len(x))]
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        hists = metrics.distance_histograms(x, sel)
        stats = metrics.embedding_statistics(x, sel)
        xy, _ = metrics.pca_2d(x)
        ex = metrics.selected_removed_examples(x, sel, names, 6)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    assert peak < 250 * 1024**2, f"peak {peak / 1024**2:.0f} MB"
    assert elapsed < 20, f"took {elapsed:.1f} s"
    assert hists["before"]["nPoints"] == 2000 and hists["before"]["subsampled"]
    assert stats["distanceToCoverInput"]["nQueries"] == 200_000  # within the flop budget
    assert stats["distanceToNearestNeighborInSet"]["input"]["nQueries"] < 200_000
    assert xy.shape == (200_000, 2) and len(ex) == 6
