"""One exact neighbour search serves the near-duplicate search and the COVERAGE selection:
the graph gives what each search would return, and the run's picks stay the same."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from thresher import selection as engine
from thresher.config import load_configs
from thresher.selection import coverage
from thresher.selection.knn import BACKENDS, knn, neighbour_graph
from thresher.selection.near_duplicates import find_near_duplicates
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.embed import embed
from thresher.stages.list_input import list_input
from thresher.stages.near_duplicates import near_duplicates
from thresher.stages.select import select


def _rows(n: int = 600, d: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, d))
    x = centres[rng.integers(0, 8, n)] + 0.3 * rng.normal(size=(n, d))
    x[10] = x[11] = x[12]  # identical rows: ties at distance 0
    x[20] = x[21] + 1e-3  # a near duplicate
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_graph_is_what_each_search_returns_ties_included(backend):
    x = _rows()
    graph = neighbour_graph(x, 20, backend=backend)
    for k in (1, 2, 5, 19):
        d, i = knn(x, x, k, exclude_self=True, backend=backend)
        gd, gi = graph.others(k)
        np.testing.assert_array_equal(gi, i)
        np.testing.assert_array_equal(gd, d)
        d, i = knn(x, x, k, backend=backend)
        gd, gi = graph.first(k)
        np.testing.assert_array_equal(gi, i)
        np.testing.assert_array_equal(gd, d)
    with pytest.raises(ValueError, match="20 neighbours"):
        graph.others(20)


def test_near_duplicates_and_coverage_take_it_with_the_same_results(monkeypatch):
    x = _rows()
    graph = neighbour_graph(x, 64)
    alone = find_near_duplicates(x, 0.01)
    assert alone.groups and find_near_duplicates(x, 0.01, graph=graph) == alone
    cfg = {"n_samples": 40}  # the default recipe: COVERAGE
    picks = engine.select(cfg, embeddings=x)

    def no_search(*args, **kwargs):
        raise AssertionError("COVERAGE searched although the graph was given")

    monkeypatch.setattr(coverage, "knn", no_search)
    np.testing.assert_array_equal(engine.select(cfg, embeddings=x, neighbours=graph), picks)
    with pytest.raises(AssertionError, match="searched"):  # too narrow: it searches itself
        engine.select({"n_samples": 5}, embeddings=x, neighbours=neighbour_graph(x, 8))


def test_the_run_searches_once_and_picks_the_same(example_dataset, tmp_path, monkeypatch):
    cfg = load_configs({"num_processes": 0}, {"n_samples": 12}, {})
    listing = list_input(str(example_dataset.root), str(tmp_path / "lightly"))
    dedup = deduplicate(corruption_check(listing))
    emb = embed(listing, dedup, cfg.worker, cfg.lightly)
    near = near_duplicates(emb, dedup, threshold=cfg.worker.near_duplicate_threshold)
    graph = near.graph()
    assert graph is not None and graph.indices.shape == (emb.n, min(emb.n, 64))
    alone = select(listing, near.embedded, cfg.selection, seed=0)
    picks = alone.indices()
    shutil.rmtree(tmp_path / "lightly" / ".lightly" / "cache" / "select")  # not from its cache

    def no_search(*args, **kwargs):
        raise AssertionError("the selection searched again")

    monkeypatch.setattr(coverage, "knn", no_search)
    shared = select(listing, near.embedded, cfg.selection, seed=0, near=near)
    np.testing.assert_array_equal(shared.indices(), picks)
    removing = near_duplicates(
        emb, dedup, threshold=cfg.worker.near_duplicate_threshold, remove=True
    )
    assert removing.removed == bool(removing.n_groups)
    if removing.removed:  # other rows than the search's: no graph to share
        assert removing.graph() is None
