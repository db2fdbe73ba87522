"""Figures: axes that never show impossible values."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.reports import figures


def _visible_yticks(fig):
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    return [t for t in ax.get_yticks() if lo <= t <= hi], (lo, hi)


@pytest.mark.parametrize(
    "counts",
    [[0, 0, 0, 0], [0, 1, 0, 0], [0, 3, 120, 7]],
    ids=["no pairs", "one pair", "many pairs"],
)
def test_pair_counts_axis_has_no_negative_or_fractional_ticks(counts):
    # Counts of pairs are whole numbers >= 0: an axis showing -0.04 or 10^-1 is wrong. With
    # one selected image (no pairs) every count is 0; with two, a single bin holds 1.
    hist = {"bins": np.linspace(0, 2, 5).tolist(), "counts": counts, "nPoints": 2}
    fig = figures.distance_histogram_figure(hist, "After selection", "#000000")
    ticks, (lo, hi) = _visible_yticks(fig)
    assert lo >= 0
    if sum(counts):
        assert fig.axes[0].get_yscale() == "log" and lo >= 0.5
        assert all(t >= 1 for t in ticks), ticks
        assert hi > max(counts)
    figures.close_figure(fig)
