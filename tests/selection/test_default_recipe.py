"""The default recipe (no ``strategies``): what it is, and its properties on planted data."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.config.selection import DEFAULT_KERNEL_WIDTH, default_strategies
from thresher.selection import select


def planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six well-separated Gaussian groups of 120, 90, 70, 50, 40 and 30 rows in 16-D.

    Returns the rows (float32) and each row's group.
    """
    rng = np.random.default_rng(seed)
    sizes = [120, 90, 70, 50, 40, 30]
    centres = 10.0 * rng.normal(size=(len(sizes), 16))
    group = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[group] + rng.normal(size=(len(group), 16))
    perm = rng.permutation(len(group))
    return x[perm].astype(np.float32), group[perm]


def test_default_is_coverage_with_the_documented_width() -> None:
    (entry,) = default_strategies()
    assert entry.strategy.type == "COVERAGE"
    assert entry.strategy.kernel_width == DEFAULT_KERNEL_WIDTH == 0.4


def test_one_typical_pick_per_group() -> None:
    # As many picks as groups: one in each, largest group first, and each a typical member:
    # nearer to its group's mean than half of the group (in 16-D the distances to the mean
    # concentrate, so half is a clear line; an outlier-seeking pick such as k-center's fails
    # it).
    x, group = planted()
    picks = select({"n_samples": 6}, embeddings=x, seed=0)
    assert sorted(group[picks].tolist()) == list(range(6))
    assert group[picks[0]] == 0
    for p in picks:
        g = group[p]
        members = np.flatnonzero(group == g)
        mean = x[members].mean(axis=0)
        dist = np.linalg.norm(x[members] - mean, axis=1)
        assert np.linalg.norm(x[p] - mean) <= np.median(dist)


@pytest.mark.parametrize("n", [1, 6, 37, 399, 400])
def test_exact_unique_and_deterministic(n: int) -> None:
    x, _ = planted(1)
    a = select({"n_samples": n}, embeddings=x, seed=3)
    b = select({"n_samples": n}, embeddings=x, seed=3)
    assert np.array_equal(a, b)
    assert len(a) == n == len(np.unique(a))
    assert a.min() >= 0 and a.max() < len(x)
