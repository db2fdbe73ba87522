"""Fewer dimensions for searches over embeddings too large to hold: a PCA in chunks.

Above :data:`FULL_BYTES_MAX` bytes of float32 rows (1 GiB: 200,000 x 1,280, or 1,000,000 x
268), the select stage and the near-duplicate search work on the rows projected on their first
:data:`REDUCED_DIM` principal components instead of the full rows (a million 1,280-dim rows are
5 GB; projected, 512 MB). The components come from a seeded sample of at most
:data:`PCA_SAMPLE` rows; the projection reads the rows a chunk at a time
(:func:`thresher.storage.embeddings_npy.iter_chunks`), so the full rows are never in memory.

A projection on orthonormal components never lengthens a distance, so a pair closer than a
threshold stays closer in the projection: the near-duplicate search finds every candidate
there and checks each on the full rows. For DIVERSITY, ``benchmarks/scale.py --overlap``
measures how many picks change (docs/selection.md, "Speed and memory").

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    >>> pca = fit_pca(x, dim=8)
    >>> y = pca.transform(x)
    >>> bool(np.allclose(np.linalg.norm(y[0] - y[1]), np.linalg.norm(x[0] - x[1]), atol=1e-4))
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.storage.embeddings_npy import iter_chunks, read_rows

#: Dimensions kept for searches over large inputs.
REDUCED_DIM = 128
#: Rows of float32 up to this many bytes are searched in full (and loaded into memory).
FULL_BYTES_MAX = 1 << 30
#: Rows the components are computed from.
PCA_SAMPLE = 20_000


@dataclass(frozen=True)
class Pca:
    """A projection on principal components.

    Attributes:
        mean: (D,) float32 mean of the sample.
        components: (D, k) float32, orthonormal columns.
        explained: Share of the sample's variance the components keep (0 to 1).
        normalize: Rows are L2-normalised before they are projected.
    """

    mean: NDArray[np.float32]
    components: NDArray[np.float32]
    explained: float
    normalize: bool = False

    @property
    def dim(self) -> int:
        """Dimensions after the projection."""
        return int(self.components.shape[1])

    def transform(self, x: NDArray[Any]) -> NDArray[np.float32]:
        """Project rows (in memory) on the components."""
        a = np.asarray(x, dtype=np.float32)
        if self.normalize:
            a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        out: NDArray[np.float32] = ((a - self.mean) @ self.components).astype(np.float32)
        return out

    def transform_all(self, x: NDArray[Any]) -> NDArray[np.float32]:
        """Project every row of ``x`` (a memory map is read a chunk at a time)."""
        out = np.empty((x.shape[0], self.dim), np.float32)
        for a, chunk in iter_chunks(x):
            out[a : a + chunk.shape[0]] = self.transform(chunk)
        return out


def fit_pca(
    x: NDArray[Any],
    dim: int = REDUCED_DIM,
    *,
    sample: int = PCA_SAMPLE,
    seed: int = 0,
    normalize: bool = False,
) -> Pca:
    """Principal components of a seeded sample of ``x``'s rows.

    Args:
        x: (N, D) rows (a memory map is fine: only the sample is read).
        dim: Components to keep (at most D).
        sample: Rows to compute them from.
        seed: Seed of the sample.
        normalize: L2-normalise rows first (for cosine distances).
    """
    n, d = int(x.shape[0]), int(x.shape[1])
    k = min(dim, d)
    rows = np.arange(n)
    if n > sample:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    s = read_rows(x, rows).astype(np.float64)
    if normalize:
        s /= np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)
    mean = s.mean(axis=0)
    c = s - mean
    vals, vecs = np.linalg.eigh(c.T @ c)
    top = np.argsort(vals)[::-1][:k]
    total = float(max(vals.sum(), 1e-30))
    return Pca(
        mean.astype(np.float32),
        np.ascontiguousarray(vecs[:, top], dtype=np.float32),
        float(np.clip(vals[top].sum() / total, 0.0, 1.0)),
        normalize,
    )


def needs_reduction(n: int, d: int) -> bool:
    """Whether (n, d) float32 rows are past :data:`FULL_BYTES_MAX` and can lose dimensions."""
    return n * d * 4 > FULL_BYTES_MAX and d > REDUCED_DIM


def load_rows(x: NDArray[Any]) -> NDArray[np.float32]:
    """All of ``x`` as float32 in memory (a memory map read a chunk at a time)."""
    if not isinstance(x, np.memmap) and x.dtype == np.float32:
        return x
    out = np.empty(x.shape, np.float32)
    for a, chunk in iter_chunks(x):
        out[a : a + chunk.shape[0]] = chunk
    return out


def search_rows(
    x: NDArray[Any], *, seed: int = 0, normalize: bool = False, dim: int = REDUCED_DIM
) -> tuple[NDArray[np.float32], Pca | None]:
    """The rows to search: ``x`` in memory, or its PCA projection if it is too large.

    Args:
        x: (N, D) rows, usually a memory map.
        seed: Seed of the PCA sample.
        normalize: Project L2-normalised rows (cosine searches).
        dim: Components to keep past the bound.

    Returns:
        ``(rows, pca)``: pca is None when the rows are the full ones.
    """
    n, d = int(x.shape[0]), int(x.shape[1])
    if not needs_reduction(n, d):
        return load_rows(x), None
    pca = fit_pca(x, dim, seed=seed, normalize=normalize)
    return pca.transform_all(x), pca
