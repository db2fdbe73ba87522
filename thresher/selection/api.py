"""``select``: the public entry point of the selection engine, usable without the flow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.config._base import parse_config
from thresher.config.not_yet import check_supported
from thresher.config.selection import SelectionConfig
from thresher.errors import ConfigError, InputError
from thresher.selection.combiner import greedy
from thresher.selection.inputs import SelectionData, resolve
from thresher.selection.knn import BACKENDS, NeighbourGraph
from thresher.selection.objective import Objective, Pool
from thresher.selection.registry import REGISTRY
from thresher.storage.predictions import TaskPredictions


def parse_selection_config(
    selection_config: SelectionConfig | Mapping[str, Any],
) -> SelectionConfig:
    """Validate a selection config and refuse the keys this version does not implement.

    ``load_configs`` does the same for a whole run; this is the edge for callers of
    :func:`select` that pass a dict.

    Raises:
        ConfigError: naming the wrong key.
        NotSupportedYetError: for a key of :data:`thresher.config.not_yet.NOT_YET`
            (``auto_tasks``, ``lightly_path_regex``, object-level ``input.task``).
    """
    cfg = parse_config(SelectionConfig, selection_config, "selection_config")
    check_supported(selection=cfg)
    return cfg


def _check_embeddings(embeddings: Any) -> NDArray[np.float32]:
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise InputError(f"embeddings must be a 2-D (N, D) array, got shape {x.shape}")
    if x.dtype.kind not in "iuf":
        raise InputError(f"embeddings must be numbers, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InputError(
            f"embeddings: {int(bad.sum())} row(s) contain NaN or infinite values (first: row "
            f"{int(np.flatnonzero(bad)[0])}); remove or re-embed them"
        )
    return x


def _check_preselected(preselected: Any, n: int) -> NDArray[np.int64]:
    if preselected is None:
        return np.zeros(0, np.int64)
    p = np.asarray(preselected)
    if p.size == 0:
        return np.zeros(0, np.int64)
    if p.ndim != 1 or p.dtype.kind not in "iu":
        raise InputError("preselected must be a 1-D array of row indices into embeddings")
    if p.min() < 0 or p.max() >= n:
        raise InputError(f"preselected indices must lie in [0, {n}), got {p.min()}..{p.max()}")
    return np.unique(p.astype(np.int64))


def build_objectives(cfg: SelectionConfig, data: SelectionData, pool: Pool) -> list[Objective]:
    """One objective per effective strategy, thresholds included."""
    out: list[Objective] = []
    for j, entry in enumerate(cfg.effective_strategies()):
        spec = REGISTRY[entry.strategy.type]
        r = resolve(entry.input, entry.strategy.type, data)
        if r.kind not in spec.input_kinds:
            raise ConfigError(
                f"selection_config.strategies[{j}]: {spec.name} cannot use a {r.kind} input"
            )
        out.append(spec.build(entry.strategy, r, pool))
    return out


def select(
    selection_config: SelectionConfig | Mapping[str, Any],
    *,
    embeddings: NDArray[Any],
    filenames: Sequence[str] | None = None,
    scores: Mapping[str, Mapping[str, NDArray[Any]]] | None = None,
    predictions: Mapping[str, TaskPredictions] | None = None,
    metadata: Mapping[str, NDArray[Any]] | None = None,
    preselected: NDArray[np.integer[Any]] | Sequence[int] | None = None,
    seed: int = 0,
    queries: Mapping[str, Any] | None = None,
    backend: str = "auto",
    neighbours: NeighbourGraph | None = None,
) -> NDArray[np.int64]:
    """Choose rows to label, in pick order.

    Thresholds are applied first; the other strategies are combined greedily, one pick at a
    time, maximising the product of each objective raised to its strength.

    Args:
        selection_config: The user's ``selection_config`` dict (or a :class:`SelectionConfig`).
            Without ``strategies`` the default recipe is used (see docs/selection.md).
        embeddings: (N, D) float array, one row per sample; cast to float32.
        filenames: N names, in row order; needed when queries are given as filenames.
        scores: ``{task: {score_name: (N,) float}}``; a missing task falls back to
            ``predictions[task].scores``.
        predictions: ``{task: TaskPredictions}`` as read by
            :func:`thresher.storage.predictions.read_predictions`.
        metadata: ``{key: (N,) array}``; numeric dtype for numeric keys (``lightly.*``
            included), object arrays of str/None for categorical keys.
        preselected: Row indices already chosen (a datapool). They count as chosen for every
            strategy and are never returned; ``n_samples`` counts new picks only.
        seed: The only source of randomness (RANDOM inputs, large-N typicality subsets).
        queries: ``{tag_name or query_embeddings: (Q, D) array or list of filenames}`` for
            SIMILARITY inputs.
        backend: Nearest-neighbour backend: ``auto``, ``numpy``, ``torch`` or ``faiss``.
        neighbours: The exact neighbour graph of ``embeddings`` over themselves
            (:func:`thresher.selection.knn.neighbour_graph`), when one was searched already
            (the run's near-duplicate search): COVERAGE takes its neighbourhoods from it when
            it is wide enough, with the same picks. None: searched here.

    Returns:
        (n,) int64 row indices into ``embeddings``, unique, in pick order. ``n`` is at most
        ``n_samples`` (or ``proportion_samples`` of the non-preselected rows); it is smaller
        when thresholds or stopping conditions leave fewer eligible rows.

    Raises:
        ConfigError: for a bad config or input values that do not fit it (naming the input).
        InputError: for NaN/inf or mis-shaped embeddings or preselected indices.
        NotSupportedYetError: for ``lightly_path_regex`` (see
            :data:`thresher.config.not_yet.NOT_YET`). An object-level config (``auto_tasks``,
            ``input.task`` on EMBEDDINGS) says where the rows come from: the pipeline makes
            the objects' crops and embeds them (docs/objects.md); here the rows given are the
            samples, whatever they are.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
        >>> select({"n_samples": 5}, embeddings=x).shape
        (5,)
    """
    cfg = parse_selection_config(selection_config)
    x = _check_embeddings(embeddings)
    n_rows = x.shape[0]
    if backend not in ("auto", *BACKENDS):
        raise ConfigError(f"backend must be one of auto, {', '.join(BACKENDS)}; got {backend!r}")
    if filenames is not None and len(filenames) != n_rows:
        raise InputError(f"filenames has {len(filenames)} entries for {n_rows} embeddings")
    pre = _check_preselected(preselected, n_rows)
    n = cfg.n_for(n_rows - pre.size)
    if n_rows == 0 or n == 0:
        return np.zeros(0, np.int64)
    data = SelectionData(
        embeddings=x,
        filenames=filenames,
        scores=scores or {},
        predictions=predictions or {},
        metadata=metadata or {},
        queries=queries or {},
        seed=seed,
    )
    if neighbours is not None and neighbours.indices.shape[0] != n_rows:
        raise InputError(
            f"neighbours has {neighbours.indices.shape[0]} rows for {n_rows} embeddings"
        )
    pool = Pool(embeddings=x, seed=seed, backend=backend, budget=n, neighbours=neighbours)
    objectives = build_objectives(cfg, data, pool)
    return greedy(objectives, n_rows, n, pre)
