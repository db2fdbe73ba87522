"""Stage ``report``: report.json, report.pdf and plots/ in the run folder, written atomically."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from thresher.config import RunConfig
from thresher.stages import _store
from thresher.stages.corruption_check import CorruptionChecked
from thresher.stages.deduplicate import Deduplicated
from thresher.stages.embed import Embedded
from thresher.stages.list_input import Listing
from thresher.stages.near_duplicates import NearDuplicates
from thresher.stages.objects import Objects
from thresher.stages.select import Selected
from thresher.stages.write_results import corrupt_files, run_dir, sizes, video_sizes
from thresher.storage.crops import CropReader
from thresher.storage.location import Location
from thresher.storage.pixels import readable
from thresher.storage.video import FrameReader
from thresher.tempdirs import TempDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """Facts about a run that no stage computes: when, where and how it ran.

    Attributes:
        run_id: The run's id (its folder name under ``.lightly/runs/``).
        started_at: When the command (or flow run) started, timezone-aware.
        stage_seconds: Seconds per step in run order: ``startup`` (Prefect's start-up before
            the flow body ran) first, then each stage by its name in the stage table.
        versions: Package and model versions, e.g. ``{"thresher": "0.1.0"}``.
        config: The effective configs as run, JSON-safe; ``lightly_config.model.name`` is the
            model that actually embedded.
        model_description: The model that embedded and why, e.g. ``"efficientnet-lite0
            (ImageNet-pretrained; the default when no checkpoint or training is set)"``.
        device: What computed, e.g. ``"CPU: Intel Xeon Platinum 8481C (2 cores)"``.
        command_line: How the run was started, e.g. ``"thresher run imgs --n-samples 10"``.
        notes: Sentences the user must see on page 1 (e.g. fewer usable images than asked).
    """

    run_id: str
    started_at: datetime
    stage_seconds: dict[str, float]
    versions: dict[str, str]
    config: dict[str, object]
    model_description: str = ""
    device: str = ""
    command_line: str = ""
    notes: list[str] = field(default_factory=list)


def report(
    info: RunInfo,
    *,
    cfg: RunConfig,
    listing: Listing,
    checked: CorruptionChecked,
    deduplicated: Deduplicated,
    embedded: Embedded,
    selected: Selected,
    objects: Objects | None = None,
    near: NearDuplicates | None = None,
) -> list[str]:
    """Build report.json, report.pdf and plots/ and copy them into the run folder atomically.

    With ``objects`` (object level) the examples are crops and ``objectLevelSizes`` is added.
    ``near`` (the near-duplicate groups) and the corruption check's quality scores are
    summarised in ``datasetAnalysis`` (``thresher.reports.findings``).

    Returns:
        The written paths, relative to the LIGHTLY root.
    """
    from PIL import Image

    from thresher.reports import ReportInputs, build_report

    lightly = _store.lightly_location(listing.lightly_url)
    inp = Location(listing.input_url)

    videos = listing.dataset_type == "videos"
    frames = FrameReader(inp) if videos else None
    crops = CropReader(inp, objects.crops()) if objects is not None else None

    def load_image(name: str) -> Image.Image:
        if frames is not None:  # a video run: the names are frames
            return frames.read_frame(name)
        if crops is not None and name in crops.crops:  # object level: a crop (or an image)
            return crops.read_crop(name)
        return readable(Image.open(io.BytesIO(inp.read_bytes(name))))  # as it was embedded

    s = sizes(listing, checked, deduplicated, embedded, selected, objects)
    inputs = ReportInputs(
        run_id=info.run_id,
        started_at=info.started_at,
        ended_at=datetime.now(info.started_at.tzinfo),
        stage_seconds=info.stage_seconds,
        versions=info.versions,
        config=info.config,
        input_url=inp.display,
        sizes=s.as_dict(),
        filenames=embedded.filenames(),
        embeddings=embedded.embeddings(),
        selected=selected.indices(),
        corrupt=corrupt_files(checked, embedded, objects),
        duplicates=deduplicated.duplicates(),
        load_image=load_image,
        distributions=selected.distributions(),
        seed=cfg.lightly.seed,
        n_example_images=cfg.worker.n_example_images,
        labeling_usd_per_image={str(t): v for t, v in cfg.worker.labeling_usd_per_image.items()},
        labeling_seconds_per_image={
            str(t): v for t, v in cfg.worker.labeling_seconds_per_image.items()
        },
        umap_neighbors=tuple(cfg.worker.report_umap_neighbors),
        memory_requirement_in_GB=cfg.worker.memory_requirement_in_GB,
        strategies=[
            e.model_dump(mode="json", exclude_none=True)
            for e in cfg.selection.effective_strategies()
        ],
        device=info.device,
        command_line=info.command_line,
        notes=list(info.notes),
        model_description=info.model_description,
    )
    inputs.near_duplicates = near.document() if near is not None else None
    inputs.quality = (checked.quality() or None) if not videos else None
    if objects is not None:
        names = inputs.filenames
        inputs.object_sizes = objects.sizes([names[int(i)] for i in inputs.selected])
    inputs.class_labels = _class_labels(lightly, inputs.filenames)
    written = []
    with TempDir("report") as tmp:
        if frames is not None:
            inputs.video_sizes, inputs.video_timeline = _video_parts(cfg, listing, checked, inputs)
        with _threads_beside_umap():
            build_report(inputs, Path(tmp))
        if frames is not None:
            frames.close()
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_file():
                rel = f"{run_dir(info.run_id)}/{path.relative_to(tmp).as_posix()}"
                lightly.put_file(str(path), rel)
                written.append(rel)
    return written


@contextlib.contextmanager
def _threads_beside_umap() -> Iterator[None]:
    """Numpy's BLAS (and OpenMP) threads limited to the cores the UMAP worker leaves free.

    The report's linear algebra (PCA, k-means, distances) ran with one BLAS thread per core
    while the UMAP worker process (``thresher.reports.umap_2d``) kept one core busy: OpenBLAS's
    threads then wait for each other spinning, and on 2 cores the selection-vs-random measures
    took 3 to 4 times as long (6.7 s instead of 2.3 s at 10,000 rows; the PCA of the UMAP
    sample 3.3 s instead of 0.4 s). Values agree to float rounding (1e-6 relative).
    """
    from thresher.cores import cpu_count

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # umap-learn (scikit-learn) brings it; without it, as before
        yield
        return
    with threadpool_limits(limits=max(1, cpu_count() - 1)):
        yield


def _video_parts(
    cfg: RunConfig, listing: Listing, checked: CorruptionChecked, inputs: Any
) -> tuple[dict[str, int], list[Any] | None]:
    """A video run's video-level counts and (``show_video_sampling_timeline``) timeline rows."""
    from thresher.reports.video_timeline import timeline_rows

    chosen = [inputs.filenames[int(i)] for i in inputs.selected]
    counts = video_sizes(listing, checked, chosen) or {}
    rows = (
        timeline_rows(checked.videos(), chosen, inputs.corrupt)
        if cfg.worker.show_video_sampling_timeline
        else None
    )
    return counts, rows


def _class_labels(lightly: Location, filenames: list[str]) -> dict[str, Any]:
    """Predicted classes of each classification / detection task in ``.lightly/predictions``.

    For the class measures of the report's selection-vs-random comparison. A task without a
    prediction for any of the run's files is left out; so is one whose files do not read (the
    selection did not use it, or it would have failed there), with a log line.
    """
    from thresher.errors import SchemaError, StorageError
    from thresher.reports.vs_random import CLASS_TASK_TYPES, ClassLabels
    from thresher.storage.predictions import read_predictions, read_tasks

    out: dict[str, Any] = {}
    try:
        tasks = read_tasks(lightly)
    except (SchemaError, StorageError) as e:
        log.info("report: no class measures, the prediction tasks do not read: %s", e)
        return out
    for task in tasks:
        try:
            p = read_predictions(lightly, filenames, task)
        except (SchemaError, StorageError) as e:
            log.info("report: no class measures for task %s: %s", task, e)
            continue
        if p.task_type in CLASS_TASK_TYPES and p.has_predictions.any():
            out[task] = ClassLabels(task, list(p.category_names), p.category_counts)
    return out
