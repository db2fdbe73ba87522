"""The ``curate`` flow: list → corruption check → duplicates → (train) → embed → select → report.

The body reads as the pipeline. Each stage is a cached task over plain library code
(``thresher.stages``); tasks hand each other small summaries with content keys, never arrays.
"""

from __future__ import annotations

import logging
import platform
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

import thresher
from thresher import tasks
from thresher.config import LightlyConfig, RunConfig, SelectionConfig, WorkerConfig, load_configs
from thresher.errors import NotSupportedYetError
from thresher.runlog import RunLog
from thresher.stages import _store
from thresher.stages.list_input import preflight
from thresher.stages.report import RunInfo
from thresher.stages.train import resolve_checkpoint
from thresher.stages.write_results import RunOutputs, run_dir
from thresher.storage.location import Location

log = logging.getLogger("thresher.flow")
T = TypeVar("T")


def default_lightly_url(input_url: str) -> str:
    """The default LIGHTLY location: a folder beside the input, ``<input>-lightly``."""
    return input_url.rstrip("/") + "-lightly"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def _versions(model: str = "") -> dict[str, str]:
    import numpy
    import prefect
    import torch

    v = {
        "thresher": thresher.__version__,
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }
    if model:
        v["model"] = model
    return v


class _Stages:
    """Times each stage and re-runs a cached task whose stored output has vanished."""

    def __init__(self, runlog: RunLog, lightly_url: str) -> None:
        self.seconds: dict[str, float] = {}
        self._runlog = runlog
        self._lightly = _store.lightly_location(lightly_url)

    def run(self, name: str, task: Any, *args: Any, **kwargs: Any) -> Any:
        self._runlog.stage(name)
        t0 = time.perf_counter()
        result = task(*args, **kwargs)
        key = getattr(result, "key", None)
        if key and not _store.is_complete(self._lightly, key):
            log.info("cached output of %s is gone; recomputing", name)
            result = task.with_options(refresh_cache=True)(*args, **kwargs)
        self.seconds[name] = round(time.perf_counter() - t0, 3)
        return result


@flow(name="curate", validate_parameters=False, log_prints=True)
def curate(
    input: str,
    lightly: str | None = None,
    worker_config: WorkerConfig | None = None,
    selection_config: SelectionConfig | None = None,
    lightly_config: LightlyConfig | None = None,
    dataset_type: Literal["images", "videos"] = "images",
    run_id: str | None = None,
) -> RunOutputs:
    """Curate the images at ``input``: remove corrupt files and duplicates, embed, select, report.

    Args:
        input: INPUT location (local path or fsspec URL). Read-only: never written.
        lightly: LIGHTLY location for outputs and user inputs (predictions, metadata, tags).
            Default: a folder beside the input, ``<input>-lightly``.
        worker_config: The Lightly ``worker_config`` (dict or model).
        selection_config: The ``selection_config``; ``n_samples`` or ``proportion_samples``.
        lightly_config: The ``lightly_config`` (training and embedding settings).
        dataset_type: ``images`` (videos are not supported yet).
        run_id: Name of the run folder; default: a timestamp plus a random suffix.

    Returns:
        RunOutputs: run id, counts per stage and the output paths.
    """
    cfg: RunConfig = load_configs(worker_config, selection_config, lightly_config)
    if dataset_type != "images":
        raise NotSupportedYetError("dataset_type=videos", "only image datasets are supported")
    lightly_url = lightly or default_lightly_url(input)
    run_id = run_id or cfg.worker.run_directory or new_run_id()
    started = datetime.now(UTC)
    preflight(input, lightly_url)  # before anything is written: INPUT is never written
    lightly_loc = _store.lightly_location(lightly_url)
    lightly_loc.makedirs()
    w = cfg.worker
    result: RunOutputs | None = None
    with RunLog() as runlog:
        try:
            log.info("run %s: %s -> %s", run_id, Location(input).display, lightly_loc.display)
            stages = _Stages(runlog, lightly_url)
            listing = stages.run(
                "list_input", tasks.list_input, input, lightly_url, w.relevant_filenames_file
            )
            scan = stages.run(
                "corruption_check",
                tasks.corruption_check,
                listing,
                w.enable_corruptness_check,
                w.num_threads,
            )
            dedup = stages.run("deduplicate", tasks.deduplicate, scan, w.remove_exact_duplicates)
            init = resolve_checkpoint(w, lightly_url)
            trained = None
            if w.enable_training:
                trained = stages.run("train", tasks.train, listing, dedup, cfg.lightly, init)
            checkpoint = trained.checkpoint if trained else init
            embedded = stages.run("embed", tasks.embed, listing, dedup, w, cfg.lightly, checkpoint)
            selected = stages.run(
                "select", tasks.select, listing, embedded, cfg.selection, cfg.lightly.seed
            )
            versions = _versions(embedded.model)
            common = dict(
                cfg=cfg,
                listing=listing,
                checked=scan,
                deduplicated=dedup,
                embedded=embedded,
                selected=selected,
            )
            runlog.stage("report")
            info = RunInfo(
                run_id=run_id,
                started_at=started,
                stage_seconds=stages.seconds,
                versions=versions,
                config=cfg.to_dict(),
            )
            tasks.report(info, **common)
            result = tasks.write_results(run_id, versions=versions, trained=trained, **common)
            log.info("run %s finished: %s", run_id, result.sizes)
        except BaseException:
            log.exception("run %s failed", run_id)
            raise
        finally:
            runlog.close()
            _save_logs(lightly_loc, run_id, runlog)
    result.peak_memory_mb = round(runlog.memory.peak_mb, 1)
    _publish_artifacts(result)
    return result


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
