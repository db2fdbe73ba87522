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
    >>> lightly = Location("/data/lightly")
    >>> preds = read_predictions(lightly, ["a.jpg"], "classification-task")  # doctest: +SKIP
    >>> preds.scores["uncertainty_margin"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Literal, cast, get_args

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, StrictInt, ValidationInfo, model_validator

from thresher.config.selection import SCORE_NAMES
from thresher.errors import SchemaError
from thresher.storage._json import (
    FileModel,
    check_file_name,
    iter_json,
    load_json,
    validate,
    where,
)
from thresher.storage.location import Location

TaskType = Literal[
    "classification",
    "object-detection",
    "semantic-segmentation",
    "instance-segmentation",
    "keypoint-detection",
]
TASK_TYPES: tuple[str, ...] = get_args(TaskType)
_CAT_CHUNK = 512
_ROOT = ".lightly/predictions"

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Category(FileModel):
    shape: ClassVar[str] = "must be an object {id, name}"

    id: StrictInt = Field(ge=0, description="must be an integer >= 0")
    name: str = Field(min_length=1, description="must be a non-empty string")


class _TaskSchema(FileModel):
    shape: ClassVar[str] = "must be a JSON object with task_type and categories"

    task_type: TaskType = Field(description=f"must be one of {', '.join(TASK_TYPES)}")
    categories: list[_Category] = Field(
        min_length=1, description="must be a non-empty list of {id, name}"
    )

    @model_validator(mode="after")
    def _unique(self) -> _TaskSchema:
        ids: set[int] = set()
        names: set[str] = set()
        for j, c in enumerate(self.categories):
            if c.id in ids:
                raise ValueError(f"categories[{j}].id: duplicate id {c.id}; ids must be unique")
            if c.name in names:
                raise ValueError(
                    f"categories[{j}].name: duplicate name {c.name!r}; names must be unique"
                )
            ids.add(c.id)
            names.add(c.name)
        return self


class _Prediction(FileModel):
    """One prediction; which keys it needs depends on the task type (the validation context)."""

    shape: ClassVar[str] = "must be an object"

    category_id: StrictInt = Field(description="must be one of the schema's category ids")
    probabilities: list[Number] | None = Field(None, description="must be numbers in [0, 1]")
    score: Number | None = Field(None, description="must be a number in [0, 1]")
    bbox: list[Number] | None = Field(None, description="must be [x, y, w, h] in pixels")
    segmentation: list[Annotated[StrictInt, Field(ge=0)]] | None = Field(
        None, description="must be an RLE list of non-negative ints"
    )
    keypoints: list[Number] | None = Field(None, description="must be [x1, y1, s1, ...]")

    @model_validator(mode="after")
    def _fits_task(self, info: ValidationInfo) -> _Prediction:
        ctx = cast(_Context, info.context)
        if self.category_id not in ctx.col:
            raise ValueError(f"category_id: must be one of the schema ids {sorted(ctx.col)}")
        c = len(ctx.col)
        p = self.probabilities
        if p is not None:
            if len(p) != c:
                raise ValueError(
                    f"probabilities: must have one number per category of schema.json ({c}), "
                    f"got {len(p)}"
                )
            if not all(-1e-6 <= v <= 1 + 1e-6 for v in p):
                raise ValueError(f"probabilities: must be {c} numbers in [0, 1]")
            if abs(sum(p) - 1.0) > 1e-2:
                raise ValueError(f"probabilities: must sum to 1, got {sum(p):.4f}")
        t = ctx.task_type
        if t != "classification" and (self.score is None or not 0 <= self.score <= 1):
            raise ValueError("score: must be a number in [0, 1]")
        if t in ("object-detection", "instance-segmentation"):
            if self.bbox is None or len(self.bbox) != 4:
                raise ValueError("bbox: must be [x, y, w, h] in pixels")
            if self.bbox[2] < 0 or self.bbox[3] < 0:
                raise ValueError("bbox: width and height must be >= 0")
        if t in ("semantic-segmentation", "instance-segmentation") and self.segmentation is None:
            raise ValueError("segmentation: must be an RLE list of non-negative ints")
        if t == "keypoint-detection" and (self.keypoints is None or len(self.keypoints) % 3):
            raise ValueError("keypoints: must be [x1, y1, s1, ...]")
        return self


class _PredictionFile(FileModel):
    shape: ClassVar[str] = "must be an object {file_name, predictions}"

    file_name: str = Field(description="must be a string (path relative to INPUT)")
    predictions: list[_Prediction] = Field(description="must be a list")


@dataclass(frozen=True)
class _Context:
    task_type: str
    col: dict[int, int]


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


def prediction_path(task: str, filename: str) -> str:
    """The per-file JSON of ``filename`` (relative to INPUT), relative to the LIGHTLY root."""
    stem = posixpath.splitext(filename)[0]
    return f"{_ROOT}/{task}/{stem}.json"


def read_tasks(lightly: Location) -> list[str]:
    """The task names listed in ``.lightly/predictions/tasks.json`` (empty if absent)."""
    rel = f"{_ROOT}/tasks.json"
    if not lightly.exists(rel):
        return []
    data = load_json(lightly, rel)
    if not isinstance(data, list) or not all(isinstance(t, str) and t for t in data):
        raise SchemaError(
            where(lightly, rel), "<root>", 'must be a JSON list of task names, e.g. ["my-task"]'
        )
    return list(data)


def _read_schema(lightly: Location, task: str) -> tuple[_TaskSchema, _Context]:
    """The schema of ``task``, which must be listed in tasks.json."""
    tasks = read_tasks(lightly)
    if task not in tasks:
        raise SchemaError(
            where(lightly, f"{_ROOT}/tasks.json"),
            "<root>",
            f"task {task!r} is not listed (listed: {', '.join(tasks) or 'none'}); "
            "only tasks listed in tasks.json are used: add it there",
        )
    schema_rel = f"{_ROOT}/{task}/schema.json"
    raw_schema = load_json(
        lightly,
        schema_rel,
        "every task listed in tasks.json needs one; write it there: "
        '{"task_type": ..., "categories": [{"id": 0, "name": ...}, ...]}',
    )
    schema = validate(_TaskSchema, raw_schema, where(lightly, schema_rel))
    ctx = _Context(schema.task_type, {c.id: j for j, c in enumerate(schema.categories)})
    return schema, ctx


def read_predictions(lightly: Location, filenames: Sequence[str], task: str) -> TaskPredictions:
    """Read one prediction task for ``filenames``.

    Args:
        lightly: The LIGHTLY location.
        filenames: The run's filenames, relative to the INPUT root.
        task: The task name; must be listed in ``tasks.json``.

    Returns:
        The task's arrays over ``filenames`` (see :class:`TaskPredictions`).

    Raises:
        SchemaError: naming the file and field of any mismatch, or a task not in tasks.json.
    """
    schema, ctx = _read_schema(lightly, task)
    ids = [c.id for c in schema.categories]
    names = [c.name for c in schema.categories]
    n, c = len(filenames), len(ids)
    dist = np.zeros((n, c), np.float32)
    counts = np.zeros((n, c), np.int32)
    scores = {s: np.zeros(n, np.float32) for s in SCORE_NAMES}
    has = np.zeros(n, bool)
    rels = [prediction_path(task, f) for f in filenames]
    for i, data in iter_json(lightly, rels, _CAT_CHUNK):
        parsed = validate(_PredictionFile, data, where(lightly, rels[i]), context=ctx)
        if not check_file_name(parsed.file_name, filenames[i], where(lightly, rels[i])):
            continue  # the predictions of another file with the same stem (a.jpg, a.png)
        _accumulate(parsed, ctx, i, dist, counts, scores)
        has[i] = True
    return TaskPredictions(
        task=task,
        task_type=schema.task_type,
        category_ids=np.asarray(ids, np.int64),
        category_names=names,
        class_distribution=dist,
        category_counts=counts,
        scores=scores,
        has_predictions=has,
    )


@dataclass(frozen=True)
class TaskObjects:
    """The boxes of one detection task over the run's images: one row per object.

    Attributes:
        image_index: (M,) index into the ``filenames`` read, per object.
        box_index: (M,) the object's position in its image's ``predictions`` list.
        n_boxes: (N,) boxes per image (0 without a prediction file).
        bboxes: M ``[x, y, w, h]`` in pixels, as in the files.
        files: N prediction files (relative to LIGHTLY), for messages.
        predictions: The task over the objects (each row one object's category, class
            distribution and scores), the form a SCORES or PREDICTIONS input reads.
    """

    image_index: NDArray[np.int64]
    box_index: NDArray[np.int64]
    n_boxes: NDArray[np.int64]
    bboxes: list[list[float]]
    files: list[str]
    predictions: TaskPredictions


#: Task types whose predictions carry a ``bbox`` per object.
BOX_TASK_TYPES = ("object-detection", "instance-segmentation", "keypoint-detection")


def read_objects(lightly: Location, filenames: Sequence[str], task: str) -> TaskObjects:
    """Read the objects (boxes) of ``task`` for ``filenames``: each prediction is an object.

    Each object's class distribution, category count and scores are computed as
    :func:`read_predictions` computes them for an image holding that one object.

    Raises:
        SchemaError: as :func:`read_predictions`; also for a task whose type has no boxes,
            or a keypoint prediction without ``bbox``.
    """
    schema, ctx = _read_schema(lightly, task)
    if schema.task_type not in BOX_TASK_TYPES:
        raise SchemaError(
            where(lightly, f"{_ROOT}/{task}/schema.json"),
            "task_type",
            f"is {schema.task_type!r}, which has no boxes; an object-level input (EMBEDDINGS "
            f"with task) needs one of {', '.join(BOX_TASK_TYPES)}",
        )
    rels = [prediction_path(task, f) for f in filenames]
    found: list[tuple[int, int, _Prediction]] = []
    n_boxes = np.zeros(len(filenames), np.int64)
    for i, data in iter_json(lightly, rels, _CAT_CHUNK):
        parsed = validate(_PredictionFile, data, where(lightly, rels[i]), context=ctx)
        if not check_file_name(parsed.file_name, filenames[i], where(lightly, rels[i])):
            continue
        for k, p in enumerate(parsed.predictions):
            if p.bbox is None:
                raise SchemaError(
                    where(lightly, rels[i]),
                    f"predictions[{k}].bbox",
                    "is missing; object level crops each prediction's [x, y, w, h] box",
                )
            found.append((i, k, p))
        n_boxes[i] = len(parsed.predictions)
    m, c = len(found), len(ctx.col)
    dist = np.zeros((m, c), np.float32)
    counts = np.zeros((m, c), np.int32)
    scores = {s: np.zeros(m, np.float32) for s in SCORE_NAMES}
    for row, (i, _, p) in enumerate(found):
        one = _PredictionFile.model_construct(file_name=filenames[i], predictions=[p])
        _accumulate(one, ctx, row, dist, counts, scores)
    return TaskObjects(
        image_index=np.asarray([i for i, _, _ in found], np.int64),
        box_index=np.asarray([k for _, k, _ in found], np.int64),
        n_boxes=n_boxes,
        bboxes=[list(p.bbox or []) for _, _, p in found],
        files=rels,
        predictions=TaskPredictions(
            task=task,
            task_type=schema.task_type,
            category_ids=np.asarray([cat.id for cat in schema.categories], np.int64),
            category_names=[cat.name for cat in schema.categories],
            class_distribution=dist,
            category_counts=counts,
            scores=scores,
            has_predictions=np.ones(m, bool),
        ),
    )


def _accumulate(
    parsed: _PredictionFile,
    ctx: _Context,
    i: int,
    dist: NDArray[np.float32],
    counts: NDArray[np.int32],
    scores: dict[str, NDArray[np.float32]],
) -> None:
    c = len(ctx.col)
    for p in parsed.predictions:
        if p.probabilities is not None:
            vec = np.asarray(p.probabilities, np.float64)
        else:
            vec = np.zeros(c)
            vec[ctx.col[p.category_id]] = 1.0
        counts[i, ctx.col[p.category_id]] += 1
        dist[i] += vec.astype(np.float32)
        if p.probabilities is None and ctx.task_type != "classification":
            # Only an objectness score: its uncertainty is that of [score, 1 - score].
            score = float(p.score or 0.0)
            unc = _uncertainties(np.asarray([score, 1.0 - score]))
        else:
            unc = _uncertainties(vec)
        for name, v in unc.items():
            scores[name][i] = max(scores[name][i], v)
    if ctx.task_type == "classification" and len(parsed.predictions) > 1:
        dist[i] /= len(parsed.predictions)


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
