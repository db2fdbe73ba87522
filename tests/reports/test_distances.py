"""Pairwise-distance histograms on tiny planted inputs whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from thresher.reports.distances import MAX_PAIRWISE_POINTS, distance_histograms, max_pairwise_points

LINE = np.array([[0.0], [1.0], [2.0], [3.0]])


def test_four_points_on_a_line_use_zero_to_max_bins():
    # Pairs: (0,1)=1 (1,2)=1 (2,3)=1 (0,2)=2 (1,3)=2 (0,3)=3. Not unit norm, so the range is
    # [0, max distance] = [0, 3]; bins [0,1) [1,2) [2,3] hold 0, 3, 3.
    h = distance_histograms(LINE, np.arange(4), bins=3)
    assert h["before"]["range"] == [0.0, 3.0]
    assert h["before"]["counts"] == [0, 3, 3]
    assert h["before"]["bins"] == pytest.approx([0, 1, 2, 3])
    assert (h["before"]["nPoints"], h["before"]["nPairs"], h["before"]["subsampled"]) == (
        4,
        6,
        False,
    )
    # Selecting 0 and 3 leaves the one pair at distance 3, on the same bins.
    assert distance_histograms(LINE, np.array([0, 3]), bins=3)["after"]["counts"] == [0, 0, 1]


def test_before_and_after_on_the_unit_circle():
    # Four unit vectors at 0, 90, 180, 270 degrees: 4 neighbouring pairs at sqrt(2) ~ 1.414
    # and 2 opposite pairs at 2. Normalised, so bins span [0, 2]: [0,.5) [.5,1) [1,1.5) [1.5,2].
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    h = distance_histograms(x, np.array([0, 2]), bins=4)
    assert h["before"]["counts"] == [0, 0, 4, 2]
    assert h["before"]["range"] == [0.0, 2.0]
    # Selecting the opposite pair 0 and 2 leaves one pair at distance 2.
    assert h["after"]["counts"] == [0, 0, 0, 1]
    assert h["after"]["bins"] == h["before"]["bins"]
    assert h["before"]["metrics"]["max"] == pytest.approx(2.0)
    assert h["before"]["metrics"]["min"] == pytest.approx(math.sqrt(2))


def test_one_selected_point_has_no_pairs():
    h = distance_histograms(LINE, np.array([2]), bins=3)
    assert h["after"]["nPairs"] == 0 and sum(h["after"]["counts"]) == 0
    assert h["after"]["metrics"]["mean"] is None


def test_the_input_is_subsampled_to_the_memory_bound():
    x = np.random.default_rng(0).normal(size=(3000, 4))
    assert max_pairwise_points(2.0) == MAX_PAIRWISE_POINTS == 2000
    h = distance_histograms(x, np.arange(10), seed=1)["before"]
    assert h["nPoints"] == 2000 and h["subsampled"]
    assert sum(h["counts"]) == h["nPairs"] == 2000 * 1999 // 2
    # Same seed, same subsample.
    assert distance_histograms(x, np.arange(10), seed=1)["before"]["counts"] == h["counts"]


def test_max_pairwise_points_follows_a_small_budget():
    # 1e-5 GB = 10,000 bytes; four float64 blocks of m*m: m = isqrt(10000 / 32) = 17.
    assert max_pairwise_points(1e-5) == 17
    with pytest.raises(ValueError, match="memory_requirement_in_GB"):
        max_pairwise_points(0)
