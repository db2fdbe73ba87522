"""Reader for the ``.lightly/predictions/`` format (Lightly Worker predictions).

Layout in the LIGHTLY location::

    .lightly/predictions/tasks.json                       ["task_a", ...]
    .lightly/predictions/<task>/schema.json               {"task_type", "categories": [{id, name}]}
    .lightly/predictions/<task>/<relpath-without-ext>.json
        {"file_name": "<relpath>", "predictions": [{"category_id", "probabilities"?, ...}]}

:func:`read_predictions` turns one task into arrays over the run's filenames: a per-sample
class distribution (classification: the probability vector; detection and segmentation: summed
over objects), per-category object counts, and the three active-learning scores. Any mismatch
with the schema raises :class:`~thresher.errors.SchemaError` naming the file and the field.

Example:
    >>> preds = read_predictions("file:///data/lightly", ["a.jpg"], "classification-task")
    ... # doctest: +SKIP
    >>> preds.scores["uncertainty_margin"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fsspec.core import url_to_fs
from numpy.typing import NDArray

from thresher.errors import SchemaError
from thresher.storage._json import iter_json_files, load_json

TASK_TYPES = (
    "classification",
    "object-detection",
    "semantic-segmentation",
    "instance-segmentation",
    "keypoint-detection",
)
SCORE_NAMES = ("uncertainty_least_confidence", "uncertainty_margin", "uncertainty_entropy")
RESERVED_TASKS = ("lightly_pretagging",)
_CAT_CHUNK = 512


@dataclass(frozen=True)
class TaskPredictions:
    """One prediction task read over the run's filenames.

    Attributes:
        task: The task name.
        task_type: One of :data:`TASK_TYPES`.
        category_ids: (C,) category ids in schema order; column ``j`` of the arrays is
            ``category_ids[j]``.
        category_names: The C category names, same order.
        class_distribution: (N, C) float32: classification: the probability vector (one-hot of
            ``category_id`` without probabilities); other tasks: the sum over objects. All-zero
            rows for samples without predictions.
        category_counts: (N, C) int32: number of predictions of each category per sample.
        scores: score name -> (N,) float32 in [0, 1], the maximum over a sample's predictions
            (0 without predictions).
        has_predictions: (N,) bool, whether a prediction file was found for the sample.
    """

    task: str
    task_type: str
    category_ids: NDArray[np.int64]
    category_names: list[str]
    class_distribution: NDArray[np.float32]
    category_counts: NDArray[np.int32]
    scores: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    has_predictions: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))


def prediction_path(root: str, task: str, filename: str) -> str:
    """The per-file JSON path of ``filename`` (relative to INPUT) under a task folder."""
    stem = posixpath.splitext(filename)[0]
    return posixpath.join(root, ".lightly", "predictions", task, stem + ".json")


def read_tasks(lightly_url: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """The task names listed in ``.lightly/predictions/tasks.json`` (empty if absent)."""
    fs, root = url_to_fs(lightly_url, **(storage_options or {}))
    path = posixpath.join(root, ".lightly", "predictions", "tasks.json")
    if not fs.exists(path):
        return []
    data = load_json(fs, path)
    if not isinstance(data, list) or not all(isinstance(t, str) and t for t in data):
        raise SchemaError(path, "<root>", "must be a JSON list of task names (strings)")
    return list(data)


def read_schema(
    lightly_url: str, task: str, storage_options: dict[str, Any] | None = None
) -> tuple[str, list[int], list[str]]:
    """``(task_type, category_ids, category_names)`` of a task's ``schema.json``."""
    fs, root = url_to_fs(lightly_url, **(storage_options or {}))
    path = posixpath.join(root, ".lightly", "predictions", task, "schema.json")
    return _parse_schema(load_json(fs, path), path)


def _parse_schema(data: Any, path: str) -> tuple[str, list[int], list[str]]:
    if not isinstance(data, dict):
        raise SchemaError(path, "<root>", "must be a JSON object with task_type and categories")
    task_type = data.get("task_type")
    if task_type not in TASK_TYPES:
        raise SchemaError(path, "task_type", f"must be one of {', '.join(TASK_TYPES)}")
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise SchemaError(path, "categories", "must be a non-empty list of {id, name}")
    ids: list[int] = []
    names: list[str] = []
    for j, c in enumerate(cats):
        if not isinstance(c, dict):
            raise SchemaError(path, f"categories[{j}]", "must be an object {id, name}")
        cid, name = c.get("id"), c.get("name")
        if not isinstance(cid, int) or isinstance(cid, bool) or cid < 0:
            raise SchemaError(path, f"categories[{j}].id", "must be an integer >= 0")
        if not isinstance(name, str) or not name:
            raise SchemaError(path, f"categories[{j}].name", "must be a non-empty string")
        if cid in ids:
            raise SchemaError(path, f"categories[{j}].id", f"duplicate id {cid}")
        if name in names:
            raise SchemaError(path, f"categories[{j}].name", f"duplicate name {name!r}")
        ids.append(cid)
        names.append(name)
    return str(task_type), ids, names


def read_predictions(
    lightly_url: str,
    filenames: Sequence[str],
    task: str,
    storage_options: dict[str, Any] | None = None,
) -> TaskPredictions:
    """Read one prediction task for ``filenames``.

    Args:
        lightly_url: The LIGHTLY location (local path or fsspec URL).
        filenames: The run's filenames, relative to the INPUT root.
        task: The task name; must be listed in ``tasks.json``.
        storage_options: Passed to fsspec.

    Returns:
        The task's arrays over ``filenames`` (see :class:`TaskPredictions`).

    Raises:
        SchemaError: naming the file and field of any mismatch, or a task not in tasks.json.
    """
    fs, root = url_to_fs(lightly_url, **(storage_options or {}))
    tasks_path = posixpath.join(root, ".lightly", "predictions", "tasks.json")
    tasks = read_tasks(lightly_url, storage_options)
    if task not in tasks:
        raise SchemaError(
            tasks_path,
            "<root>",
            f"task {task!r} is not listed (listed: {', '.join(tasks) or 'none'}); "
            "only tasks listed in tasks.json are used",
        )
    schema_path = posixpath.join(root, ".lightly", "predictions", task, "schema.json")
    task_type, ids, names = _parse_schema(load_json(fs, schema_path), schema_path)
    col = {cid: j for j, cid in enumerate(ids)}
    n, c = len(filenames), len(ids)
    dist = np.zeros((n, c), np.float32)
    counts = np.zeros((n, c), np.int32)
    scores = {s: np.zeros(n, np.float32) for s in SCORE_NAMES}
    has = np.zeros(n, bool)
    paths = [prediction_path(root, task, f) for f in filenames]
    for i, p, data in iter_json_files(fs, paths, _CAT_CHUNK):
        _parse_file(data, p, task_type, col, i, dist, counts, scores)
        has[i] = True
    return TaskPredictions(
        task=task,
        task_type=task_type,
        category_ids=np.asarray(ids, np.int64),
        category_names=names,
        class_distribution=dist,
        category_counts=counts,
        scores=scores,
        has_predictions=has,
    )


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _parse_file(
    data: Any,
    path: str,
    task_type: str,
    col: dict[int, int],
    i: int,
    dist: NDArray[np.float32],
    counts: NDArray[np.int32],
    scores: dict[str, NDArray[np.float32]],
) -> None:
    if not isinstance(data, dict):
        raise SchemaError(path, "<root>", "must be an object {file_name, predictions}")
    if not isinstance(data.get("file_name"), str):
        raise SchemaError(path, "file_name", "must be a string (path relative to INPUT)")
    preds = data.get("predictions")
    if not isinstance(preds, list):
        raise SchemaError(path, "predictions", "must be a list")
    c = len(col)
    for j, p in enumerate(preds):
        where = f"predictions[{j}]"
        if not isinstance(p, dict):
            raise SchemaError(path, where, "must be an object")
        cid = p.get("category_id")
        if not isinstance(cid, int) or isinstance(cid, bool) or cid not in col:
            raise SchemaError(
                path, f"{where}.category_id", f"must be one of the schema ids {sorted(col)}"
            )
        probs = p.get("probabilities")
        if probs is not None:
            if (
                not isinstance(probs, list)
                or len(probs) != c
                or not all(_number(v) and -1e-6 <= v <= 1 + 1e-6 for v in probs)
            ):
                raise SchemaError(path, f"{where}.probabilities", f"must be {c} numbers in [0, 1]")
            if abs(sum(probs) - 1.0) > 1e-2:
                raise SchemaError(
                    path, f"{where}.probabilities", f"must sum to 1, got {sum(probs):.4f}"
                )
        score: Any = p.get("score")
        if task_type != "classification" and (not _number(score) or not (0 <= score <= 1)):
            raise SchemaError(path, f"{where}.score", "must be a number in [0, 1]")
        if task_type in ("object-detection", "instance-segmentation"):
            bbox = p.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_number, bbox)):
                raise SchemaError(path, f"{where}.bbox", "must be [x, y, w, h] in pixels")
            if bbox[2] < 0 or bbox[3] < 0:
                raise SchemaError(path, f"{where}.bbox", "width and height must be >= 0")
        if task_type in ("semantic-segmentation", "instance-segmentation"):
            seg = p.get("segmentation")
            if not isinstance(seg, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in seg
            ):
                raise SchemaError(
                    path, f"{where}.segmentation", "must be an RLE list of non-negative ints"
                )
        if task_type == "keypoint-detection":
            kp = p.get("keypoints")
            if not isinstance(kp, list) or len(kp) % 3 or not all(map(_number, kp)):
                raise SchemaError(path, f"{where}.keypoints", "must be [x1, y1, s1, ...]")
        if probs is not None:
            vec = np.asarray(probs, np.float64)
        else:
            vec = np.zeros(c)
            vec[col[cid]] = 1.0
        counts[i, col[cid]] += 1
        dist[i] += vec.astype(np.float32)
        if probs is None and task_type != "classification":
            # Only an objectness score: its uncertainty is that of [score, 1 - score].
            unc = _uncertainties(np.asarray([float(score), 1.0 - float(score)]))
        else:
            unc = _uncertainties(vec)
        for name, v in unc.items():
            scores[name][i] = max(scores[name][i], v)
    if task_type == "classification" and len(preds) > 1:
        dist[i] /= len(preds)


def _uncertainties(p: NDArray[np.float64]) -> dict[str, float]:
    """Least confidence, margin and entropy of one probability vector, each in [0, 1]."""
    c = p.shape[0]
    if c < 2:
        return dict.fromkeys(SCORE_NAMES, 0.0)
    p = np.clip(p / max(p.sum(), 1e-12), 0.0, 1.0)
    top = np.sort(p)[::-1]
    lc = (1.0 - top[0]) / (1.0 - 1.0 / c)
    margin = 1.0 - (top[0] - top[1])
    nz = p[p > 0]
    ent = float(-(nz * np.log(nz)).sum() / math.log(c))
    return {
        "uncertainty_least_confidence": float(np.clip(lc, 0, 1)),
        "uncertainty_margin": float(np.clip(margin, 0, 1)),
        "uncertainty_entropy": float(np.clip(ent, 0, 1)),
    }
