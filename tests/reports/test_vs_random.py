"""The selection-vs-random measures on planted data where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.reports.vs_random import ClassLabels, selection_vs_random


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """20 tight, far-apart clusters of 100 points each."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(20, 16)).astype(np.float32) * 10
    sizes = np.full(20, 100)
    labels = np.repeat(np.arange(20), sizes)
    x = centers[labels] + 0.05 * rng.normal(size=(len(labels), 16)).astype(np.float32)
    return x.astype(np.float32), labels


def _one_per_cluster(labels: np.ndarray) -> np.ndarray:
    return np.array([np.flatnonzero(labels == c)[0] for c in range(20)], np.int64)


def test_a_pick_touching_every_cluster_beats_random(clustered):
    x, labels = clustered
    out = selection_vs_random(x, _one_per_cluster(labels), seed=0)
    m = out["measures"]
    assert out["nClusters"] == 20
    assert m["clusterCoverage"]["selected"] == 1.0
    assert m["clusterCoverage"]["randomMean"] < 0.9
    assert m["coverageMean"]["selected"] < m["coverageMean"]["randomMean"]
    assert m["coverageMean"]["status"] == m["clusterCoverage"]["status"] == "better"
    assert out["verdict"].startswith("The selection covers the data better than random:")
    assert len(m["coverageMean"]["random"]) == out["nRandomPicks"] == 5


def test_a_pick_from_one_cluster_loses_and_the_verdict_flips(clustered):
    x, labels = clustered
    out = selection_vs_random(x, np.flatnonzero(labels == 0)[:20], seed=0)
    m = out["measures"]
    assert m["clusterCoverage"]["selected"] == pytest.approx(1 / 20)
    assert m["clusterCoverage"]["status"] == m["coverageMean"]["status"] == "worse"
    assert m["nearestPickMean"]["status"] == "worse"  # near-copies of each other
    assert out["verdict"].startswith("The selection covers the data worse than random")


def test_class_measures_follow_the_predicted_classes(clustered):
    x, labels = clustered
    onehot = np.eye(20, dtype=np.int32)[labels]
    classes = {"clf": ClassLabels("clf", [f"c{i}" for i in range(20)], onehot)}
    good = selection_vs_random(x, _one_per_cluster(labels), classes=classes, seed=0)
    assert good["classTask"] == "clf"
    assert good["measures"]["classCoverage"]["selected"] == 1.0
    assert good["measures"]["classBalance"]["selected"] == pytest.approx(1.0)
    assert good["measures"]["classBalance"]["status"] == "better"
    bad = selection_vs_random(x, np.flatnonzero(labels == 0)[:20], classes=classes, seed=0)
    assert bad["measures"]["classCoverage"]["selected"] == pytest.approx(1 / 20)
    assert bad["measures"]["classCoverage"]["status"] == "worse"


def test_deterministic_and_empty_cases(clustered):
    x, labels = clustered
    pick = _one_per_cluster(labels)
    assert selection_vs_random(x, pick, seed=3) == selection_vs_random(x, pick, seed=3)
    assert selection_vs_random(x, np.zeros(0, np.int64)) == {}
    assert selection_vs_random(x, np.arange(len(x))) == {}


def test_big_inputs_are_subsampled_and_say_so():
    x = np.random.default_rng(1).normal(size=(20_000, 64)).astype(np.float32)
    out = selection_vs_random(x, np.arange(2000), flop_budget=1e7, n_random=2)
    assert not out["exact"] and out["nQueries"] < len(x)
    assert out["measures"]["coverageMean"]["status"] == "same"  # the pick is random too
