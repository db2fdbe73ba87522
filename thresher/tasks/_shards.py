"""The embed stage's shards as Prefect tasks on a Dask cluster (``--cluster ADDRESS``).

The embed stage plans its work as shards (row ranges of the kept files,
:class:`thresher.stages.embed.Shard`) and hands them to a runner. Without a cluster there is no
runner: the stage embeds its shards itself, in the task's own thread, so Ctrl-C, the progress
bar and the committed shards behave as in any stage. With a cluster, each shard becomes one
Prefect task, ``embed_shard``, submitted through ``prefect_dask.DaskTaskRunner(address=...)``;
it calls the same plain function (:func:`thresher.stages.embed.embed_shard`) on whichever Dask
worker the scheduler picks. A shard reads its files from INPUT and writes its rows to LIGHTLY
itself: no image or array travels through the flow process, and credentials come from each
worker's own environment, never from task arguments (docs/cluster.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE

from thresher.stages import embed as _embed
from thresher.tasks._progress import task_progress

log = logging.getLogger("thresher.tasks")


@task(name="embed_shard", cache_policy=NO_CACHE)
def embed_shard(*, shard: _embed.Shard) -> _embed.ShardDone:
    """Embed one shard where this task runs; its rows go to LIGHTLY, not into the result."""
    return _embed.embed_shard(shard, progress=task_progress)


def shard_runner(cluster: str | None) -> _embed.ShardRunner | None:
    """The embed stage's shard runner: None (the stage runs them) or the Dask cluster's.

    Args:
        cluster: A Dask scheduler address (``tcp://scheduler:8786``), or None.
    """
    if cluster is None:
        return None
    address = cluster

    def run_on_cluster(shards: Sequence[_embed.Shard]) -> list[_embed.ShardDone]:
        from prefect_dask import DaskTaskRunner

        log.info("embed: %d shards on the Dask cluster at %s", len(shards), address)
        done: list[_embed.ShardDone] = []
        with (
            DaskTaskRunner(address=address) as runner,
            task_progress("embed shards", len(shards), unit="shard") as advance,
        ):
            futures = [runner.submit(embed_shard, {"shard": s}) for s in shards]
            for future in futures:  # in row order; a failed shard raises its error here
                result: _embed.ShardDone = future.result()
                log.info(
                    "embed shard rows %d-%d: %d images on %s (pid %d) in %.1f s",
                    result.start,
                    result.stop - 1,
                    result.stop - result.start,
                    result.host,
                    result.pid,
                    result.seconds,
                )
                done.append(result)
                advance(1)
        return done

    return run_on_cluster
