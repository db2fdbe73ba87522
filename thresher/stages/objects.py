"""Stage ``objects``: the boxes of the kept images become the samples (object level).

An object-level run (``docs/objects.md``) is one whose selection config has an ``EMBEDDINGS``
input with a ``task`` (or ``worker_config.object_level.task_name``): a detection task in
``.lightly/predictions/<task>/`` or an auto task (``TILING``, ``CROP``) of
``selection_config.auto_tasks``. The image-level stages run as usual; this stage then lists
every box of every kept image as a crop named by :mod:`thresher.storage.crops`, and the later
stages embed, select and write those crops.

:func:`object_task` reads the configs (and refuses what an object-level run cannot honour);
:func:`check_boxes` is the up-front check of the prediction boxes against the images.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from thresher.caching import stage_dir, stage_key
from thresher.config import RunConfig
from thresher.config.selection import (
    CropTask,
    EmbeddingsInput,
    MetadataInput,
    PredictionsInput,
    ScoresInput,
    TilingTask,
)
from thresher.errors import ConfigError, InputError, SchemaError
from thresher.stages import _store
from thresher.stages.deduplicate import Deduplicated
from thresher.stages.list_input import Listing
from thresher.storage._json import where
from thresher.storage.crops import (
    Box,
    box_problem,
    crop_name,
    pad_box,
    relative_boxes,
    tiling_boxes,
)
from thresher.storage.location import Location
from thresher.storage.predictions import TaskPredictions, read_objects

log = logging.getLogger("thresher.stages")

FILE = "objects.json"


@dataclass(frozen=True)
class ObjectTask:
    """The object task of a run.

    Attributes:
        name: The task's name (a prediction task, or an auto task's ``name``).
        auto: The auto task that generates the boxes, or None for a prediction task.
        padding: ``worker_config.object_level.padding`` (prediction boxes only).
        upload: Whether the selected crops are written to ``.lightly/crops/<task>/``
            (``worker_config.crops.enable_upload`` and ``enable_upload_for_tasks``).
        source: The config key that names the task, for messages.
    """

    name: str
    auto: TilingTask | CropTask | None = None
    padding: float = 0.0
    upload: bool = True
    source: str = ""


def object_task(cfg: RunConfig) -> ObjectTask | None:
    """The run's object task, or None for an image-level run.

    Raises:
        ConfigError: naming the key, for what an object-level run cannot honour: two object
            tasks, an auto task no input uses, image-level embeddings beside object ones,
            SCORES or PREDICTIONS of another task (or of an auto task), METADATA,
            query embeddings, or ``worker_config.embeddings``.
    """
    sel, w = cfg.selection, cfg.worker
    entries = list(enumerate(sel.effective_strategies()))
    names: dict[str, str] = {}
    for i, e in entries:
        if isinstance(e.input, EmbeddingsInput) and e.input.task is not None:
            names.setdefault(e.input.task, f"selection_config.strategies[{i}].input.task")
    if w.object_level is not None and w.object_level.task_name:
        names.setdefault(w.object_level.task_name, "worker_config.object_level.task_name")
    autos = {t.name: t for t in sel.auto_tasks or []}
    for j, t in enumerate(sel.auto_tasks or []):
        if t.name not in names:
            raise ConfigError(
                f"selection_config.auto_tasks[{j}]: the {t.type} task '{t.name}' is used by no "
                f"input. An auto task is an object-level EMBEDDINGS input: add "
                f'{{"input": {{"type": "EMBEDDINGS", "task": "{t.name}"}}, ...}} to the '
                "strategies, or remove it."
            )
    if not names:
        return None
    if len(names) > 1:
        raise ConfigError(
            f"{', '.join(names.values())}: one object task per run is supported "
            f"(got {', '.join(repr(n) for n in names)}); run once per task."
        )
    task = next(iter(names))
    auto = autos.get(task)
    for i, e in entries:
        key = f"selection_config.strategies[{i}].input"
        inp = e.input
        if isinstance(inp, EmbeddingsInput):
            if inp.task is None:
                raise ConfigError(
                    f"{key}: an EMBEDDINGS input without task in an object-level run (task "
                    f'\'{task}\'): every embedding is of an object. Add "task": "{task}".'
                )
            if inp.tag_name is not None or inp.query_embeddings is not None:
                raise ConfigError(
                    f"{key}: query embeddings (tag_name, query_embeddings) are not supported "
                    "yet in an object-level run; remove them."
                )
        elif isinstance(inp, (ScoresInput, PredictionsInput)):
            if inp.task != task or auto is not None:
                why = (
                    f"'{task}' is an auto task, which has no predictions"
                    if auto is not None
                    else f"only the predictions of the object task '{task}' apply per object"
                )
                raise ConfigError(f"{key}.task: '{inp.task}' in an object-level run: {why}.")
        elif isinstance(inp, MetadataInput):
            raise ConfigError(
                f"{key}: METADATA is not supported yet in an object-level run (task '{task}'); "
                "remove the input."
            )
    for key, used in (
        ("worker_config.embedding_precision", w.embedding_precision != "fp32"),
        ("worker_config.use_datapool", w.use_datapool),
        ("worker_config.selected_sequence_length", w.selected_sequence_length > 1),
    ):
        if used:
            raise ConfigError(
                f"{key}: not supported yet in an object-level run (task '{task}'); leave it "
                "at its default."
            )
    if w.embeddings:
        raise ConfigError(
            "worker_config.embeddings: precomputed embeddings are not supported yet in an "
            f"object-level run (task '{task}'); remove the key to embed the crops."
        )
    padding = w.object_level.padding if w.object_level is not None else 0.0
    if padding < 0:
        raise ConfigError(
            f"worker_config.object_level.padding: must be >= 0 (a fraction of the box's width "
            f"and height), got {padding}"
        )
    upload = w.crops.enable_upload and (
        not w.crops.enable_upload_for_tasks or task in w.crops.enable_upload_for_tasks
    )
    return ObjectTask(task, auto, padding, upload, names[task])


@dataclass(frozen=True)
class Objects:
    """The crops of the kept images: the samples of an object-level run.

    Attributes:
        task: The object task's name.
        n_images: Kept images (the images the boxes were taken from).
        n_kept: Crops (objects); the later stages embed and select these.
        upload: Whether selected crops are written to ``.lightly/crops/<task>/``.
    """

    key: str
    lightly_url: str
    task: str
    n_images: int
    n_kept: int
    upload: bool
    cached: str = ""

    def _doc(self) -> dict[str, Any]:
        lightly = _store.lightly_location(self.lightly_url)
        doc: dict[str, Any] = _store.read_json(lightly, f"{stage_dir(self.key)}/{FILE}")
        return doc

    def kept(self) -> list[str]:
        """The crop names, image by image, box by box."""
        return [c[0] for c in self._doc()["crops"]]

    def crops(self) -> dict[str, tuple[str, Box]]:
        """Crop name -> ``(image name, box)``."""
        return {c[0]: (c[1], (c[2][0], c[2][1], c[2][2], c[2][3])) for c in self._doc()["crops"]}

    def images(self) -> list[str]:
        """The kept images the crops were taken from, in listing order."""
        images: list[str] = self._doc()["images"]
        return images

    def predictions(self) -> TaskPredictions | None:
        """The task's predictions per crop (rows in :meth:`kept` order); None for auto tasks."""
        doc = self._doc()
        if doc["auto"]:
            return None
        lightly = _store.lightly_location(self.lightly_url)
        return read_objects(lightly, doc["images"], self.task).predictions

    def images_of(self, names: Sequence[str]) -> list[str]:
        """The images holding the crops ``names``, each once, in the order of ``names``."""
        crops = self.crops()
        return list(dict.fromkeys(crops[n][0] for n in names))

    def sizes(self, chosen: Sequence[str]) -> dict[str, Any]:
        """The object-level counts when the crops ``chosen`` are selected (``objectLevelSizes``).

        ``nImages`` kept images, ``nImagesWithObjects`` of them with a box, ``nObjects`` boxes
        (crops), ``nSelectedObjects`` selected, from ``nImagesWithSelectedObjects`` images;
        ``cropsWritten``: whether the selected crops are in ``.lightly/crops/<task>/``.
        """
        crops = self._doc()["crops"]
        return {
            "task": self.task,
            "nImages": self.n_images,
            "nImagesWithObjects": len({c[1] for c in crops}),
            "nObjects": len(crops),
            "nSelectedObjects": len(chosen),
            "nImagesWithSelectedObjects": len(self.images_of(chosen)),
            "cropsWritten": self.upload,
        }

    def selection_inputs(self, embeddings: np.ndarray, filenames: list[str]) -> dict[str, Any]:
        """The keyword arguments of ``selection.select`` over the crops.

        The object task's SCORES and PREDICTIONS apply per object (each crop's row is its
        box's prediction); an object-level run has no other inputs (:func:`object_task`).
        """
        preds = self.predictions()
        tasks: dict[str, TaskPredictions] = {}
        if preds is not None:  # its rows are all crops; the embedded rows may lack broken ones
            pos = {n: i for i, n in enumerate(self.kept())}
            rows = np.asarray([pos[n] for n in filenames], np.int64)
            tasks[self.task] = replace(
                preds,
                class_distribution=preds.class_distribution[rows],
                category_counts=preds.category_counts[rows],
                scores={k: v[rows] for k, v in preds.scores.items()},
                has_predictions=preds.has_predictions[rows],
            )
        return {
            "embeddings": embeddings,
            "filenames": filenames,
            "scores": {t: dict(p.scores) for t, p in tasks.items()},
            "predictions": tasks,
            "metadata": {},
            "queries": {},
        }


def image_size(location: Location, name: str) -> tuple[int, int] | None:
    """``(width, height)`` of an image as it is embedded (upright), or None if it does not open.

    Only the header is parsed; an EXIF orientation that turns the image swaps the two.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(location.read_bytes(name))) as img:
            width, height = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):
                width, height = height, width
            return width, height
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _sizes(location: Location, names: Sequence[str], threads: int) -> list[tuple[int, int] | None]:
    with ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(lambda n: image_size(location, n), names))


def _boxes(
    lightly: Location,
    location: Location,
    images: Sequence[str],
    task: ObjectTask,
    threads: int,
) -> list[tuple[str, str, Box]]:
    """``(crop name, image, box)`` of every box of ``images``.

    Raises:
        SchemaError: a predicted box cannot be cropped (no area, outside its image), naming
            the prediction file and the box.
    """
    out: list[tuple[str, str, Box]] = []
    if task.auto is not None:
        for image, size in zip(images, _sizes(location, images, threads), strict=True):
            if size is None:  # the corruption check keeps only images that decode
                raise InputError(f"{location.child(image).display} no longer opens as an image")
            a = task.auto
            boxes = (
                tiling_boxes(a.num_rows, a.num_cols, a.overlap, size)
                if isinstance(a, TilingTask)
                else relative_boxes(a.bboxs, size)
            )
            out += [
                (crop_name(image, task.name, k, len(boxes)), image, b) for k, b in enumerate(boxes)
            ]
        return out
    return _predicted(lightly, location, images, task, threads, skip_unreadable=False)


def _predicted(
    lightly: Location,
    location: Location,
    images: Sequence[str],
    task: ObjectTask,
    threads: int,
    *,
    skip_unreadable: bool,
) -> list[tuple[str, str, Box]]:
    """``(crop name, image, padded box)`` of every predicted box of ``images``.

    Raises:
        SchemaError: a box cannot be cropped from its image (naming the file and the box).
        InputError: an image holding boxes does not open (unless ``skip_unreadable``).
    """
    objs = read_objects(lightly, images, task.name)
    holding = sorted({int(i) for i in objs.image_index})
    sizes = dict(zip(holding, _sizes(location, [images[i] for i in holding], threads), strict=True))
    out: list[tuple[str, str, Box]] = []
    for row, (i, k) in enumerate(zip(objs.image_index, objs.box_index, strict=True)):
        size = sizes[int(i)]
        if size is None:
            if skip_unreadable:  # the corruption check reports it
                continue
            raise InputError(f"{location.child(images[i]).display} no longer opens as an image")
        bbox = objs.bboxes[row]
        problem = box_problem(bbox, size)
        if problem:
            raise SchemaError(
                where(lightly, objs.files[i]),
                f"predictions[{k}].bbox",
                f"{problem} ({images[i]}); correct the box, or remove the prediction",
            )
        name = crop_name(images[i], task.name, int(k), int(objs.n_boxes[i]))
        out.append((name, images[i], pad_box(bbox, task.padding, size)))
    return out


def check_boxes(
    task: ObjectTask, input_url: str, lightly_url: str, names: Sequence[str], listed: Sequence[str]
) -> None:
    """Check the predictions of ``task`` for ``names`` and every box against its image.

    Writes nothing. Images that do not open are skipped (the corruption check reports them).

    Raises:
        ConfigError: the task is not listed in ``tasks.json`` (naming the config key).
        SchemaError: naming the prediction file and field: a file that does not fit the
            format or belongs to no image, a task without boxes, a box that cannot be cropped.
    """
    if task.auto is not None:
        return
    from thresher.storage._json import unmatched_files
    from thresher.storage.predictions import read_tasks

    lightly = _store.lightly_location(lightly_url)
    tasks = read_tasks(lightly)
    folder = f".lightly/predictions/{task.name}"
    if task.name not in tasks:
        raise ConfigError(
            f"{task.source}: task '{task.name}' is not listed in "
            f"{where(lightly, '.lightly/predictions/tasks.json')} (listed: "
            f"{', '.join(tasks) or 'none'}). Add it there, with its predictions in {folder}/ "
            "(or name an auto task of selection_config.auto_tasks), or correct the name."
        )
    orphans = unmatched_files(lightly, folder, listed)
    if orphans:
        raise SchemaError(
            where(lightly, f"{folder}/{orphans[0]}"),
            "<file>",
            f"no image in INPUT has this path ({len(orphans)} such file(s) in {folder}/). The "
            f"predictions of INPUT/a/b.jpg must be {folder}/a/b.json: rename or remove these",
        )
    _predicted(lightly, Location(input_url), names, task, 8, skip_unreadable=True)


def objects(
    listing: Listing,
    deduplicated: Deduplicated,
    task: ObjectTask,
    *,
    num_threads: int = -1,
) -> Objects:
    """List the crops of the kept images: every box of ``task`` (predicted, or generated).

    Args:
        listing: The listing (INPUT and LIGHTLY locations).
        deduplicated: The kept images.
        task: The object task (:func:`object_task`).
        num_threads: Threads that read image headers (``-1``: 8).

    Raises:
        SchemaError: a predictions file does not fit (naming the file and field), or a box
            cannot be cropped from its image.
        InputError: none of the kept images has a box.
    """
    lightly = _store.lightly_location(listing.lightly_url)
    fingerprint: object = None
    if task.auto is None:
        rel = f".lightly/predictions/{task.name}"
        found = lightly.child(rel).list_files(skip_dirs=()) if lightly.exists(rel) else []
        fingerprint = [(f.name, f.size, f.token) for f in found]
    key = stage_key(
        "objects",
        deduplicated.key,
        task.name,
        task.auto.model_dump(mode="json") if task.auto is not None else None,
        task.padding,
        fingerprint,
    )
    m = _store.cached(lightly, key)
    if m is not None:
        return Objects(
            key, listing.lightly_url, task.name, m["n_images"], m["n_kept"], task.upload, "cached"
        )
    images = deduplicated.kept()
    threads = 8 if num_threads is None or num_threads < 1 else num_threads
    crops = _boxes(lightly, Location(listing.input_url), images, task, threads)
    if not crops:
        raise InputError(
            f"Object level (task '{task.name}'): none of the {len(images)} kept images has a "
            f"box in {lightly.child(f'.lightly/predictions/{task.name}').display}. Add the "
            "predictions (one JSON per image, Lightly's format), or check the task name."
        )
    doc = {
        "task": task.name,
        "auto": task.auto is not None,
        "images": images,
        "crops": [[n, img, list(box)] for n, img, box in crops],
    }
    _store.write_json(lightly, f"{stage_dir(key)}/{FILE}", doc)
    summary = {"n_images": len(images), "n_kept": len(crops)}
    _store.finish(lightly, key, summary, [FILE])
    n_holding = len(np.unique([img for _, img, _ in crops]))
    log.info(
        "objects: %d boxes of task %s in %d of %d kept images",
        len(crops),
        task.name,
        n_holding,
        len(images),
    )
    return Objects(key, listing.lightly_url, task.name, len(images), len(crops), task.upload)
