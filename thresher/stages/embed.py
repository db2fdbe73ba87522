"""Stage: embed the kept images (or take the user's embeddings CSV)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from thresher.caching import stage_dir, stage_key
from thresher.config import LightlyConfig, WorkerConfig
from thresher.progress import ProgressFactory, null_progress
from thresher.stages import _store
from thresher.stages.deduplicate import Deduplicated
from thresher.stages.list_input import Listing
from thresher.stages.train import ModelCheckpoint

log = logging.getLogger("thresher.stages")


@dataclass(frozen=True)
class Embedded:
    key: str
    lightly_url: str
    n: int
    dim: int
    model: str

    def embeddings(self) -> np.ndarray:
        lightly = _store.lightly_location(self.lightly_url)
        return _store.read_npy(lightly, f"{stage_dir(self.key)}/embeddings.npy")

    def filenames(self) -> list[str]:
        lightly = _store.lightly_location(self.lightly_url)
        return _store.read_json(lightly, f"{stage_dir(self.key)}/filenames.json")  # type: ignore[no-any-return]


def _l2(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def embed(
    listing: Listing,
    dedup: Deduplicated,
    worker: WorkerConfig,
    lightly_cfg: LightlyConfig,
    *,
    checkpoint: ModelCheckpoint | None = None,
    progress: ProgressFactory = null_progress,
) -> Embedded:
    """Embed every kept file, in filename order, as float32 (L2-normalised unless configured off).

    Args:
        checkpoint: The model checkpoint (trained in this run, or the user's); its content
            digest is part of the cache key.
    """
    lightly = _store.lightly_location(listing.lightly_url)
    names = dedup.kept()
    csv_rel = f".lightly/embeddings/{worker.embeddings}" if worker.embeddings else ""
    csv_digest = hashlib.sha256(lightly.read_bytes(csv_rel)).hexdigest() if csv_rel else ""
    model_cfg = lightly_cfg.model.model_dump(mode="json", exclude_unset=True)
    key = stage_key(
        "embed",
        dedup.key,
        csv_digest,
        checkpoint.digest if checkpoint else "",
        model_cfg,
        lightly_cfg.collate.input_size if checkpoint else None,
        worker.normalize_embeddings,
        worker.enable_training,
    )
    if _store.is_complete(lightly, key):
        m = _store.manifest(lightly, key)
        return Embedded(key, listing.lightly_url, m["n"], m["dim"], m["model"])

    if csv_rel:
        from thresher.storage.embeddings_csv import match_embeddings, read_embeddings_csv

        csv_names, csv_emb = read_embeddings_csv(
            lightly.path(csv_rel), storage_options=lightly.storage_options
        )
        emb = match_embeddings(csv_names, csv_emb, names)
        model_name = f"embeddings CSV ({worker.embeddings})"
        log.info("using %d precomputed embeddings from %s", len(names), csv_rel)
    else:
        from thresher.models import embed_files, resolve_embedder

        model, spec, model_name = resolve_embedder(
            lightly_cfg,
            checkpoint=checkpoint.url if checkpoint else None,
            enable_training=worker.enable_training,
        )
        batch = (
            lightly_cfg.loader.batch_size
            if "batch_size" in lightly_cfg.loader.model_fields_set
            else 32
        )
        workers = (
            worker.num_processes if worker.num_processes != -1 else lightly_cfg.loader.num_workers
        )
        log.info("embedding %d images with %s", len(names), model_name)
        with progress("embed", len(names)) as advance:
            emb = embed_files(
                model,
                spec,
                listing.input_url,
                names,
                batch_size=batch,
                num_workers=workers,
                normalize=False,
                progress=advance,
            )
    emb = np.asarray(emb, dtype=np.float32)
    if worker.normalize_embeddings:
        emb = _l2(emb)
    _store.write_npy(lightly, f"{stage_dir(key)}/embeddings.npy", emb)
    _store.write_json(lightly, f"{stage_dir(key)}/filenames.json", names)
    _store.finish(lightly, key, {"n": len(names), "dim": int(emb.shape[1]), "model": model_name})
    return Embedded(key, listing.lightly_url, len(names), int(emb.shape[1]), model_name)
