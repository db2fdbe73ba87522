"""One Prefect task per stage: thin typed wrappers over ``thresher.stages``.

Tasks pass small summaries (keys, counts, URLs), never arrays. A task whose inputs and code are
unchanged finishes in state Cached; ``thresher.flows`` re-runs it if its stored output vanished.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from thresher.config import LightlyConfig, RunConfig, SelectionConfig, WorkerConfig
from thresher.stages import corruption_check as _corruption_check
from thresher.stages import deduplicate as _deduplicate
from thresher.stages import embed as _embed
from thresher.stages import list_input as _list_input
from thresher.stages import report as _report
from thresher.stages import select as _select
from thresher.stages import train as _train
from thresher.stages import write_results as _write_results
from thresher.tasks._cache import stage_cache_key
from thresher.tasks._progress import task_progress


@task(name="list_input", cache_policy=NO_CACHE)
def list_input(
    input_url: str, lightly_url: str, relevant_filenames_file: str
) -> _list_input.Listing:
    return _list_input.list_input(input_url, lightly_url, relevant_filenames_file)


@task(name="corruption_check", cache_key_fn=stage_cache_key("corruption_check"))
def corruption_check(
    listing: _list_input.Listing, enabled: bool, num_threads: int
) -> _corruption_check.CorruptionChecked:
    return _corruption_check.corruption_check(
        listing, enabled=enabled, num_threads=num_threads, progress=task_progress
    )


@task(name="deduplicate", cache_key_fn=stage_cache_key("deduplicate"))
def deduplicate(
    checked: _corruption_check.CorruptionChecked, enabled: bool
) -> _deduplicate.Deduplicated:
    return _deduplicate.deduplicate(checked, enabled=enabled)


@task(name="train", cache_key_fn=stage_cache_key("train"))
def train(
    listing: _list_input.Listing,
    deduplicated: _deduplicate.Deduplicated,
    lightly_cfg: LightlyConfig,
    init: _train.ModelCheckpoint | None = None,
) -> _train.Trained:
    return _train.train(listing, deduplicated, lightly_cfg, init=init, progress=task_progress)


@task(name="embed", cache_key_fn=stage_cache_key("embed"))
def embed(
    listing: _list_input.Listing,
    deduplicated: _deduplicate.Deduplicated,
    worker: WorkerConfig,
    lightly_cfg: LightlyConfig,
    checkpoint: _train.ModelCheckpoint | None = None,
) -> _embed.Embedded:
    return _embed.embed(
        listing, deduplicated, worker, lightly_cfg, checkpoint=checkpoint, progress=task_progress
    )


@task(name="select", cache_key_fn=stage_cache_key("select"))
def select(
    listing: _list_input.Listing, embedded: _embed.Embedded, selection: SelectionConfig, seed: int
) -> _select.Selected:
    return _select.select(listing, embedded, selection, seed=seed, progress=task_progress)


@task(name="report", cache_policy=NO_CACHE)
def report(
    info: _report.RunInfo,
    *,
    cfg: RunConfig,
    listing: _list_input.Listing,
    checked: _corruption_check.CorruptionChecked,
    deduplicated: _deduplicate.Deduplicated,
    embedded: _embed.Embedded,
    selected: _select.Selected,
) -> list[str]:
    return _report.report(
        info,
        cfg=cfg,
        listing=listing,
        checked=checked,
        deduplicated=deduplicated,
        embedded=embedded,
        selected=selected,
    )


@task(name="write_results", cache_policy=NO_CACHE)
def write_results(
    run_id: str,
    *,
    cfg: RunConfig,
    listing: _list_input.Listing,
    checked: _corruption_check.CorruptionChecked,
    deduplicated: _deduplicate.Deduplicated,
    embedded: _embed.Embedded,
    selected: _select.Selected,
    versions: dict[str, str],
    trained: _train.Trained | None = None,
) -> _write_results.RunOutputs:
    return _write_results.write_results(
        run_id,
        cfg=cfg,
        listing=listing,
        scan=checked,
        dedup=deduplicated,
        embedded=embedded,
        selected=selected,
        versions=versions,
        trained=trained,
    )
