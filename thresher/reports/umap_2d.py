"""UMAP maps of the embeddings for k = 5, 15 and 50 neighbours, bounded in points and time.

UMAP (umap-learn) keeps local neighbourhoods that PCA flattens: clusters show as islands, and a
good selection puts picks on every island. Lightly's report draws it for ``n_neighbors`` 5, 15
and 50; so does this one, with fixed seeds so that a report is reproducible.

Bounds: the maps are fitted on a seeded sample of at most :data:`MAX_FIT_POINTS` rows (the
selected rows among them, at most :data:`MAX_FIT_SELECTED`, so the overlay has points), reduced
to :data:`PCA_DIMS` dimensions first. Only the fitted rows are drawn. umap-learn compiles its
numba code at the first fit (about 10 s on 2 idle CPU cores); thresher turns on numba's disk
cache for it, so that happens once per machine, not once per run. Each map takes 1 to 4 s
for a few thousand points. When the maps have taken :data:`TIME_BUDGET_S` seconds, the remaining
``k`` are skipped and the result says so.

Example:
    >>> maps = umap_maps(np.random.default_rng(0).normal(size=(300, 16)), np.arange(30))
    ... # doctest: +SKIP
    >>> sorted(maps["maps"])  # doctest: +SKIP
    ['5', '15', '50']
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.reports.stats import subsample
from thresher.selection.knn import knn

#: ``n_neighbors`` of the maps, as in Lightly's ``scatter_umap_k_{5,15,50}.png``.
NEIGHBORS = (5, 15, 50)

#: Most rows the maps are fitted on (and drawn).
MAX_FIT_POINTS = 5000

#: Most selected rows among them.
MAX_FIT_SELECTED = 1500

#: Dimensions the rows are reduced to (PCA) before UMAP; cuts the neighbour search.
PCA_DIMS = 50

#: Seconds the maps may take together; the remaining ``k`` are skipped beyond it.
TIME_BUDGET_S = 90.0

#: Epochs of the layout optimisation (umap-learn's default is 200 for small data, 500 above).
N_EPOCHS = 200


def available() -> bool:
    """Whether umap-learn can be imported."""
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


_CACHING = False


def _cache_compiled_code() -> None:
    """Let numba keep umap-learn's compiled functions on disk, as it does for pynndescent's.

    umap-learn compiles its layout and graph functions (``numba.njit`` without ``cache``) in
    every process: about 10 s on 2 idle cores, minutes on a busy machine. With caching on,
    the first report on a machine compiles and stores them (in the package's ``__pycache__``,
    or numba's user cache folder when that is read-only) and later reports load them.
    """
    global _CACHING
    if _CACHING:
        return
    import contextlib
    import importlib

    from numba.core.dispatcher import Dispatcher

    for name in ("umap.layouts", "umap.umap_", "umap.utils", "umap.spectral", "umap.distances"):
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, Dispatcher):
                # No writable cache folder: numba compiles in memory, as without caching.
                with contextlib.suppress(RuntimeError, OSError):
                    value.enable_caching()
    _CACHING = True


def _reduce(x: NDArray[np.float64], dims: int) -> NDArray[np.float64]:
    """PCA to at most ``dims`` dimensions (numpy SVD; the rows are few)."""
    x = x - x.mean(axis=0)
    if x.shape[1] <= dims:
        return x
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    out: NDArray[np.float64] = x @ vt[:dims].T
    return out


def umap_maps(
    embeddings: NDArray[Any],
    selected: NDArray[np.integer[Any]],
    *,
    seed: int = 0,
    neighbors: tuple[int, ...] = NEIGHBORS,
    max_fit_points: int = MAX_FIT_POINTS,
    time_budget_s: float = TIME_BUDGET_S,
) -> dict[str, Any]:
    """UMAP coordinates of a seeded sample of rows, one map per ``n_neighbors``.

    Args:
        embeddings: (N, D) embeddings.
        selected: Selected row indices.
        seed: Seeds the sample and UMAP (``random_state``, so the maps are reproducible).
        neighbors: The ``n_neighbors`` values, one map each.
        max_fit_points: Most rows fitted.
        time_budget_s: Seconds the maps may take together.

    Returns:
        ``{"rows": fitted row indices (sorted), "isSelected": bool per row, "maps": {str(k):
        (len(rows), 2) float array}, "seconds": {str(k): s}, "skipped": [k, ...], "nInput",
        "nSelected"}``; ``maps`` is empty when umap-learn is missing or there are fewer than
        4 rows.
    """
    x = np.asarray(embeddings)
    sel = np.asarray(selected, np.int64)
    n = len(x)
    out: dict[str, Any] = {
        "rows": np.zeros(0, np.int64),
        "isSelected": np.zeros(0, bool),
        "maps": {},
        "seconds": {},
        "skipped": [],
        "nInput": n,
        "nSelected": len(sel),
    }
    if n < 4 or not neighbors or not available():
        out["skipped"] = list(neighbors)
        return out
    import umap

    _cache_compiled_code()
    chosen_sel = sel[subsample(len(sel), min(MAX_FIT_SELECTED, max_fit_points), seed + 41)]
    rest = np.setdiff1d(np.arange(n), chosen_sel)
    more = rest[subsample(len(rest), max(0, max_fit_points - len(chosen_sel)), seed + 42)]
    rows = np.sort(np.concatenate([chosen_sel, more]))
    is_sel = np.isin(rows, sel)
    z = _reduce(x[rows].astype(np.float64), PCA_DIMS).astype(np.float32)
    start = time.perf_counter()
    # One exact neighbour graph (thresher's knn) serves every k: UMAP's own approximate search
    # (pynndescent) would cost a numba compile and a search per map.
    k_max = int(min(max(neighbors), len(rows) - 1))
    dist, idx = knn(z, z, k_max + 1)
    dist[:, 0], idx[:, 0] = 0.0, np.arange(len(rows))  # UMAP expects each row first
    for k in neighbors:
        if time.perf_counter() - start > time_budget_s:
            out["skipped"].append(k)
            continue
        t = time.perf_counter()
        kk = int(min(k, len(rows) - 1))
        reducer = umap.UMAP(
            n_neighbors=kk,
            n_components=2,
            random_state=int(seed),
            n_epochs=N_EPOCHS,
            precomputed_knn=(idx[:, :kk], dist[:, :kk], None),
        )
        with warnings.catch_warnings():
            # random_state disables parallelism (the price of reproducible maps), and a
            # precomputed graph disables transform(): umap-learn warns about both.
            warnings.simplefilter("ignore")
            xy = np.asarray(reducer.fit_transform(z), np.float64)
        out["maps"][str(k)] = xy
        out["seconds"][str(k)] = round(time.perf_counter() - t, 2)
    out["rows"], out["isSelected"] = rows, is_sel
    return out


#: Example images marked per map: the first selected rows among the drawn ones, pick order.
N_EXAMPLE_IMAGES = 20


def umap_embedding_data(
    embeddings: NDArray[Any],
    selected: NDArray[np.integer[Any]],
    filenames: list[str],
    *,
    seed: int = 0,
    neighbors: tuple[int, ...] = NEIGHBORS,
) -> dict[str, Any] | None:
    """report.json's ``scatterPlotData.umapEmbeddingData``: the maps as JSON-safe lists.

    Args:
        embeddings: (N, D) embeddings.
        selected: Selected row indices, pick order.
        filenames: The N filenames (for ``exampleImages``).
        seed: Seeds the sample and UMAP.
        neighbors: ``n_neighbors`` of the maps (values below 2 count as 2); empty for none.

    Returns:
        ``{"projection": "umap", "maps": {"5" | "15" | "50": {"input2dEmbeddings",
        "selectedExcludingDatapool2dEmbeddings", "exampleImages"}}, "nInput", "nSelected",
        "nFitted", "nFittedSelected", "inputSubsampled", "seconds", "skipped"}``, or None when
        umap-learn is missing or there are too few rows.
    """
    sel = np.asarray(selected, np.int64)
    res = umap_maps(embeddings, sel, seed=seed, neighbors=tuple(max(2, int(k)) for k in neighbors))
    if not res["maps"]:
        return None
    rows, is_sel = res["rows"], res["isSelected"]
    where = {int(r): j for j, r in enumerate(rows)}
    examples = [int(i) for i in sel if int(i) in where][:N_EXAMPLE_IMAGES]
    maps = {}
    for k, xy in res["maps"].items():
        xy = np.round(xy, 4)
        maps[k] = {
            "input2dEmbeddings": xy.tolist(),
            "selectedExcludingDatapool2dEmbeddings": xy[is_sel].tolist(),
            "exampleImages": [
                {"location": xy[where[i]].tolist(), "filename": filenames[i]} for i in examples
            ],
        }
    return {
        "projection": "umap",
        "maps": maps,
        "nInput": int(res["nInput"]),
        "nSelected": int(res["nSelected"]),
        "nFitted": len(rows),
        "nFittedSelected": int(is_sel.sum()),
        "inputSubsampled": bool(len(rows) < res["nInput"]),
        "seconds": res["seconds"],
        "skipped": [int(k) for k in res["skipped"]],
    }
