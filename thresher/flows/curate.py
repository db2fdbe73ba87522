"""The ``curate`` flow: list → corruption check → deduplicate → (train) → embed → select → report.

The body reads as the pipeline. Each stage is a task over plain library code
(``thresher.stages``); tasks hand each other small summaries with content keys, never arrays.
Stages decide themselves whether their stored output can be reused (``thresher.caching``).
"""

from __future__ import annotations

import logging
import os
import platform
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture

import thresher
from thresher import tasks
from thresher.cluster import check_scheduler
from thresher.config import LightlyConfig, RunConfig, SelectionConfig, WorkerConfig, load_configs
from thresher.errors import ConfigError, InputError
from thresher.malloc import keep_freed_memory
from thresher.reports import umap_2d
from thresher.runlog import RunLog
from thresher.stages import _store, datapool
from thresher.stages._user_files import check_user_files
from thresher.stages.deduplicate import Deduplicated
from thresher.stages.embed import Embedded
from thresher.stages.list_input import default_lightly_url, preflight, refuse_for_videos
from thresher.stages.near_duplicates import refuse_near_duplicate_removal
from thresher.stages.objects import object_task
from thresher.stages.report import RunInfo
from thresher.stages.select import Selected
from thresher.stages.train import resolve_checkpoint
from thresher.stages.write_results import RunOutputs, run_dir
from thresher.storage.location import Location
from thresher.tempdirs import sweep as sweep_temp_folders

log = logging.getLogger("thresher.flow")

#: Set by the ``thresher`` command before Prefect starts: when the command started (Unix time),
#: so the report's timing counts Prefect's start-up, and the command line for page 1.
STARTED_AT_ENV = "THRESHER_STARTED_AT"
COMMAND_LINE_ENV = "THRESHER_COMMAND_LINE"


def new_run_id() -> str:
    """A new run id: UTC time plus a random suffix, e.g. ``20261127-174959-cac875``."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def _versions(model: str) -> dict[str, str]:
    import importlib.metadata

    import numpy
    import prefect

    return {
        "thresher": thresher.__version__,
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        # The installed version, read without importing PyTorch (a default run never does).
        "torch": importlib.metadata.version("torch"),
        "numpy": numpy.__version__,
        "model": model,
    }


def _started_at(now: float) -> float:
    """When the command started, if the ``thresher`` command says so; else ``now``."""
    try:
        started = float(os.environ.get(STARTED_AT_ENV, ""))
    except ValueError:
        return now
    return started if 0 <= now - started < 3600 else now


class _Run:
    """Runs the stages of one run: log lines, timings and what came from the cache."""

    def __init__(self, runlog: RunLog, startup_seconds: float) -> None:
        self.runlog = runlog
        self.seconds: dict[str, float] = {"startup": round(startup_seconds, 3)}
        self.cached: dict[str, str] = {}

    def stage(self, task: Any, **kwargs: Any) -> Any:
        """Run ``task`` (a stage's task) with keyword arguments and return its summary."""
        name: str = task.name
        self.runlog.stage(name)
        t0 = time.perf_counter()
        summary = task(**kwargs, return_state=True).result()
        self.seconds[name] = round(time.perf_counter() - t0, 3)
        cached = getattr(summary, "cached", "")
        if cached:
            self.cached[name] = cached
            log.info("stage %s: %s", name, cached)
        return summary


@flow(name="curate", validate_parameters=False, log_prints=True)
def curate(
    input: str,
    lightly: str | None = None,
    worker_config: WorkerConfig | None = None,
    selection_config: SelectionConfig | None = None,
    lightly_config: LightlyConfig | None = None,
    dataset_type: Literal["images", "videos"] = "images",
    run_id: str | None = None,
    cluster: str | None = None,
) -> RunOutputs:
    """Curate the images at ``input``: remove corrupt files and duplicates, embed, select, report.

    Args:
        input: INPUT location (local path or fsspec URL). Read-only: never written.
        lightly: LIGHTLY location for outputs and user inputs (predictions, metadata, tags).
            Default: a folder beside the input, ``<input>-lightly``.
        worker_config: The Lightly ``worker_config`` (dict or model).
        selection_config: The ``selection_config``; ``n_samples`` or ``proportion_samples``.
        lightly_config: The ``lightly_config`` (training and embedding settings).
        dataset_type: ``images``, or ``videos``: every frame of every video is a sample,
            named ``<video>-<frame>-<ext>.png`` as Lightly names them (``docs/videos.md``).
        run_id: Name of the run folder; default: a timestamp plus a random suffix.
        cluster: A Dask scheduler address (``tcp://scheduler:8786``): the embed stage runs in
            shards on that cluster's workers (``docs/cluster.md``). Default: in this process.

    Returns:
        RunOutputs: run id, counts per stage, output paths, notes and what came from the cache.

    Raises:
        ConfigError: A config is invalid (before anything runs or is written).
        InputError: INPUT is missing or empty, or nothing is left after the corruption check
            and deduplication (the run's findings are written first).
    """
    now = time.time()
    keep_freed_memory()  # for this process's many short-lived arrays (thresher.malloc)
    cfg: RunConfig = load_configs(worker_config, selection_config, lightly_config)
    if dataset_type not in ("images", "videos"):
        raise ConfigError(f"dataset_type must be 'images' or 'videos', got {dataset_type!r}")
    if dataset_type == "videos":
        refuse_for_videos(cfg.worker, cfg.selection)
    object_level = object_task(cfg)  # the boxes of a task are the samples (docs/objects.md)
    if object_level is not None and dataset_type == "videos":
        raise ConfigError(
            f"object level (task '{object_level.name}') is not supported yet with videos: run "
            "it on images (extracted frames), or remove the EMBEDDINGS input's task"
        )
    if object_level is not None and cfg.worker.selected_sequence_length > 1:
        raise ConfigError(
            "worker_config.selected_sequence_length > 1 selects sequences of images or video "
            f"frames, not of objects (task '{object_level.name}'): set it to 1 for an "
            "object-level run, or remove the EMBEDDINGS input's task"
        )
    refuse_near_duplicate_removal(cfg.worker, object_level is not None)
    lightly_url = lightly or default_lightly_url(input)
    preflight(input, lightly_url, dataset_type)  # before anything is written
    if cluster:
        check_scheduler(cluster)  # an unreachable scheduler fails in seconds, nothing written
    # The user's files (predictions, metadata, tags, CSVs, a checkpoint) are read before the
    # first write too: a bad one fails in seconds and leaves nothing behind. A video run's
    # names are frames, known only after decoding: its files are checked by the stages.
    if dataset_type == "images":
        check_user_files(cfg, input, lightly_url)
    w = cfg.worker
    init = resolve_checkpoint(w, lightly_url)
    run_id = run_id or cfg.worker.run_directory or new_run_id()
    started = _started_at(now)
    lightly_loc = _store.lightly_location(lightly_url)
    lightly_loc.makedirs()
    sweep_temp_folders()  # the log buffers and report pages of runs that were killed
    with RunLog() as runlog:
        try:
            log.info("run %s: %s -> %s", run_id, Location(input).display, lightly_loc.display)
            run = _Run(runlog, now - started)
            listing = run.stage(
                tasks.list_input,
                input_url=input,
                lightly_url=lightly_url,
                relevant_filenames_file=w.relevant_filenames_file,
                dataset_type=dataset_type,
                use_frame_count_metadata=w.datasource.use_frame_count_metadata,
                num_threads=w.num_threads,
            )
            listing = datapool.restrict(listing, w)  # use_datapool: only the new files go on
            checked = run.stage(
                tasks.corruption_check,
                listing=listing,
                enabled=w.enable_corruptness_check,
                num_threads=w.num_threads,
                corruption_threshold=w.corruptness_check.corruption_threshold,
            )
            deduplicated = run.stage(
                tasks.deduplicate, checked=checked, enabled=w.remove_exact_duplicates
            )
            found = dict(listing=listing, checked=checked, deduplicated=deduplicated)
            if deduplicated.n_kept == 0:
                _nothing_left(run, run_id, cfg, **found)
            trained = None
            if w.enable_training:
                trained = run.stage(
                    tasks.train,
                    listing=listing,
                    deduplicated=deduplicated,
                    lightly_cfg=cfg.lightly,
                    init=init,
                )
            objects = None
            if object_level is not None:
                objects = run.stage(
                    tasks.objects,
                    listing=listing,
                    deduplicated=deduplicated,
                    spec=object_level,
                    num_threads=w.num_threads,
                )
            embedded = run.stage(
                tasks.embed,
                listing=listing,
                deduplicated=objects or deduplicated,
                worker=w,
                lightly_cfg=cfg.lightly,
                checkpoint=trained.checkpoint if trained else init,
                cluster=cluster,
            )
            # The report's UMAP worker imports umap-learn now, beside the next stages (started
            # already when the run is thresher run's).
            umap_2d.prestart(w.report_umap_neighbors)
            if objects is None:  # near duplicates in embedding space (docs/selection.md)
                near = run.stage(
                    tasks.near_duplicates,
                    embedded=embedded,
                    deduplicated=deduplicated,
                    threshold=w.near_duplicate_threshold,
                    remove=w.remove_near_duplicates,
                )
                embedded, deduplicated = near.embedded, near.deduplicated
                found.update(deduplicated=deduplicated, near=near)
            selected = run.stage(
                tasks.select,
                listing=listing,
                embedded=embedded,
                selection=cfg.selection,
                seed=cfg.lightly.seed,
                sequence_length=w.selected_sequence_length,
                objects=objects,
                checked=checked,
                near=found.get("near"),
            )
            notes = _notes(deduplicated, selected)
            config = _config_doc(cfg, embedded, notes)
            info = RunInfo(
                run_id=run_id,
                started_at=datetime.fromtimestamp(started, UTC),
                stage_seconds=run.seconds,
                versions=config["versions"],
                config={
                    k: config[k] for k in ("worker_config", "selection_config", "lightly_config")
                },
                model_description=embedded.description,
                device=_device(),
                command_line=os.environ.get(COMMAND_LINE_ENV, "") or f"curate(input={input!r})",
                notes=notes,
            )
            # Outputs that need only the embeddings and the selection are written beside the
            # report, in threads (pyarrow and Pillow work without the GIL).
            beside: list[PrefectFuture[Any]] = [
                tasks.embedding_files.submit(listing=listing, run_id=run_id, embedded=embedded),
                tasks.thumbnails.submit(
                    listing=listing, embedded=embedded, selected=selected, objects=objects
                ),
            ]
            # What the report and the results both read: every stage's summary.
            summaries = dict(found, embedded=embedded, selected=selected, objects=objects)
            try:
                run.stage(tasks.report, info=info, cfg=cfg, **summaries)
                result: RunOutputs = run.stage(
                    tasks.write_results, run_id=run_id, config=config, trained=trained, **summaries
                )
            finally:
                for future in beside:
                    future.wait()  # never left writing after the run ended, however it ended
            for future in beside:
                future.result()  # a file that could not be written fails the run
            datapool.update(listing, w, embedded, selected)  # after the results, never before
            result.notes = notes
            result.cached = run.cached
            s = result.sizes
            log.info(
                "run %s finished: selected %d of %d files (%d corrupt, %d duplicates, "
                "%d filtered out, %d not selected)",
                run_id,
                s["n_selected"],
                s["n_input"],
                s["n_corrupt"],
                s["n_duplicate"],
                s["n_filtered"],
                s["n_removed"],
            )
        except BaseException:
            log.exception("run %s failed", run_id)
            raise
        finally:
            umap_2d.discard_prestarted()  # unused when a stage before the report failed
            runlog.close()
            _save_logs(lightly_loc, run_id, runlog)
    result.peak_memory_mb = round(runlog.memory.peak_mb, 1)
    _publish_artifacts(result)
    return result


def _nothing_left(run: _Run, run_id: str, cfg: RunConfig, **found: Any) -> None:
    """Every file was corrupt or a duplicate: write what the run found, then stop."""
    deduplicated: Deduplicated = found["deduplicated"]
    result: RunOutputs = run.stage(
        tasks.write_results,
        run_id=run_id,
        config=_config_doc(cfg, None, []),
        embedded=None,
        selected=None,
        trained=None,
        **found,
    )
    s = result.sizes
    info = Location(result.run_dir).child("corruptness_check_information.json").display
    raise InputError(
        f"Nothing is left to embed: of {s['n_input']} input files, {s['n_corrupt']} are corrupt, "
        f"{s['n_duplicate']} are exact duplicates and {s['n_filtered']} were filtered out "
        f"({deduplicated.n_kept} kept). The reasons are in {info}; the file lists are in "
        f"{result.run_dir}/filenames/."
    )


def _notes(deduplicated: Deduplicated, selected: Selected) -> list[str]:
    """Sentences the user must see when the run picked fewer samples than asked."""
    if selected.n_selected >= selected.n_requested:
        return []
    kept = deduplicated.n_kept
    if selected.n_requested > kept and selected.n_selected == kept:
        return [
            f"Asked for {selected.n_requested} samples, but only {kept} images are usable after "
            f"the corruption check and deduplication: all {kept} were selected."
        ]
    return [
        f"Selected {selected.n_selected} of the {selected.n_requested} samples asked for: the "
        "strategies' thresholds or stopping conditions allowed no more."
    ]


def _config_doc(cfg: RunConfig, embedded: Embedded | None, notes: list[str]) -> dict[str, Any]:
    """config.json: the effective configs as run (the model that really embedded), and more."""
    effective = cfg.to_dict()
    model = embedded.model if embedded else ""
    if embedded and not model.startswith("embeddings CSV"):
        effective["lightly_config"]["model"]["name"] = model
    return {
        "seed": cfg.lightly.seed,
        "versions": _versions(model),
        "model": embedded.description if embedded else "",
        "notes": notes,
        "user_config": cfg.user_dict(),
        **effective,
    }


def _device() -> str:
    from thresher.selection._device import cuda_available

    if not cuda_available():  # asked without importing PyTorch where there is clearly no GPU
        from thresher.models.backends import cpu_description

        return cpu_description()
    from thresher.models.inference import device_description

    return device_description()


def _save_logs(lightly: Location, run_id: str, runlog: RunLog) -> None:
    for path in (runlog.log_path, runlog.memlog_path):
        if path.exists():
            lightly.put_file(str(path), f"{run_dir(run_id)}/{path.name}")


def _publish_artifacts(result: RunOutputs) -> None:
    """A summary table and a link to the report, shown on the flow run in the Prefect UI."""
    safe: Callable[..., Any]
    for safe, kwargs in (
        (
            create_table_artifact,
            {
                "key": "curation-summary",
                "table": [
                    {"stage": k.removeprefix("n_"), "files": v} for k, v in result.sizes.items()
                ],
            },
        ),
        (
            create_markdown_artifact,
            {
                "key": "curation-report",
                "markdown": (
                    f"# Curation run `{result.run_id}`\n\n"
                    f"* report: [{result.report_pdf}]({result.report_pdf})\n"
                    f"* outputs: `{result.run_dir}`\n"
                    f"* selected: **{result.sizes['n_selected']}** of {result.sizes['n_input']}\n"
                ),
            },
        ),
    ):
        try:
            safe(**kwargs)
        except Exception as e:  # the UI is a nicety; never fail a finished run over it
            log.debug("could not publish artifact: %s", e)
