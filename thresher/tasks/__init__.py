"""One Prefect task per stage: thin typed wrappers over ``thresher.stages``.

Each task has the stage's name, takes keyword arguments only and returns the stage's small
summary (keys, counts, URLs; never arrays) inside a Prefect state: ``Cached`` when the stage
reused its stored output (see ``thresher.caching``), ``Completed`` otherwise.
"""

from __future__ import annotations

from typing import Any

import thresher.prefect_defaults  # noqa: F401  (before Prefect: its settings' defaults)

# isort: split
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from thresher.config import LightlyConfig, RunConfig, SelectionConfig, WorkerConfig
from thresher.stages import corruption_check as _corruption_check
from thresher.stages import deduplicate as _deduplicate
from thresher.stages import embed as _embed
from thresher.stages import list_input as _list_input
from thresher.stages import near_duplicates as _near_duplicates
from thresher.stages import objects as _objects
from thresher.stages import report as _report
from thresher.stages import select as _select
from thresher.stages import train as _train
from thresher.stages import write_results as _write_results
from thresher.tasks._cache import stage_state
from thresher.tasks._progress import task_progress
from thresher.tasks._shards import shard_runner

#: Tasks that are not stages (no run state, no row in the report's timing table): the flow
#: runs them beside a stage.
SIDE_TASKS = ("embedding_files", "thumbnails")

__all__ = [
    "corruption_check",
    "deduplicate",
    "embed",
    "embedding_files",
    "list_input",
    "near_duplicates",
    "objects",
    "report",
    "select",
    "thumbnails",
    "train",
    "write_results",
]


@task(name="list_input", cache_policy=NO_CACHE)
def list_input(
    *,
    input_url: str,
    lightly_url: str,
    relevant_filenames_file: str,
    dataset_type: _list_input.DatasetType = "images",
    use_frame_count_metadata: bool = False,
    num_threads: int = -1,
) -> State[Any]:
    """Stage ``list_input``."""
    return stage_state(
        _list_input.list_input(
            input_url,
            lightly_url,
            relevant_filenames_file,
            dataset_type=dataset_type,
            use_frame_count_metadata=use_frame_count_metadata,
            num_threads=num_threads,
        )
    )


@task(name="corruption_check", cache_policy=NO_CACHE)
def corruption_check(
    *,
    listing: _list_input.Listing,
    enabled: bool,
    num_threads: int,
    corruption_threshold: float = 0.1,
) -> State[Any]:
    """Stage ``corruption_check``."""
    return stage_state(
        _corruption_check.corruption_check(
            listing,
            enabled=enabled,
            num_threads=num_threads,
            progress=task_progress,
            corruption_threshold=corruption_threshold,
        )
    )


@task(name="deduplicate", cache_policy=NO_CACHE)
def deduplicate(*, checked: _corruption_check.CorruptionChecked, enabled: bool) -> State[Any]:
    """Stage ``deduplicate``."""
    return stage_state(_deduplicate.deduplicate(checked, enabled=enabled))


@task(name="train", cache_policy=NO_CACHE)
def train(
    *,
    listing: _list_input.Listing,
    deduplicated: _deduplicate.Deduplicated,
    lightly_cfg: LightlyConfig,
    init: _train.ModelCheckpoint | None,
) -> State[Any]:
    """Stage ``train``."""
    return stage_state(
        _train.train(listing, deduplicated, lightly_cfg, init=init, progress=task_progress)
    )


@task(name="objects", cache_policy=NO_CACHE)
def objects(
    *,
    listing: _list_input.Listing,
    deduplicated: _deduplicate.Deduplicated,
    spec: _objects.ObjectTask,
    num_threads: int = -1,
) -> State[Any]:
    """Stage ``objects``."""
    return stage_state(_objects.objects(listing, deduplicated, spec, num_threads=num_threads))


@task(name="embed", cache_policy=NO_CACHE)
def embed(
    *,
    listing: _list_input.Listing,
    deduplicated: _deduplicate.Deduplicated,
    worker: WorkerConfig,
    lightly_cfg: LightlyConfig,
    checkpoint: _train.ModelCheckpoint | None,
    cluster: str | None = None,
) -> State[Any]:
    """Stage ``embed``: its shards run here, or on the Dask cluster at ``cluster``."""
    return stage_state(
        _embed.embed(
            listing,
            deduplicated,
            worker,
            lightly_cfg,
            checkpoint=checkpoint,
            progress=task_progress,
            run_shards=shard_runner(cluster),
            shard_rows=_embed.CLUSTER_SHARD_ROWS if cluster else None,
        )
    )


@task(name="near_duplicates", cache_policy=NO_CACHE)
def near_duplicates(
    *,
    embedded: _embed.Embedded,
    deduplicated: _deduplicate.Deduplicated,
    threshold: float,
    remove: bool,
) -> State[Any]:
    """Stage ``near_duplicates``."""
    return stage_state(
        _near_duplicates.near_duplicates(embedded, deduplicated, threshold=threshold, remove=remove)
    )


@task(name="select", cache_policy=NO_CACHE)
def select(
    *,
    listing: _list_input.Listing,
    embedded: _embed.Embedded,
    selection: SelectionConfig,
    seed: int,
    sequence_length: int = 1,
    objects: _objects.Objects | None = None,
    checked: _corruption_check.CorruptionChecked | None = None,
    near: _near_duplicates.NearDuplicates | None = None,
) -> State[Any]:
    """Stage ``select``."""
    return stage_state(
        _select.select(
            listing,
            embedded,
            selection,
            seed=seed,
            progress=task_progress,
            sequence_length=sequence_length,
            objects=objects,
            checked=checked,
            near=near,
        )
    )


@task(name="report", cache_policy=NO_CACHE)
def report(
    *,
    info: _report.RunInfo,
    cfg: RunConfig,
    listing: _list_input.Listing,
    checked: _corruption_check.CorruptionChecked,
    deduplicated: _deduplicate.Deduplicated,
    embedded: _embed.Embedded,
    selected: _select.Selected,
    objects: _objects.Objects | None = None,
    near: _near_duplicates.NearDuplicates | None = None,
) -> State[Any]:
    """Stage ``report``."""
    return stage_state(
        _report.report(
            info,
            cfg=cfg,
            listing=listing,
            checked=checked,
            deduplicated=deduplicated,
            embedded=embedded,
            selected=selected,
            objects=objects,
            near=near,
        )
    )


@task(name="embedding_files", cache_policy=NO_CACHE)
def embedding_files(
    *, listing: _list_input.Listing, run_id: str, embedded: _embed.Embedded | None
) -> None:
    """The run's embeddings files (not a stage: the flow runs it beside the report)."""
    _write_results.embedding_files(listing, run_id, embedded)


@task(name="thumbnails", cache_policy=NO_CACHE)
def thumbnails(
    *,
    listing: _list_input.Listing,
    embedded: _embed.Embedded | None,
    selected: _select.Selected | None,
    objects: _objects.Objects | None = None,
) -> int:
    """The selected images' thumbnails (not a stage: the flow runs it beside the report)."""
    return _write_results.thumbnails(listing, embedded, selected, objects)


@task(name="write_results", cache_policy=NO_CACHE)
def write_results(
    *,
    run_id: str,
    config: dict[str, Any],
    listing: _list_input.Listing,
    checked: _corruption_check.CorruptionChecked,
    deduplicated: _deduplicate.Deduplicated,
    embedded: _embed.Embedded | None,
    selected: _select.Selected | None,
    trained: _train.Trained | None,
    objects: _objects.Objects | None = None,
    near: _near_duplicates.NearDuplicates | None = None,
) -> State[Any]:
    """Stage ``write_results``."""
    return stage_state(
        _write_results.write_results(
            run_id,
            config=config,
            listing=listing,
            checked=checked,
            deduplicated=deduplicated,
            embedded=embedded,
            selected=selected,
            trained=trained,
            objects=objects,
            near=near,
        )
    )
