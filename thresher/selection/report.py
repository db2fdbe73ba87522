"""``report_distributions``: report_v2-style distributions of the inputs a selection used.

For every METADATA, SCORES and PREDICTIONS input of the effective strategies, three sets are
described: ``input`` (the whole pool), ``selected`` and ``random`` (a seeded random pick of the
same size, the baseline). Numeric inputs share bins and range across the sets::

    {"kind": "numeric", "strategies": [...], "bins": 20, "range": [lo, hi],
     "input": {"counts": [...], "metrics": {"mean", "std", "min", "median", "max"}},
     "selected": {...}, "random": {...}}

Categorical inputs (categorical metadata, CLASS_DISTRIBUTION predictions, counted per object)::

    {"kind": "categorical", "strategies": [...],
     "input": {"counts": {category: n}, "metrics": {"giniImbalance", "normalizedEntropy"}}, ...}

Keys are readable input names such as ``"METADATA lightly.sharpness"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.config.selection import (
    EmbeddingsInput,
    PredictionsInput,
    RandomInput,
    SelectionConfig,
    input_label,
)
from thresher.selection.api import parse_selection_config
from thresher.selection.inputs import SelectionData, resolve

BINS = 20


def _metrics(v: NDArray[np.float64]) -> dict[str, float | None]:
    if v.size == 0:
        return dict.fromkeys(("mean", "std", "min", "median", "max"))
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "min": float(v.min()),
        "median": float(np.median(v)),
        "max": float(v.max()),
    }


def _numeric(sets: dict[str, NDArray[np.float64]]) -> dict[str, Any]:
    allv = sets["input"]
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    out: dict[str, Any] = {"kind": "numeric", "bins": BINS, "range": [lo, hi]}
    for name, v in sets.items():
        counts, _ = np.histogram(v, bins=BINS, range=(lo, hi))
        out[name] = {"counts": counts.astype(int).tolist(), "metrics": _metrics(v)}
    return out


def gini_imbalance(counts: NDArray[np.float64]) -> float:
    """Gini coefficient of the class counts: 0 when balanced, towards 1 when one dominates."""
    c = np.sort(np.asarray(counts, np.float64))
    n, total = c.size, c.sum()
    if n < 2 or total <= 0:
        return 0.0
    cum = np.cumsum(c)
    g = (n + 1 - 2 * (cum.sum() / total)) / n
    return float(max(0.0, g * n / (n - 1)))


def normalized_entropy(counts: NDArray[np.float64]) -> float:
    """Entropy of the class shares over log(number of classes): 1 when balanced."""
    c = np.asarray(counts, np.float64)
    total = c.sum()
    if c.size < 2 or total <= 0:
        return 0.0
    p = c[c > 0] / total
    return float(-(p * np.log(p)).sum() / math.log(c.size))


def _categorical(categories: list[str], sets: dict[str, NDArray[np.float64]]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "categorical"}
    for name, counts in sets.items():
        out[name] = {
            "counts": {c: round(float(v), 6) for c, v in zip(categories, counts, strict=True)},
            "metrics": {
                "giniImbalance": gini_imbalance(counts),
                "normalizedEntropy": normalized_entropy(counts),
            },
        }
    return out


def report_distributions(
    selection_config: SelectionConfig | Mapping[str, Any],
    inputs: Mapping[str, Any],
    selected: NDArray[np.integer[Any]],
    seed: int,
) -> dict[str, Any]:
    """Distributions of each metadata, score and prediction input for the report.

    Args:
        selection_config: The config the selection ran with.
        inputs: The keyword arguments given to ``select()`` (as from ``gather_inputs``).
        selected: The chosen row indices.
        seed: Seeds the random baseline pick of the same size.

    Returns:
        A JSON-serialisable dict keyed by readable input name (see the module docstring).
    """
    cfg = parse_selection_config(selection_config)
    x = np.asarray(inputs["embeddings"], np.float32)
    data = SelectionData(
        embeddings=x,
        filenames=inputs.get("filenames"),
        scores=inputs.get("scores") or {},
        predictions=inputs.get("predictions") or {},
        metadata=inputs.get("metadata") or {},
        queries=inputs.get("queries") or {},
        seed=seed,
    )
    n = data.n
    sel = np.asarray(selected, np.int64)
    rnd = np.sort(np.random.default_rng(seed).choice(n, size=min(sel.size, n), replace=False))
    index_sets = {"input": np.arange(n), "selected": sel, "random": rnd}
    out: dict[str, Any] = {}
    for entry in cfg.effective_strategies():
        inp = entry.input
        if isinstance(inp, (EmbeddingsInput, RandomInput)):
            continue
        label = input_label(inp)
        if label in out:
            out[label]["strategies"].append(entry.strategy.type)
            continue
        r = resolve(inp, entry.strategy.type, data)
        if isinstance(inp, PredictionsInput) and inp.name == "CLASS_DISTRIBUTION":
            preds = data.predictions[inp.task]
            cols = [preds.category_names.index(c) for c in r.classes]
            counts = np.asarray(preds.category_counts, np.float64)[:, cols]
            item = _categorical(
                list(r.classes), {k: counts[v].sum(axis=0) for k, v in index_sets.items()}
            )
        elif r.kind == "categorical":
            assert r.values is not None
            labels = np.array(["<none>" if v is None else str(v) for v in r.values], object)
            cats = sorted(set(labels.tolist()))
            sets = {
                k: np.array([(labels[v] == c).sum() for c in cats], np.float64)
                for k, v in index_sets.items()
            }
            item = _categorical(cats, sets)
        else:
            assert r.values is not None
            vals = np.asarray(r.values, np.float64)
            item = _numeric({k: vals[v] for k, v in index_sets.items()})
        item["strategies"] = [entry.strategy.type]
        out[label] = item
    return out


def dump_distributions(distributions: Any) -> Any:
    """The JSON form of ``report_distributions``' result, as the select stage stores it."""
    return distributions


def load_distributions(obj: Any) -> Any:
    """Parse what :func:`dump_distributions` wrote."""
    return obj
