"""Resolve a strategy's ``input`` config into the arrays its objective works on.

The values handed to :func:`thresher.selection.select`:

- ``embeddings``: (N, D) float32, the run's own.
- ``filenames``: N names; resolves query tags given as filename lists.
- ``scores``: ``{task: {score_name: (N,) float}}``; falls back to ``predictions[task].scores``.
- ``predictions``: ``{task: TaskPredictions}`` (see :mod:`thresher.storage.predictions`).
- ``metadata``: ``{key: (N,) array}``: numeric dtype for numeric keys, object (str or None)
  for categorical keys; the built-in ``lightly.*`` keys are numeric.
- ``queries``: ``{tag_name or query_embeddings: (Q, D) float array or list of filenames}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.config.selection import (
    STRATEGY_CLASSES,
    EmbeddingsInput,
    MetadataInput,
    PredictionsInput,
    RandomInput,
    ScoresInput,
    SelectionInput,
    input_label,
    strategy_type,
)
from thresher.errors import ConfigError
from thresher.storage.predictions import TaskPredictions

# strategy type -> the input kinds it accepts, as its config class declares them.
_ACCEPTS = {strategy_type(c): tuple(getattr(c, "accepts", ())) for c in STRATEGY_CLASSES}


@dataclass
class SelectionData:
    """Everything :func:`select` was given, validated for shape."""

    embeddings: NDArray[np.float32]
    filenames: Sequence[str] | None = None
    scores: Mapping[str, Mapping[str, NDArray[Any]]] = field(default_factory=dict)
    predictions: Mapping[str, TaskPredictions] = field(default_factory=dict)
    metadata: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    queries: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.embeddings.shape[0])


@dataclass
class Resolved:
    """One input's values.

    Attributes:
        kind: ``embeddings``, ``queries``, ``numeric``, ``categorical`` or ``distribution``.
        values: (N,) float64 for numeric, (N,) object for categorical, (N, C) float for
            distribution, (Q, D) float32 for queries, None for embeddings.
        classes: Column names of a distribution.
    """

    kind: str
    values: NDArray[Any] | None = None
    classes: list[str] = field(default_factory=list)


def _numeric(label: str, v: Any, n: int) -> NDArray[np.float64]:
    arr = np.asarray(v)
    if arr.shape != (n,):
        raise ConfigError(f"{label}: expected {n} values (one per sample), got shape {arr.shape}")
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{label}: values must be numbers for this strategy") from e
    bad = ~np.isfinite(out)
    if bad.any():
        raise ConfigError(
            f"{label}: {int(bad.sum())} value(s) are NaN or infinite (first at row "
            f"{int(np.flatnonzero(bad)[0])}); give every sample a value (for metadata, a "
            "defaultValue in schema.json)"
        )
    return out


def _is_numeric(arr: NDArray[Any]) -> bool:
    return arr.dtype.kind in "iuf"


def resolve(inp: SelectionInput, strategy: str, data: SelectionData) -> Resolved:
    """The values of ``inp`` for use with ``strategy``.

    The config already checked that the pair is allowed (``StrategyEntry``); a METADATA input
    resolves to categories for a strategy that accepts them, else to numbers.

    Raises:
        ConfigError: naming the input when its values are missing, mis-shaped or not finite.
    """
    label = input_label(inp)
    n = data.n
    if isinstance(inp, EmbeddingsInput):
        key = inp.tag_name if inp.tag_name is not None else inp.query_embeddings
        if key is None:
            return Resolved("embeddings")
        return Resolved("queries", _queries(label, key, data))
    if isinstance(inp, ScoresInput):
        table = data.scores.get(inp.task)
        if table is None or inp.score not in table:
            preds = data.predictions.get(inp.task)
            if preds is None or inp.score not in preds.scores:
                known = ", ".join(sorted({*data.scores, *data.predictions})) or "none"
                raise ConfigError(
                    f"{label}: no scores for task {inp.task!r}; pass scores= or predictions= "
                    f"(known tasks: {known})"
                )
            return Resolved("numeric", _numeric(label, preds.scores[inp.score], n))
        return Resolved("numeric", _numeric(label, table[inp.score], n))
    if isinstance(inp, PredictionsInput):
        preds = data.predictions.get(inp.task)
        if preds is None:
            raise ConfigError(
                f"{label}: no predictions for task {inp.task!r} "
                f"(known tasks: {', '.join(sorted(data.predictions)) or 'none'})"
            )
        names = list(preds.category_names)
        cols = list(range(len(names)))
        if inp.categories is not None:
            unknown = [c for c in inp.categories if c not in names]
            if unknown:
                raise ConfigError(
                    f"{label}: unknown categories {unknown}; the task has {', '.join(names)}"
                )
            cols = [names.index(c) for c in inp.categories]
        if inp.name == "CATEGORY_COUNT":
            counts = np.asarray(preds.category_counts)[:, cols].sum(axis=1)
            return Resolved("numeric", _numeric(label, counts, n))
        dist = np.asarray(preds.class_distribution, np.float64)[:, cols]
        if dist.shape[0] != n or not np.isfinite(dist).all() or (dist < 0).any():
            raise ConfigError(f"{label}: class distribution must be ({n}, C), finite, >= 0")
        return Resolved("distribution", dist, [names[j] for j in cols])
    if isinstance(inp, MetadataInput):
        if inp.key not in data.metadata:
            raise ConfigError(
                f"{label}: no metadata values for key {inp.key!r} "
                f"(known: {', '.join(sorted(data.metadata)) or 'none'})"
            )
        arr = np.asarray(data.metadata[inp.key])
        if arr.shape != (n,):
            raise ConfigError(f"{label}: expected {n} values, got shape {arr.shape}")
        if "categorical" in _ACCEPTS[strategy]:
            if arr.dtype.kind == "f":
                raise ConfigError(
                    f"{label}: {strategy} needs categorical metadata; {inp.key!r} is numeric"
                )
            return Resolved("categorical", arr.astype(object))
        if not _is_numeric(arr):
            raise ConfigError(
                f"{label}: {strategy} needs numeric metadata; {inp.key!r} is categorical"
            )
        return Resolved("numeric", _numeric(label, arr, n))
    assert isinstance(inp, RandomInput)
    seed = data.seed if inp.random_seed is None else inp.random_seed
    return Resolved("numeric", np.random.default_rng(seed).random(n))


def _queries(label: str, key: str, data: SelectionData) -> NDArray[np.float32]:
    if key not in data.queries:
        raise ConfigError(
            f"{label}: no query embeddings for {key!r}; pass queries={{{key!r}: ...}} to "
            "select() (gather_inputs reads them from the LIGHTLY location)"
        )
    q = data.queries[key]
    if isinstance(q, np.ndarray) and q.dtype.kind in "iuf":
        arr = np.asarray(q, np.float32)
    else:
        names = [str(v) for v in q]
        if data.filenames is None:
            raise ConfigError(f"{label}: queries given as filenames need filenames=")
        index = {f: i for i, f in enumerate(data.filenames)}
        rows = [index[f] for f in names if f in index]
        if not rows:
            raise ConfigError(f"{label}: none of the {len(names)} query filenames is in the pool")
        arr = data.embeddings[np.asarray(rows)]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != data.embeddings.shape[1]:
        raise ConfigError(
            f"{label}: query embeddings must be (Q, {data.embeddings.shape[1]}) with Q >= 1, "
            f"got {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ConfigError(f"{label}: query embeddings contain NaN or infinite values")
    return arr
