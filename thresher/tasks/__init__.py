"""One Prefect task per stage: thin wrappers over ``thresher.stages`` with cached results.

Tasks pass small summaries (keys, counts, URLs), never arrays. A task whose inputs and code are
unchanged finishes in state Cached; ``thresher.flows`` re-runs it if its stored output vanished.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from thresher.config import LightlyConfig, SelectionConfig, WorkerConfig
from thresher.stages import embed as _embed
from thresher.stages import listing as _listing
from thresher.stages import outputs as _outputs
from thresher.stages import scan as _scan
from thresher.stages import select as _select
from thresher.stages import train as _train
from thresher.tasks._cache import stage_cache_key
from thresher.tasks._progress import task_progress


@task(name="list-input", cache_policy=NO_CACHE)
def list_input(input_url: str, lightly_url: str, relevant_filenames_file: str) -> _listing.Listing:
    return _listing.list_input(input_url, lightly_url, relevant_filenames_file)


@task(name="corruption-check", cache_key_fn=stage_cache_key("scan"))
def check_corruption(listing: _listing.Listing, enabled: bool, num_threads: int) -> _scan.Scan:
    return _scan.check_corruption(
        listing, enabled=enabled, num_threads=num_threads, progress=task_progress
    )


@task(name="remove-duplicates", cache_key_fn=stage_cache_key("dedup"))
def remove_duplicates(scan: _scan.Scan, enabled: bool) -> _scan.Dedup:
    return _scan.remove_duplicates(scan, enabled=enabled)


@task(name="train", cache_key_fn=stage_cache_key("train"))
def train(
    listing: _listing.Listing,
    dedup: _scan.Dedup,
    lightly_cfg: LightlyConfig,
    init: _train.ModelCheckpoint | None = None,
) -> _train.Trained:
    return _train.train(listing, dedup, lightly_cfg, init=init, progress=task_progress)


@task(name="embed", cache_key_fn=stage_cache_key("embed"))
def embed(
    listing: _listing.Listing,
    dedup: _scan.Dedup,
    worker: WorkerConfig,
    lightly_cfg: LightlyConfig,
    checkpoint: _train.ModelCheckpoint | None = None,
) -> _embed.Embedded:
    return _embed.embed(
        listing, dedup, worker, lightly_cfg, checkpoint=checkpoint, progress=task_progress
    )


@task(name="select", cache_key_fn=stage_cache_key("select"))
def select(
    listing: _listing.Listing, embedded: _embed.Embedded, selection: SelectionConfig, seed: int
) -> _select.Selected:
    return _select.select_samples(listing, embedded, selection, seed=seed, progress=task_progress)


@task(name="report", cache_policy=NO_CACHE)
def report(run_id: str, **kwargs: Any) -> list[str]:
    return _outputs.write_report(run_id, **kwargs)


@task(name="write-results", cache_policy=NO_CACHE)
def write_results(run_id: str, **kwargs: Any) -> _outputs.RunOutputs:
    return _outputs.write_results(run_id, **kwargs)
