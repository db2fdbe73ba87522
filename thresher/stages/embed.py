"""Stage ``embed``: embed the kept images (or take the user's embeddings CSV).

Embeddings are committed in shards as they are computed (``shards/<first row>.npy`` under the
stage's key), every few seconds of work, so a run interrupted midway re-embeds only the images no
shard holds yet (at most those of the last few seconds), with the same result as an uninterrupted
run. When every image is embedded the shards are joined into
``embeddings.npy``, the manifest is written, and the shards are deleted.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import numpy as np

from thresher.caching import stage_dir, stage_key
from thresher.config import LightlyConfig, WorkerConfig
from thresher.errors import ConfigError
from thresher.progress import ProgressFactory, null_progress
from thresher.stages import _store
from thresher.stages.deduplicate import Deduplicated
from thresher.stages.list_input import Listing
from thresher.stages.train import ModelCheckpoint
from thresher.storage.location import Location

log = logging.getLogger("thresher.stages")

#: A shard is committed after this many seconds of embedding (what an interruption can lose at
#: most), or when it holds SHARD_SIZE images (bounds its size on a fast GPU).
SHARD_SECONDS = 5.0
SHARD_SIZE = 4096
DEFAULT_MODEL = "efficientnet-lite0"


@dataclass(frozen=True)
class Embedded:
    """The embeddings of the kept files, stored in the LIGHTLY cache.

    Attributes:
        model: The model's short name (``efficientnet-lite0``, ``resnet-18``, or ``embeddings
            CSV (...)``).
        description: The model and why it was the one, for the report and config.json.
        cached: ``"cached"``, ``"<k> of <n> images from cache"`` after a resumed run, or ``""``.
        n_broken: Kept files that could not be read when embedding (:meth:`broken`); they have
            no row.
    """

    key: str
    lightly_url: str
    n: int
    dim: int
    model: str
    description: str = ""
    cached: str = ""
    n_broken: int = 0

    def embeddings(self) -> np.ndarray:
        """``(n, dim)`` float32, rows in the order of :meth:`filenames`."""
        lightly = _store.lightly_location(self.lightly_url)
        return _store.read_npy(lightly, f"{stage_dir(self.key)}/embeddings.npy")

    def filenames(self) -> list[str]:
        """The embedded files, relative to the INPUT root."""
        lightly = _store.lightly_location(self.lightly_url)
        names: list[str] = _store.read_json(lightly, f"{stage_dir(self.key)}/filenames.json")
        return names

    def broken(self) -> dict[str, str]:
        """Kept files that could not be read when embedding: name -> reason.

        They changed or vanished since the corruption check, and are corrupt in the run's
        accounting.
        """
        if self.n_broken == 0:
            return {}
        lightly = _store.lightly_location(self.lightly_url)
        found: dict[str, str] = _store.read_json(lightly, f"{stage_dir(self.key)}/broken.json")
        return found


def _l2(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def describe_model(
    worker: WorkerConfig, lightly_cfg: LightlyConfig, checkpoint: ModelCheckpoint | None
) -> tuple[str, str]:
    """The model the embed stage will use and why: ``(short name, sentence)``.

    The rule is :func:`thresher.models.resolve_embedder`'s; this says it in words without
    loading anything.
    """
    if worker.embeddings:
        name = f"embeddings CSV ({worker.embeddings})"
        return name, f"precomputed embeddings from .lightly/embeddings/{worker.embeddings}"
    model = lightly_cfg.model.name
    if worker.enable_training and checkpoint is not None:
        return model, f"{model} trained with SimCLR in this run (worker_config.enable_training)"
    if checkpoint is not None:
        return model, f"{model} loaded from the checkpoint {checkpoint.source}"
    if "name" not in lightly_cfg.model.model_fields_set:
        return DEFAULT_MODEL, (
            f"{DEFAULT_MODEL}, ImageNet-pretrained: the default when no checkpoint, no "
            "training and no lightly_config.model.name is set"
        )
    pretrained = "ImageNet-pretrained" if model.startswith("efficientnet") else "random weights"
    return model, f"{model} ({pretrained}), as lightly_config.model.name asks"


_BACKEND_WORDS = {"openvino": "OpenVINO (fp32) on the CPU", "torch": "PyTorch (fp32)"}


def _backend(worker: WorkerConfig) -> str:
    """The backend that embeds (``worker_config.embedding_backend`` with ``auto`` resolved)."""
    from thresher.models.backends import resolve_backend

    return resolve_backend(worker.embedding_backend)


def _shards(lightly: Location, key: str, n: int) -> list[tuple[int, str]]:
    """The committed shards that cover a prefix of the files: ``(first row, path)`` each.

    A shard's rows for files that could not be read are NaN; their reasons are in the
    ``.json`` beside it (written before the ``.npy``, which commits the shard).
    """
    rel = f"{stage_dir(key)}/shards"
    if not lightly.exists(rel):
        return []
    starts = sorted(
        int(f.name.removesuffix(".npy"))
        for f in lightly.child(rel).list_files((".npy",), skip_dirs=())
        if f.name.removesuffix(".npy").isdigit()
    )
    out: list[tuple[int, str]] = []
    covered = 0
    for start in starts:
        if start != covered or covered >= n:
            break
        path = f"{rel}/{start:09d}.npy"
        rows = _store.read_npy(lightly, path).shape[0]
        out.append((start, path))
        covered += rows
    return out


def embed(
    listing: Listing,
    deduplicated: Deduplicated,
    worker: WorkerConfig,
    lightly_cfg: LightlyConfig,
    *,
    checkpoint: ModelCheckpoint | None = None,
    progress: ProgressFactory = null_progress,
    shard_size: int = SHARD_SIZE,
    shard_seconds: float = SHARD_SECONDS,
) -> Embedded:
    """Embed every kept file, in filename order, as float32 (L2-normalised unless configured off).

    Args:
        listing: The listing (INPUT and LIGHTLY locations).
        deduplicated: The kept files.
        worker: ``worker_config``.
        lightly_cfg: ``lightly_config`` (model, loader).
        checkpoint: The model checkpoint (trained in this run, or the user's); its content
            digest is part of the cache key.
        progress: Progress factory; the bar starts at the images already in committed shards.
        shard_size: Most images in one committed shard.
        shard_seconds: Seconds of embedding after which a shard is committed.
    """
    lightly = _store.lightly_location(listing.lightly_url)
    names = deduplicated.kept()
    csv_rel = f".lightly/embeddings/{worker.embeddings}" if worker.embeddings else ""
    csv_digest = hashlib.sha256(lightly.read_bytes(csv_rel)).hexdigest() if csv_rel else ""
    model_cfg = lightly_cfg.model.model_dump(mode="json", exclude_unset=True)
    backend = _backend(worker) if not csv_rel else ""
    precision = worker.embedding_precision if backend else ""
    if precision == "int8" and backend != "openvino":
        raise ConfigError(
            "worker_config.embedding_precision 'int8' runs on OpenVINO, but the embedding "
            f"backend is '{backend}' (embedding_backend '{worker.embedding_backend}'). Set "
            "embedding_backend to 'openvino', or embedding_precision to 'fp32'."
        )
    key = stage_key(
        "embed",
        deduplicated.key,
        csv_digest,
        checkpoint.digest if checkpoint else "",
        model_cfg,
        lightly_cfg.collate.input_size if checkpoint else None,
        worker.normalize_embeddings,
        worker.enable_training,
        backend,
        precision,  # switching the backend or the precision must never serve old rows
    )
    model_name, description = describe_model(worker, lightly_cfg, checkpoint)
    if backend and precision == "fp32":
        description += f"; run by {_BACKEND_WORDS[backend]}"
    m = _store.cached(lightly, key)
    if m is not None:
        if m.get("precision_note"):
            description += f"; {m['precision_note']}"
        return Embedded(
            key,
            listing.lightly_url,
            m["n"],
            m["dim"],
            m["model"],
            description,
            "cached",
            m.get("n_broken", 0),
        )

    note = ""
    shards = _shards(lightly, key, len(names)) if not csv_rel else []
    parts = [_store.read_npy(lightly, path) for _, path in shards]
    done = sum(len(p) for p in parts)
    cached = f"{done} of {len(names)} images from cache" if done else ""
    if csv_rel:
        from thresher.storage.embeddings_csv import match_embeddings, read_embeddings_csv

        csv_names, csv_emb = read_embeddings_csv(lightly, csv_rel)
        # Rows for listed files the run dropped (corrupt, duplicate, filtered) are fine: a CSV
        # written by an earlier run of another tool may hold them. Rows for unlisted files are not.
        listed = {*listing.names(), *listing.filtered()}
        parts = [match_embeddings(csv_names, csv_emb, names, also_known=listed)]
        log.info("using %d precomputed embeddings from %s", len(names), csv_rel)
    elif done < len(names):
        rest, note = _embed_rest(
            listing,
            names,
            done,
            worker,
            lightly_cfg,
            checkpoint,
            key,
            backend,
            progress,
            shard_size,
            shard_seconds,
        )
        parts += rest
    emb = np.concatenate(parts).astype(np.float32, copy=False)
    if csv_rel and worker.normalize_embeddings:
        emb = _l2(emb)
    n_kept = len(names)
    broken = _broken(lightly, key, names)
    if broken:  # changed or vanished since the corruption check: counted as corrupt
        rows = [i for i, n in enumerate(names) if n not in broken]
        names = [names[i] for i in rows]
        emb = emb[rows]
        log.warning(
            "embed: %d files could not be read any more and count as corrupt: %s",
            len(broken),
            ", ".join(sorted(broken)[:5]) + (" ..." if len(broken) > 5 else ""),
        )
    _store.write_npy(lightly, f"{stage_dir(key)}/embeddings.npy", emb)
    _store.write_json(lightly, f"{stage_dir(key)}/filenames.json", names)
    files = ["embeddings.npy", "filenames.json"]
    if broken:
        _store.write_json(lightly, f"{stage_dir(key)}/broken.json", broken)
        files.append("broken.json")
    dim = int(emb.shape[1])
    _store.finish(
        lightly,
        key,
        {
            "n": len(names),
            "dim": dim,
            "model": model_name,
            "precision_note": note,
            "n_broken": len(broken),
        },
        files,
    )
    if note:
        description += f"; {note}"
    for _, path in _shards(lightly, key, n_kept):
        lightly.remove(path)
        if lightly.exists(beside := path.removesuffix(".npy") + ".json"):
            lightly.remove(beside)
    return Embedded(
        key, listing.lightly_url, len(names), dim, model_name, description, cached, len(broken)
    )


def _broken(lightly: Location, key: str, names: list[str]) -> dict[str, str]:
    """The files whose rows the committed shards mark as unreadable: name -> reason."""
    out: dict[str, str] = {}
    for _, path in _shards(lightly, key, len(names)):
        beside = path.removesuffix(".npy") + ".json"
        if lightly.exists(beside):
            found: dict[str, str] = _store.read_json(lightly, beside)
            out.update({names[int(i)]: why for i, why in found.items()})
    return out


def _embed_rest(
    listing: Listing,
    names: list[str],
    done: int,
    worker: WorkerConfig,
    lightly_cfg: LightlyConfig,
    checkpoint: ModelCheckpoint | None,
    key: str,
    backend: str,
    progress: ProgressFactory,
    shard_size: int,
    shard_seconds: float,
) -> tuple[list[np.ndarray], str]:
    """Embed ``names[done:]``, committing a shard every ``shard_seconds`` or ``shard_size``.

    Returns:
        The new rows, and with ``embedding_precision: int8`` the sentence stating the
        measured fidelity (and a fallback to fp32), else ``""``.
    """
    from thresher.models import iter_embeddings, resolve_embedder

    lightly = _store.lightly_location(listing.lightly_url)
    model, spec, model_name = resolve_embedder(
        lightly_cfg,
        checkpoint=checkpoint.url if checkpoint else None,
        enable_training=worker.enable_training,
    )
    batch = (
        lightly_cfg.loader.batch_size if "batch_size" in lightly_cfg.loader.model_fields_set else 32
    )
    workers = worker.num_processes if worker.num_processes != -1 else lightly_cfg.loader.num_workers
    model_xml = None
    note = ""
    if worker.embedding_precision == "int8":
        from thresher.models.int8 import prepare_int8

        # Calibration and held-out images come from all the files, so a resumed run makes
        # the same int8 model (cached) as the interrupted one.
        plan = prepare_int8(model, spec, listing.input_url, names)
        model_xml, note = plan.model_xml, plan.note
    if done:
        log.info("embed: resuming, %d of %d images are in committed shards", done, len(names))
    log.info("embedding %d images with %s on %s", len(names) - done, model_name, backend)
    out: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    broken: dict[str, str] = {}  # row index (all names) -> reason, for the pending rows
    start = done
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal start, last_commit
        last_commit = time.monotonic()
        shard = np.concatenate(pending)
        base = f"{stage_dir(key)}/shards/{start:09d}"
        if broken:  # the reasons first: the .npy commits the shard
            _store.write_json(lightly, f"{base}.json", dict(broken))
        elif lightly.exists(f"{base}.json"):  # left by a shard that was never committed
            lightly.remove(f"{base}.json")
        _store.write_npy(lightly, f"{base}.npy", shard)
        out.append(shard)
        start += len(shard)
        pending.clear()
        broken.clear()

    def on_broken(i: int, reason: str) -> None:
        broken[str(done + i)] = f"could not be read when embedding: {reason}"

    with progress("embed", len(names)) as advance:
        advance(done)
        for rows in iter_embeddings(
            model,
            spec,
            listing.input_url,
            names[done:],
            batch_size=batch,
            num_workers=workers,
            normalize=worker.normalize_embeddings,
            backend=backend,
            model_xml=model_xml,
            frames=listing.dataset_type == "videos",
            on_broken=on_broken,
        ):
            pending.append(rows)
            waited = time.monotonic() - last_commit
            if sum(len(p) for p in pending) >= shard_size or waited >= shard_seconds:
                commit()
            advance(len(rows))
        if pending:
            commit()
    return out, note
