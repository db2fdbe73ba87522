"""Nearest-neighbour statistics of the report, on planted inputs worked out by hand."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from thresher.reports import neighbors
from thresher.reports.distances import distance_histograms
from thresher.reports.pca import pca_2d


def test_nearest_neighbor_in_set_on_a_line():
    # Points 0, 1, 3, 7: nearest neighbours are at 1, 1, 2, 4.
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert neighbors.nearest_neighbor_in_set(x) == pytest.approx([1, 1, 2, 4])
    # Within the members {0, 3, 7} (indices 0, 2, 3): 3, 3, 4.
    assert neighbors.nearest_neighbor_in_set(x, np.array([0, 2, 3])) == pytest.approx([3, 3, 4])
    assert neighbors.nearest_neighbor_in_set(x, np.array([1])).size == 0


def test_subsampled_queries_skip_themselves_but_not_their_copies():
    # 400 points at 0, 1, ..., 399: every nearest other point is 1 away. A tiny flop budget
    # queries a subsample of 256 (MIN_QUERIES), whose rows are not 0..255: each must still
    # skip itself and find the point 1 away.
    x = np.arange(400, dtype=np.float64)[:, None]
    d = neighbors.nearest_neighbor_in_set(x, flop_budget=1, seed=3)
    assert d.size == neighbors.MIN_QUERIES and d == pytest.approx(np.ones(256))
    # An exact copy is a neighbour at distance 0 (it is another image).
    x2 = np.array([[0.0], [0.0], [5.0]])
    assert neighbors.nearest_neighbor_in_set(x2) == pytest.approx([0, 0, 5])


def test_coverage_distance_on_a_line():
    # Points 0, 1, 2, 3, 10 with 0 and 3 selected: distances to the nearest selected point are
    # 0, 1, 1, 0, 7 -> mean 9/5 = 1.8, median 1, max 7.
    x = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    stats = neighbors.embedding_statistics(x, np.array([0, 3]), bins=7)
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


def test_selected_removed_examples_are_the_closest_pairs():
    # Points 0, 1, 2, 3, 10 with x=0 and x=3 selected. Removed: 1 (d=1 to x=0),
    # 2 (d=1 to x=3), 10 (d=7 to x=3). Ties broken by index.
    x = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    ex = neighbors.selected_removed_examples(x, np.array([0, 3]), list("abcde"), 3)
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
    ex = neighbors.selected_removed_examples(x, np.array([0, 3]), list("abcde"), 2)
    assert [(e["removedImage"], e["selectedImage"]) for e in ex] == [("b", "a"), ("e", "d")]
    # Asking for more than there are distinct selected images falls back to repeats.
    ex = neighbors.selected_removed_examples(x, np.array([0, 3]), list("abcde"), 3)
    assert [e["removedImage"] for e in ex] == ["b", "e", "c"]


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
        hists = distance_histograms(x, sel)
        stats = neighbors.embedding_statistics(x, sel)
        xy, _ = pca_2d(x)
        ex = neighbors.selected_removed_examples(x, sel, names, 6)
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
