"""Hypothesis properties of select: size, uniqueness, determinism, subset of thresholds."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from thresher.selection import select

E = {"type": "EMBEDDINGS"}
M = {"type": "METADATA", "key": "v"}

OPTIONAL = [
    {"input": E, "strategy": {"type": "DIVERSITY"}},
    {"input": E, "strategy": {"type": "TYPICALITY", "num_nearest_neighbors": 3}},
    {"input": M, "strategy": {"type": "WEIGHTS", "strength": -0.5}},
    {"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS"}},
    {
        "input": {"type": "METADATA", "key": "c"},
        "strategy": {"type": "BALANCE", "target": {"x": 0.7}},
    },
    {"input": E, "strategy": {"type": "DIVERSITY", "strength": -1}},
]


@st.composite
def problems(draw: Any) -> tuple[dict[str, Any], dict[str, Any], float | None]:
    n = draw(st.integers(1, 30))
    d = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    # Rounded values make ties and duplicates common, which is where engines disagree.
    x = np.round(rng.normal(size=(n, d)), draw(st.integers(0, 2))).astype(np.float32)
    v = np.round(rng.random(n), 1)
    c = np.array(rng.choice(["x", "y", "z"], n), dtype=object)
    chosen = draw(
        st.lists(st.sampled_from(range(len(OPTIONAL))), min_size=0, max_size=3, unique=True)
    )
    strategies = [OPTIONAL[i] for i in chosen]
    thr = draw(st.one_of(st.none(), st.sampled_from([0.2, 0.5, 0.8])))
    if thr is not None:
        strategies.append(
            {
                "input": M,
                "strategy": {"type": "THRESHOLD", "threshold": thr, "operation": "BIGGER_EQUAL"},
            }
        )
    cfg: dict[str, Any] = {"n_samples": draw(st.integers(1, 40))}
    if strategies:
        cfg["strategies"] = strategies
    kw = {"embeddings": x, "metadata": {"v": v, "c": c}, "seed": seed, "backend": "numpy"}
    return cfg, kw, thr


@settings(max_examples=60, deadline=None)
@given(problems())
def test_size_uniqueness_determinism_thresholds(
    p: tuple[dict[str, Any], dict[str, Any], float | None],
) -> None:
    cfg, kw, thr = p
    picks = select(cfg, **kw)
    n_rows = kw["embeddings"].shape[0]
    eligible = np.ones(n_rows, bool) if thr is None else kw["metadata"]["v"] >= thr
    assert picks.dtype == np.int64
    assert len(set(picks.tolist())) == len(picks)
    assert len(picks) == min(cfg["n_samples"], int(eligible.sum()))
    assert eligible[picks].all()
    assert np.array_equal(picks, select(cfg, **kw))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 25), st.integers(1, 25), st.integers(0, 1000))
def test_prefix_property_of_greedy(n_rows: int, n: int, seed: int) -> None:
    # Greedy picks do not depend on the budget: the first k of a larger pick are the pick of k.
    x = np.random.default_rng(seed).normal(size=(n_rows, 3)).astype(np.float32)
    big = select({"n_samples": n}, embeddings=x, backend="numpy")
    small = select({"n_samples": max(1, n // 2)}, embeddings=x, backend="numpy")
    assert np.array_equal(big[: len(small)], small)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 60),
    st.integers(1, 60),
    st.integers(0, 10_000),
    st.sampled_from([(2, 4), (3, 7), (2048, 32768)]),
    st.sampled_from([None, 0.5]),
)
def test_lazy_engine_equals_dense_even_with_ties(
    n_rows: int, n: int, seed: int, sizes: tuple[int, int], min_dist: float | None
) -> None:
    from thresher.selection.combiner import greedy
    from thresher.selection.diversity import DiversityObjective
    from thresher.selection.weights import WeightsObjective

    rng = np.random.default_rng(seed)
    # Integer grid points: many exact duplicates and equal distances.
    x = rng.integers(0, 3, size=(n_rows, 2)).astype(np.float32)
    w = rng.integers(0, 2, n_rows).astype(np.float64)
    out = []
    for engine in ("dense", "lazy"):
        objs = [DiversityObjective(x, 1.0, min_dist, backend="numpy"), WeightsObjective(w, 0.5)]
        out.append(greedy(objs, n_rows, n, engine=engine, shortlist=sizes[0], pool_size=sizes[1]))
    assert out[0].tolist() == out[1].tolist()
