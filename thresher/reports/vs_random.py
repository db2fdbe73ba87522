"""The selection measured against random picks of the same size, on the user's data, no labels.

A selection is worth its compute if it covers the data better than picking at random. This
module measures the pick and ``n_random`` seeded random picks of the same size with the same
label-free measures, and says in one sentence how the pick compares:

- **coverage**: the distance from an input sample to its nearest pick, mean and maximum (lower
  is better: no region of the data is far from a labeled sample);
- **redundancy**: the distance from a pick to its nearest other pick, mean (higher is better:
  fewer near-copies in the pick);
- **cluster coverage**: the share of the input's k-means clusters (k = the pick size, at most
  :data:`MAX_CLUSTERS`; k-means in the input's 64 leading principal axes) that hold at least
  one pick (higher is better);
- with a classification or object-detection prediction task: **class coverage** (the share of
  the classes predicted in the input that the pick contains) and **class balance** (the
  normalised entropy of the pick's predicted classes, 1 = every class equally often).

Every measure is computed on the same rows for the pick and for the random picks, so they
compare fairly. On big inputs the input rows queried are a seeded subsample (``nQueries``,
``exact``), a pick bigger than 20,000 is searched as a seeded sample of 20,000
(``nReference``) and k-means is fitted on a subsample, so the cost stays bounded
(:data:`DEFAULT_FLOP_BUDGET` multiply-adds per measure and pick).

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 8)).astype(np.float32)
    >>> out = selection_vs_random(x, np.arange(20), n_random=3, seed=0)
    >>> sorted(out["measures"])[:2]
    ['clusterCoverage', 'coverageMax']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.reports.neighbors import (
    MAX_REFERENCE_ROWS,
    n_queries,
    nearest_neighbor_in_set,
    reference_rows,
)
from thresher.reports.pca import pca_basis
from thresher.reports.stats import subsample
from thresher.selection.knn import knn
from thresher.selection.report import normalized_entropy
from thresher.storage.embeddings_npy import read_rows

#: Random picks the selection is compared with.
N_RANDOM = 5

#: Most k-means clusters (k is the pick size, capped here).
MAX_CLUSTERS = 256

#: Most input rows k-means is fitted on (a seeded subsample beyond it).
MAX_KMEANS_POINTS = 10_000

#: Multiply-adds one measure may spend on one pick; beyond it, queries are subsampled.
DEFAULT_FLOP_BUDGET = 2e9

#: Each measure: its report.json key, what it is in words, and whether higher is better.
MEASURES: dict[str, tuple[str, bool]] = {
    "coverageMean": ("mean distance from an input sample to its nearest pick", False),
    "coverageMax": ("largest distance from an input sample to its nearest pick", False),
    "nearestPickMean": ("mean distance from a pick to its nearest other pick", True),
    "clusterCoverage": ("share of the input's k-means clusters the pick touches", True),
    "classCoverage": ("share of the predicted classes the pick contains", True),
    "classBalance": ("balance of the pick's predicted classes (normalised entropy)", True),
}

#: Task types whose predicted classes are measured.
CLASS_TASK_TYPES = ("classification", "object-detection")


@dataclass(frozen=True)
class ClassLabels:
    """Predicted classes of every input row, for the class measures.

    Attributes:
        task: The prediction task's name.
        category_names: The C category names.
        counts: (N, C) predictions of each category per input row (one-hot for
            classification).
    """

    task: str
    category_names: list[str]
    counts: NDArray[np.integer[Any]]


def _coverage(queries: NDArray[np.float32], picked: NDArray[np.float32]) -> Any:
    d, _ = knn(queries, picked, 1)
    return d[:, 0].astype(np.float64)


def _kmeans_plus_plus(x: NDArray[np.float32], k: int, seed: int) -> NDArray[np.float32]:
    """k-means++ seeding (Arthur and Vassilvitskii, 2007).

    Each centre is drawn with probability proportional to the squared distance to the nearest
    centre so far.
    """
    rng = np.random.default_rng(seed)
    sq = np.einsum("ij,ij->i", x, x)
    centers = [int(rng.integers(len(x)))]
    d2 = np.maximum(sq - 2 * x @ x[centers[0]] + sq[centers[0]], 0)
    for _ in range(1, k):
        total = float(d2.sum())
        j = int(rng.choice(len(x), p=d2 / total)) if total > 0 else int(rng.integers(len(x)))
        centers.append(j)
        d2 = np.minimum(d2, np.maximum(sq - 2 * x @ x[j] + sq[j], 0))
    return np.ascontiguousarray(x[centers], np.float32)


#: Dimensions k-means runs in: the input's leading principal axes. k-means++ seeding and
#: Lloyd's iterations cost in proportion to D; clusters of embeddings live in far fewer
#: dimensions than 1280, and in 64 the fit takes a fraction of a second at any N.
KMEANS_DIMS = 64


@dataclass(frozen=True)
class _Clusters:
    """k-means centroids in the input's leading principal axes, and how to get there."""

    mean: NDArray[np.float64]
    axes: NDArray[np.float64]
    centroids: NDArray[np.float32]

    def assign(self, x: NDArray[Any]) -> NDArray[np.int64]:
        z = ((np.asarray(x, np.float64) - self.mean) @ self.axes.T).astype(np.float32)
        _, cid = knn(z, self.centroids, 1)
        return cid[:, 0]


def _cluster_assign(x: NDArray[Any], n_pick: int, seed: int) -> tuple[_Clusters, int]:
    """k-means of the input (k = ``min(n_pick, MAX_CLUSTERS)``, seeded).

    k-means++ seeding then 20 Lloyd iterations (faiss) on a seeded subsample of at most
    :data:`MAX_KMEANS_POINTS` rows, projected onto their :data:`KMEANS_DIMS` leading principal
    axes: random seeding leaves well-separated clusters merged.
    """
    import faiss

    k = int(max(1, min(n_pick, MAX_CLUSTERS, len(x))))
    fit = read_rows(x, subsample(len(x), MAX_KMEANS_POINTS, seed + 11)).astype(np.float64)
    mean, axes, _, _ = pca_basis(fit, KMEANS_DIMS, seed=seed + 12)
    z = np.ascontiguousarray((fit - mean) @ axes.T, np.float32)
    init = _kmeans_plus_plus(z, k, seed + 1)
    km = faiss.Kmeans(
        z.shape[1],
        k,
        niter=20,
        seed=int(seed) + 1,
        verbose=False,
        max_points_per_centroid=256,
        min_points_per_centroid=1,
    )
    km.train(z, init_centroids=init)
    return _Clusters(mean, axes, np.asarray(km.centroids, np.float32)), k


def _class_measures(labels: ClassLabels, pick: NDArray[np.int64]) -> tuple[float, float]:
    counts = np.asarray(labels.counts)
    present = counts.sum(axis=0) > 0
    picked = counts[pick].sum(axis=0)
    coverage = float((picked[present] > 0).mean()) if present.any() else 0.0
    return coverage, normalized_entropy(picked[present].astype(np.float64))


def _measure(
    x: NDArray[Any],
    pick: NDArray[np.int64],
    queries: NDArray[np.float32],
    clusters: _Clusters | None,
    classes: ClassLabels | None,
    seed: int,
    flop_budget: float,
) -> dict[str, float | None]:
    # The pick's rows are read once (at most MAX_REFERENCE_ROWS of them, a seeded sample of a
    # bigger pick) and serve all three embedding measures: random reads of a memmap are slow.
    picked = read_rows(x, reference_rows(len(x), seed + 61, pick))
    cover = _coverage(queries, picked)
    nn = nearest_neighbor_in_set(picked, None, flop_budget=flop_budget, seed=seed)
    out: dict[str, float | None] = {
        "coverageMean": float(cover.mean()),
        "coverageMax": float(cover.max()),
        "nearestPickMean": float(nn.mean()) if nn.size else None,
        "clusterCoverage": None,
    }
    if clusters is not None:
        # Assigning a huge pick costs s x D x (64 + k): a seeded subsample of it within the
        # budget touches the same clusters (at most 256 of them) in practice.
        per_row = clusters.axes.size + clusters.centroids.size
        most = max(MAX_CLUSTERS * 16, int(flop_budget // max(per_row, 1)))
        cid = clusters.assign(picked[subsample(len(picked), most, seed + 51)])
        out["clusterCoverage"] = float(len(np.unique(cid)) / len(clusters.centroids))
    if classes is not None:
        out["classCoverage"], out["classBalance"] = _class_measures(classes, pick)
    return out


def _verdict_status(key: str, sel: float | None, mean: float | None, std: float | None) -> str:
    """``better``, ``worse`` or ``same``: a difference within the random picks' spread is same."""
    if sel is None or mean is None:
        return "same"
    higher = MEASURES[key][1]
    diff = (sel - mean) if higher else (mean - sel)
    margin = max(float(std or 0.0), 0.01 * abs(mean), 1e-9)
    if diff > margin:
        return "better"
    if diff < -margin:
        return "worse"
    return "same"


def _fmt(key: str, v: float) -> str:
    if key in ("clusterCoverage", "classCoverage"):
        return f"{100 * v:.0f}%"
    return f"{v:.3g}"


def _phrase(key: str, row: dict[str, Any]) -> str:
    sel, mean, std = row["selected"], row["randomMean"], row["randomStd"]
    if key == "clusterCoverage":
        pct = 100 * float(std or 0)
        return (
            f"it touches {_fmt(key, sel)} of the k-means clusters vs "
            f"{_fmt(key, mean)} ± {pct:.0f}% for random picks"
        )
    if key == "coverageMean":
        return (
            f"the average input sample is {_fmt(key, sel)} from its nearest pick vs "
            f"{_fmt(key, mean)} ± {float(std or 0):.2g} for random picks"
        )
    if key == "classCoverage":
        return f"it contains {_fmt(key, sel)} of the predicted classes vs {_fmt(key, mean)}"
    return f"{MEASURES[key][0]}: {_fmt(key, sel)} vs {_fmt(key, mean)}"


def verdict(measures: dict[str, dict[str, Any]]) -> str:
    """One plain sentence: does the selection cover the data better than random?

    The verdict rests on the two coverage measures that need no labels and no model of the
    user's goal: the mean coverage distance and the cluster coverage. Both better: better;
    both worse (or one worse, the other level): worse; otherwise mixed.
    """
    keys = [k for k in ("coverageMean", "clusterCoverage") if measures.get(k)]
    status = {k: measures[k]["status"] for k in keys}
    detail = "; ".join(_phrase(k, measures[k]) for k in keys)
    values = set(status.values())
    if values == {"better"}:
        head = "The selection covers the data better than random"
    elif "worse" in values and "better" not in values:
        head = "The selection covers the data worse than random picks of the same size"
    elif values == {"same"}:
        head = "The selection covers the data about as well as random"
    else:
        better = [k for k, s in status.items() if s == "better"]
        head = (
            "The selection is better than random on "
            + ", ".join(MEASURES[k][0] for k in better)
            + " but not on the rest"
        )
    return f"{head}: {detail}."


def selection_vs_random(
    embeddings: NDArray[Any],
    selected: NDArray[np.integer[Any]],
    *,
    classes: Mapping[str, ClassLabels] | None = None,
    n_random: int = N_RANDOM,
    seed: int = 0,
    flop_budget: float = DEFAULT_FLOP_BUDGET,
) -> dict[str, Any]:
    """Measure the selection and ``n_random`` random picks of the same size.

    Args:
        embeddings: (N, D) input embeddings.
        selected: Selected row indices.
        classes: Predicted classes per task (classification / object-detection); the first
            task gives ``classCoverage`` and ``classBalance``, every task is listed in
            ``classTasks``.
        n_random: Random picks to compare with.
        seed: Seeds the random picks, the subsamples and k-means.
        flop_budget: Multiply-adds per measure and pick before queries are subsampled.

    Returns:
        ``{"nSelected", "nInput", "nRandomPicks", "nQueries", "exact", "nReference",
        "referenceSubsampled", "nClusters",
        "measures": {key: {"selected", "randomMean", "randomStd", "random", "higherIsBetter",
        "description", "status"}}, "classTasks", "verdict"}``; ``{}`` when nothing was selected
        or every input row was.
    """
    x = embeddings  # only sampled rows are read: a memmap of any size stays on disk
    sel = np.asarray(selected, np.int64)
    n, s = len(x), len(sel)
    if s == 0 or n == 0 or s >= n:
        return {}
    n_ref = min(s, MAX_REFERENCE_ROWS)
    qi = subsample(n, n_queries(n, n_ref, x.shape[1], flop_budget), seed + 21)
    queries = read_rows(x, qi)  # read once for every pick
    clusters, k = _cluster_assign(x, s, seed) if s > 1 else (None, 0)
    tasks = dict(classes or {})
    first = next(iter(tasks.values()), None)
    rng = np.random.default_rng(seed + 31)
    randoms = [np.sort(rng.choice(n, size=s, replace=False)) for _ in range(n_random)]

    def measure(pick: NDArray[np.int64]) -> dict[str, float | None]:
        return _measure(x, pick, queries, clusters, first, seed, flop_budget)

    mine = measure(sel)
    theirs = [measure(r) for r in randoms]
    measures: dict[str, dict[str, Any]] = {}
    for key, (desc, higher) in MEASURES.items():
        if mine.get(key) is None:
            continue
        vals = [float(v) for t in theirs if (v := t.get(key)) is not None]
        mean = float(np.mean(vals)) if vals else None
        std = float(np.std(vals)) if vals else None
        measures[key] = {
            "selected": mine[key],
            "randomMean": mean,
            "randomStd": std,
            "random": vals,
            "higherIsBetter": higher,
            "description": desc,
            "status": _verdict_status(key, mine[key], mean, std),
        }
    return {
        "nSelected": s,
        "nInput": n,
        "nRandomPicks": int(n_random),
        "nQueries": len(qi),
        "exact": bool(len(qi) == n and s <= MAX_REFERENCE_ROWS),
        "nReference": int(n_ref),
        "referenceSubsampled": bool(s > MAX_REFERENCE_ROWS),
        "nClusters": int(k),
        "classTask": first.task if first is not None else None,
        "classTasks": sorted(tasks),
        "measures": measures,
        "verdict": verdict(measures),
    }
