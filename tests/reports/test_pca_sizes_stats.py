"""PCA, dataset sizes and summaries on inputs whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from thresher.reports.pca import pca_2d
from thresher.reports.sizes import dataset_sizes
from thresher.reports.stats import histogram, summary


def test_pca_of_points_on_a_diagonal_line():
    # Points at t = -1, 0, 1 along (1, 1, 0)/sqrt(2): all variance on PC 1, and the sign
    # convention (largest component positive) puts t = 1 at +1.
    u = np.array([1.0, 1.0, 0.0]) / math.sqrt(2)
    x = np.array([-1.0, 0.0, 1.0])[:, None] * u + np.array([5.0, 5.0, 5.0])
    xy, ratio = pca_2d(x)
    assert xy[:, 0] == pytest.approx([-1.0, 0.0, 1.0])
    assert xy[:, 1] == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert ratio == pytest.approx([1.0, 0.0], abs=1e-9)


def test_dataset_sizes_add_up_or_raise():
    sizes = dict(n_input=10, n_filtered=1, n_corrupt=2, n_duplicate=1, n_removed=4, n_selected=2)
    assert dataset_sizes(sizes) == {
        "nInput": 10,
        "nFiltered": 1,
        "nCorrupt": 2,
        "nDuplicate": 1,
        "nRemoved": 4,
        "nSelected": 2,
    }
    with pytest.raises(ValueError, match="do not add up"):
        dataset_sizes({**sizes, "n_selected": 3})
    with pytest.raises(ValueError, match="missing"):
        dataset_sizes({k: v for k, v in sizes.items() if k != "n_corrupt"})


def test_summary_of_empty_values_is_null():
    s = summary(np.zeros(0))
    assert s["n"] == 0 and s["mean"] is None and s["max"] is None


def test_histogram_clips_values_into_the_end_bins():
    # -1 falls into the first bin [0, 1), 9 into the last [2, 3].
    h = histogram(np.array([-1.0, 0.5, 1.5, 9.0]), 3, (0.0, 3.0))
    assert h["counts"] == [2, 1, 1] and h["range"] == [0.0, 3.0]
