"""Exact Euclidean nearest-neighbour search behind one function.

Backends are interchangeable and tested against each other:

- ``"numpy"``: brute force in row chunks, the reference.
- ``"torch"``: chunked ``addmm`` + ``topk``; runs on CUDA when a GPU is present.
- ``"faiss"``: ``IndexFlatL2``; on the GPU when faiss was built with GPU support.
- ``"auto"``: faiss on a GPU, else torch on CUDA, else faiss on CPU, else numpy.

No backend ever builds a (Q, M) matrix larger than one chunk of queries.

Example:
    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]], dtype=np.float32)
    >>> d, i = knn(x, x, k=1, exclude_self=True, backend="numpy")
    >>> i[:, 0].tolist()
    [1, 0, 1]
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from thresher.selection._device import cuda_available

Backend = Literal["auto", "numpy", "torch", "faiss"]
BACKENDS: tuple[str, ...] = ("numpy", "torch", "faiss")


def knn(
    queries: NDArray[np.floating[Any]],
    database: NDArray[np.floating[Any]],
    k: int,
    *,
    exclude_self: bool = False,
    backend: Backend = "auto",
    chunk_size: int = 1024,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The ``k`` nearest rows of ``database`` for every row of ``queries``.

    Args:
        queries: (Q, D) float array.
        database: (M, D) float array, same D.
        k: Neighbours per query; clipped to the number of available rows.
        exclude_self: ``queries`` is ``database`` (same rows in the same order): each row's own
            index is left out of its neighbours.
        backend: One of ``"auto"``, ``"numpy"``, ``"torch"``, ``"faiss"``.
        chunk_size: Queries per block; bounds the memory at ``chunk_size * M`` floats.

    Returns:
        ``(distances, indices)``, both (Q, k'): Euclidean distances (float32, ascending) and row
        indices into ``database`` (int64), where ``k' = min(k, M - exclude_self)``.

    Raises:
        ValueError: on mismatched shapes, an unknown backend, or a non-positive ``k``.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    db = np.ascontiguousarray(database, dtype=np.float32)
    if q.ndim != 2 or db.ndim != 2 or q.shape[1] != db.shape[1]:
        raise ValueError(
            f"knn needs (Q, D) queries and (M, D) database; got {q.shape} and {db.shape}"
        )
    if k < 1:
        raise ValueError(f"The 'k' parameter of knn must be >= 1. Got {k} instead.")
    if exclude_self and q.shape[0] != db.shape[0]:
        raise ValueError("exclude_self needs queries and database to be the same rows")
    kk = min(k, db.shape[0] - int(exclude_self))
    if kk <= 0 or q.shape[0] == 0:
        return np.zeros((q.shape[0], 0), np.float32), np.zeros((q.shape[0], 0), np.int64)
    name = _resolve(backend)
    fn = {"numpy": _knn_numpy, "torch": _knn_torch, "faiss": _knn_faiss}[name]
    return fn(q, db, kk, exclude_self, chunk_size)


@dataclass(frozen=True)
class NeighbourGraph:
    """Every row's ``k`` nearest rows of the same array, itself included: ``knn(x, x, k)``.

    One exact search serves every consumer of the same rows (the near-duplicate search, then
    the COVERAGE selection): its rows are ordered by distance, then index, as :func:`knn`
    orders them, so its first ``j`` columns are what ``knn(x, x, j)`` returns, and
    :meth:`others` what ``knn(x, x, j, exclude_self=True)`` returns.

    Attributes:
        distances: (N, K) float32 Euclidean distances, ascending per row.
        indices: (N, K) int64 row indices.
    """

    distances: NDArray[np.float32]
    indices: NDArray[np.int64]

    @property
    def k(self) -> int:
        """Neighbours per row (self included)."""
        return int(self.indices.shape[1])

    def first(self, k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """``knn(x, x, k)``: each row's ``k`` nearest rows, itself included."""
        if k > self.k:
            raise ValueError(f"the graph holds {self.k} neighbours per row, {k} were asked for")
        return self.distances[:, :k], self.indices[:, :k]

    def others(self, k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """``knn(x, x, k, exclude_self=True)``: each row's ``k`` nearest other rows."""
        if k + 1 > self.k:
            raise ValueError(
                f"the graph holds {self.k} neighbours per row, {k} others (and self) were asked"
            )
        idx = self.indices[:, : k + 1]
        is_self = idx == np.arange(len(idx))[:, None]
        # Each row without its own index (where it is among the first k + 1), order kept.
        keep = np.argsort(is_self, axis=1, kind="stable")[:, :k]
        return (
            np.take_along_axis(self.distances[:, : k + 1], keep, axis=1),
            np.take_along_axis(idx, keep, axis=1),
        )


def neighbour_graph(
    x: NDArray[np.floating[Any]], k: int, *, backend: Backend = "auto"
) -> NeighbourGraph:
    """The :class:`NeighbourGraph` of the rows of ``x``: one exact search, ``k`` per row."""
    return NeighbourGraph(*knn(x, x, k, backend=backend))


def _resolve(backend: str) -> str:
    if backend not in ("auto", *BACKENDS):
        raise ValueError(
            f"The 'backend' parameter of knn must be one of auto, {', '.join(BACKENDS)}. "
            f"Got {backend!r} instead."
        )
    if backend != "auto":
        return backend
    if _faiss_gpus() > 0:
        return "faiss"
    if _torch_cuda():
        return "torch"
    if importlib.util.find_spec("faiss") is not None:
        return "faiss"
    return "numpy"


def _torch_cuda() -> bool:
    return cuda_available()


def _faiss_gpus() -> int:
    if importlib.util.find_spec("faiss") is None:
        return 0
    import faiss

    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def _topk_from_sqdist(
    d2: NDArray[np.float32], kk: int, self_rows: NDArray[np.int64] | None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    if self_rows is not None:
        d2[np.arange(d2.shape[0]), self_rows] = np.inf
    # A few extra, as the other backends take: ties at the k-th distance (identical rows) are
    # then ordered by index too, which argpartition alone leaves arbitrary.
    extra = min(kk + 8, d2.shape[1])
    if extra < d2.shape[1]:
        part = np.argpartition(d2, extra - 1, axis=1)[:, :extra]
    else:
        part = np.broadcast_to(np.arange(d2.shape[1]), (d2.shape[0], d2.shape[1])).copy()
    pd = np.take_along_axis(d2, part, axis=1)
    # Stable order: by distance, then by index, so every backend agrees on ties.
    order = np.lexsort((part, pd), axis=1)[:, :kk]
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    dist = np.sqrt(np.maximum(np.take_along_axis(pd, order, axis=1), 0.0)).astype(np.float32)
    return dist, idx


def _knn_numpy(
    q: NDArray[np.float32], db: NDArray[np.float32], kk: int, exclude_self: bool, chunk: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    db_sq = np.einsum("ij,ij->i", db, db)
    out_d = np.empty((q.shape[0], kk), np.float32)
    out_i = np.empty((q.shape[0], kk), np.int64)
    for s in range(0, q.shape[0], chunk):
        qc = q[s : s + chunk]
        d2 = (np.einsum("ij,ij->i", qc, qc)[:, None] - 2.0 * (qc @ db.T)) + db_sq[None, :]
        rows = np.arange(s, s + qc.shape[0], dtype=np.int64) if exclude_self else None
        out_d[s : s + chunk], out_i[s : s + chunk] = _topk_from_sqdist(
            d2.astype(np.float32, copy=False), kk, rows
        )
    return out_d, out_i


def _knn_torch(
    q: NDArray[np.float32], db: NDArray[np.float32], kk: int, exclude_self: bool, chunk: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    import torch

    dev = torch.device("cuda" if cuda_available() else "cpu")
    # Small blocks keep the distance block in cache on CPU (offline_assets.md section 5).
    chunk = chunk if dev.type == "cuda" else min(chunk, 256)
    tdb = torch.from_numpy(db).to(dev)
    db_sq = (tdb * tdb).sum(1)
    out_d = np.empty((q.shape[0], kk), np.float32)
    out_i = np.empty((q.shape[0], kk), np.int64)
    with torch.inference_mode():
        for s in range(0, q.shape[0], chunk):
            qc = torch.from_numpy(q[s : s + chunk]).to(dev)
            d2 = torch.addmm(db_sq[None, :], qc, tdb.T, beta=1.0, alpha=-2.0)
            d2 += (qc * qc).sum(1, keepdim=True)
            if exclude_self:
                r = torch.arange(qc.shape[0], device=dev)
                d2[r, r + s] = float("inf")
            # Take a few extra so ties at the boundary can be ordered by index like numpy.
            extra = min(kk + 8, d2.shape[1])
            vals, idx = torch.topk(d2, extra, dim=1, largest=False, sorted=True)
            v = vals.cpu().numpy()
            i = idx.cpu().numpy().astype(np.int64)
            order = np.lexsort((i, v), axis=1)[:, :kk]
            out_i[s : s + chunk] = np.take_along_axis(i, order, axis=1)
            out_d[s : s + chunk] = np.sqrt(np.maximum(np.take_along_axis(v, order, axis=1), 0.0))
    return out_d, out_i


def _knn_faiss(
    q: NDArray[np.float32], db: NDArray[np.float32], kk: int, exclude_self: bool, chunk: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "knn backend 'faiss' needs faiss: pip install faiss-cpu (or faiss-gpu)"
        ) from e
    index: Any = faiss.IndexFlatL2(db.shape[1])
    if _faiss_gpus() > 0:  # pragma: no cover - needs a GPU
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(db)
    ask = min(kk + int(exclude_self) + 8, db.shape[0])
    out_d = np.empty((q.shape[0], kk), np.float32)
    out_i = np.empty((q.shape[0], kk), np.int64)
    big = max(chunk, 4096)
    for s in range(0, q.shape[0], big):
        d2, i = index.search(q[s : s + big], ask)
        i = i.astype(np.int64)
        d2 = d2.astype(np.float32)
        if exclude_self:
            rows = np.arange(s, s + i.shape[0])[:, None]
            d2 = np.where(i == rows, np.inf, d2)
        d2 = np.where(i < 0, np.inf, d2)
        order = np.lexsort((i, d2), axis=1)[:, :kk]
        out_i[s : s + big] = np.take_along_axis(i, order, axis=1)
        out_d[s : s + big] = np.sqrt(np.maximum(np.take_along_axis(d2, order, axis=1), 0.0))
    return out_d, out_i
