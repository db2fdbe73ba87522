"""Stage: self-supervised training (SimCLR) on the kept images, and checkpoint resolution."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from thresher.caching import stage_dir, stage_key
from thresher.config import LightlyConfig, WorkerConfig
from thresher.errors import ConfigError, StorageError
from thresher.progress import ProgressFactory, null_progress
from thresher.stages import _store
from thresher.stages.deduplicate import Deduplicated
from thresher.stages.list_input import Listing
from thresher.storage.location import Location
from thresher.tempdirs import TempDir

log = logging.getLogger("thresher.stages")

SHARED_DIR_ENV = "THRESHER_SHARED_DIR"


@dataclass(frozen=True)
class ModelCheckpoint:
    """A checkpoint the embed stage loads: an fsspec URL and its content digest."""

    url: str
    digest: str
    source: str  # for logs and the report: where it came from


@dataclass(frozen=True)
class Trained:
    """A SimCLR training's checkpoint in the LIGHTLY cache, with its digest and statistics."""

    key: str
    lightly_url: str
    checkpoint_rel: str  # relative to the LIGHTLY root
    digest: str
    summary: dict[str, object]
    cached: str = ""

    @property
    def checkpoint(self) -> ModelCheckpoint:
        """The trained checkpoint, for the embed stage."""
        url = _store.lightly_location(self.lightly_url).child(self.checkpoint_rel).url
        return ModelCheckpoint(url, self.digest, f"trained in this run ({self.key})")


def _digest_of(loc: Location, rel: str) -> str:
    return hashlib.sha256(loc.read_bytes(rel)).hexdigest()[:24]


def resolve_checkpoint(worker: WorkerConfig, lightly_url: str) -> ModelCheckpoint | None:
    """The checkpoint named by ``worker_config.checkpoint`` or ``checkpoint_run_id``, if any.

    ``checkpoint`` is a URL, an absolute path, or a path relative to the shared directory
    (``$THRESHER_SHARED_DIR``, default: the current directory), like the Lightly Worker's
    ``/home/shared_dir``. ``checkpoint_run_id`` takes ``checkpoint.ckpt`` of an earlier run in the
    same LIGHTLY location.
    """
    if worker.checkpoint and worker.checkpoint_run_id:
        raise ConfigError(
            "worker_config.checkpoint and worker_config.checkpoint_run_id are both set: keep one."
        )
    if worker.checkpoint_run_id:
        lightly = _store.lightly_location(lightly_url)
        rel = f".lightly/runs/{worker.checkpoint_run_id}/checkpoint.ckpt"
        if not lightly.exists(rel):
            raise ConfigError(
                f"worker_config.checkpoint_run_id: run '{worker.checkpoint_run_id}' has no "
                f"checkpoint at {lightly.child(rel).display}. Use the id of a run that trained "
                "(enable_training: true)."
            )
        return ModelCheckpoint(
            lightly.child(rel).url, _digest_of(lightly, rel), f"run {worker.checkpoint_run_id}"
        )
    if not worker.checkpoint:
        return None
    ref = worker.checkpoint
    if "://" in ref or os.path.isabs(ref):
        url = ref
    else:
        shared = os.environ.get(SHARED_DIR_ENV) or os.getcwd()
        url = str(Path(shared) / ref)
    parent, _, name = url.rstrip("/").rpartition("/")
    loc = Location(parent or ".")
    try:
        digest = _digest_of(loc, name)
    except StorageError as e:
        raise ConfigError(
            f"worker_config.checkpoint: '{ref}' was not found "
            f"(looked at {loc.child(name).display}). "
            f"Relative paths are read from the shared directory (${SHARED_DIR_ENV}, default: the "
            "current directory); URLs and absolute paths are used as they are. Put the "
            "checkpoint there, or give its URL or absolute path."
        ) from e
    return ModelCheckpoint(url, digest, ref)


def train(
    listing: Listing,
    deduplicated: Deduplicated,
    lightly_cfg: LightlyConfig,
    *,
    init: ModelCheckpoint | None = None,
    progress: ProgressFactory = null_progress,
) -> Trained:
    """Train SimCLR on the kept images; continue from ``init`` when given."""
    from thresher.models.train import train_simclr

    lightly = _store.lightly_location(listing.lightly_url)
    cfg_json = lightly_cfg.model_dump(mode="json")
    key = stage_key("train", deduplicated.key, cfg_json, init.digest if init else "")
    rel = f"{stage_dir(key)}/checkpoint.ckpt"
    m = _store.cached(lightly, key)
    if m is not None:
        return Trained(key, listing.lightly_url, rel, m["digest"], m["summary"], "cached")
    names = deduplicated.kept()
    log.info(
        "training SimCLR (%s) on %d images for %d epochs%s",
        lightly_cfg.model.name,
        len(names),
        lightly_cfg.trainer.max_epochs,
        f", starting from {init.source}" if init else "",
    )
    with TempDir("train") as tmp:
        local = os.path.join(tmp, "checkpoint.ckpt")
        with progress("train", lightly_cfg.trainer.max_epochs, unit="epoch") as advance:

            def on_epoch(stats: dict[str, float]) -> None:
                advance(1)
                log.info(
                    "epoch %d: loss %.4f, %.1f images/s",
                    int(stats["epoch"]),
                    stats["loss"],
                    stats["images_per_s"],
                )

            summary = train_simclr(
                lightly_cfg,
                listing.input_url,
                names,
                local,
                init_checkpoint=init.url if init else None,
                progress=on_epoch,
            )
        lightly.put_file(local, rel)
    digest = _digest_of(lightly, rel)
    info: dict[str, object] = {
        k: v for k, v in vars(summary).items() if isinstance(v, (int, float, str, list))
    }
    info.pop("checkpoint", None)
    _store.finish(lightly, key, {"digest": digest, "summary": info}, ["checkpoint.ckpt"])
    return Trained(key, listing.lightly_url, rel, digest, info)
