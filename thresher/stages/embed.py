"""Stage ``embed``: embed the kept images (or take the user's embeddings CSV).

Embeddings are committed in shards as they are computed (``shards/<first row>.npy`` under the
stage's key), every few seconds of work, so a run interrupted midway re-embeds only the images no
shard holds yet (at most those of the last few seconds), with the same result as an uninterrupted
run. When every image is embedded the shards are streamed into
``embeddings.npy`` (row chunks written to a file, never joined in memory), the manifest is
written, and the shards are deleted.

``worker_config.embeddings`` replaces the model: a Lightly CSV (read whole), or a ``.npy`` with
its ``.filenames.txt`` (:mod:`thresher.storage.embeddings_npy`), memory-mapped and gathered
into ``embeddings.npy`` a chunk of rows at a time, so a million 1,280-dim rows never sit in
memory. :meth:`Embedded.embeddings` memory-maps the stored file read-only.

The work is planned as :class:`Shard` s, row ranges that no committed shard holds yet, and
embedded by :func:`embed_shard`. In one process the stage embeds them itself; given a
``run_shards`` runner (the task layer's Dask runner, ``--cluster``) it hands them over, and each
one is embedded wherever the runner sends it, reading INPUT and writing its committed shards
to LIGHTLY itself. Either way the rows, their order and their batches are the same.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from thresher.caching import stage_dir, stage_key
from thresher.config import LightlyConfig, WorkerConfig
from thresher.errors import ConfigError
from thresher.progress import ProgressFactory, null_progress
from thresher.stages import _store
from thresher.stages.deduplicate import Deduplicated
from thresher.stages.list_input import Listing
from thresher.stages.objects import Objects
from thresher.stages.train import ModelCheckpoint
from thresher.storage.embeddings_npy import CHUNK_ROWS, is_npy
from thresher.storage.location import Location

log = logging.getLogger("thresher.stages")

#: A shard is committed after this many seconds of embedding (what an interruption can lose at
#: most), or when it holds SHARD_SIZE images (bounds its size on a fast GPU).
SHARD_SECONDS = 5.0
SHARD_SIZE = 4096
#: Images in one shard of a cluster run (rounded up to whole batches, so that every row is
#: embedded in the same batch as in a run in one process).
CLUSTER_SHARD_ROWS = 1024
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
        """``(n, dim)`` float32, rows in the order of :meth:`filenames`.

        A read-only memory map of the stored ``embeddings.npy`` (of a cached local copy when
        LIGHTLY is a bucket): nothing is read until rows are used. Passes over all rows should
        go through :func:`thresher.storage.embeddings_npy.iter_chunks`, which does not keep
        the pages resident.
        """
        lightly = _store.lightly_location(self.lightly_url)
        return _store.open_npy_rows(lightly, f"{stage_dir(self.key)}/embeddings.npy")

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
        kind = ".npy" if is_npy(worker.embeddings) else "CSV"
        name = f"embeddings {kind} ({worker.embeddings})"
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


@dataclass(frozen=True)
class Shard:
    """Rows ``start`` to ``stop`` (exclusive) of the kept files: one unit of embedding work.

    Small enough to send to another machine: the file names are read from LIGHTLY (the
    deduplicate stage's stored output) where the shard runs, not carried.
    """

    listing: Listing
    deduplicated: Deduplicated | Objects
    worker: WorkerConfig
    lightly_cfg: LightlyConfig
    checkpoint: ModelCheckpoint | None
    key: str
    backend: str
    start: int
    stop: int


@dataclass(frozen=True)
class ShardDone:
    """A shard that was embedded: its rows are committed in LIGHTLY.

    Attributes:
        host: The machine that embedded it (``socket.gethostname()``).
        pid: The process that embedded it.
        seconds: Wall time, model loading included.
        note: With ``embedding_precision: int8``, the fidelity sentence; else ``""``.
    """

    start: int
    stop: int
    host: str
    pid: int
    seconds: float
    note: str = ""


#: Embeds every shard given (anywhere) and returns what each did; the rows are in LIGHTLY.
ShardRunner = Callable[[Sequence[Shard]], list[ShardDone]]


def plan_shards(
    committed: Sequence[tuple[int, int]], n: int, rows: int | None
) -> list[tuple[int, int]]:
    """The row ranges of ``range(n)`` that no committed shard holds, cut into ``rows`` each.

    Args:
        committed: ``(start, stop)`` of the committed shards, sorted, not overlapping.
        n: Rows in all.
        rows: Most rows per range; None leaves each gap whole.

    Returns:
        ``(start, stop)`` ranges in row order.

    Example:
        >>> plan_shards([(0, 10), (20, 25)], 40, 8)
        [(10, 18), (18, 20), (25, 33), (33, 40)]
    """
    out: list[tuple[int, int]] = []
    at = 0
    for start, stop in [*committed, (n, n)]:
        gap_end = min(start, n)
        step = rows or max(1, gap_end - at)
        out += [(a, min(a + step, gap_end)) for a in range(at, gap_end, step)]
        at = max(at, stop)
    return out


def _batch_size(lightly_cfg: LightlyConfig) -> int:
    loader = lightly_cfg.loader
    return loader.batch_size if "batch_size" in loader.model_fields_set else 32


def _whole_batches(rows: int | None, batch: int) -> int | None:
    """``rows`` rounded up to a multiple of ``batch`` (None stays None)."""
    return None if rows is None else max(1, -(-rows // batch)) * batch


_BACKEND_WORDS = {"openvino": "OpenVINO (fp32) on the CPU", "torch": "PyTorch (fp32)"}


def _backend(worker: WorkerConfig) -> str:
    """The backend that embeds (``worker_config.embedding_backend`` with ``auto`` resolved)."""
    from thresher.models.backends import resolve_backend

    return resolve_backend(worker.embedding_backend)


def _committed(
    lightly: Location, key: str, n: int, known: dict[int, np.ndarray] | None = None
) -> list[tuple[int, str, np.ndarray]]:
    """The committed shards, in row order: ``(first row, path, rows)`` each.

    A shard that overlaps an earlier one (left by an interrupted run with other shard bounds)
    is passed over. A shard's rows for files that could not be read are NaN; their reasons
    are in the ``.json`` beside it (written before the ``.npy``, which commits the shard).
    ``known`` holds rows already in memory, by first row (not read again).
    """
    rel = f"{stage_dir(key)}/shards"
    if not lightly.exists(rel):
        return []
    starts = sorted(
        int(f.name.removesuffix(".npy"))
        for f in lightly.child(rel).list_files((".npy",), skip_dirs=())
        if f.name.removesuffix(".npy").isdigit()
    )
    out: list[tuple[int, str, np.ndarray]] = []
    covered = 0
    for start in starts:
        if start < covered or start >= n:
            continue
        path = f"{rel}/{start:09d}.npy"
        rows = known[start] if known and start in known else _store.read_npy(lightly, path)
        out.append((start, path, rows))
        covered = start + len(rows)
    return out


def _input_digest(lightly: Location, rel: str) -> str:
    """The content digest of ``worker_config.embeddings`` (its filenames file too, for a .npy).

    Read in blocks, so a 5 GB ``.npy`` is hashed without being held.
    """
    h = hashlib.sha256()
    rels = [rel]
    if is_npy(rel):
        from thresher.storage.embeddings_npy import filenames_rel

        rels.append(filenames_rel(rel))
    for r in rels:
        if not lightly.exists(r):
            continue  # the reader names what is missing
        with lightly.fs.open(lightly.path(r), "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def _npy_input(
    lightly: Location, rel: str, names: list[str], listing: Listing, normalize: bool
) -> tuple[int, Iterator[np.ndarray]]:
    """The ``.npy`` of ``worker_config.embeddings``, matched to ``names``: its dim, row chunks.

    The rows are gathered from the memory-mapped file a chunk at a time (L2-normalised if
    asked); a row that is not finite stops the run, naming its file.
    """
    from thresher.errors import SchemaError
    from thresher.storage.embeddings_csv import match_rows
    from thresher.storage.embeddings_npy import filenames_rel, read_filenames, read_rows

    display = lightly.child(rel).display
    x = _store.open_npy_rows(lightly, rel)
    file_names = read_filenames(lightly, filenames_rel(rel), int(x.shape[0]), display)
    listed = {*listing.names(), *listing.filtered()}
    rows = match_rows(file_names, names, also_known=listed, what="embeddings .npy")
    del listed, file_names

    def chunks() -> Iterator[np.ndarray]:
        for a in range(0, len(rows), CHUNK_ROWS):
            c = read_rows(x, rows[a : a + CHUNK_ROWS])
            bad = np.flatnonzero(~np.isfinite(c).all(axis=1))
            if bad.size:
                i = a + int(bad[0])
                raise SchemaError(
                    display,
                    f"<row {int(rows[i])}>",
                    f"the embedding of {names[i]!r} holds NaN or infinite values "
                    f"({bad.size} such rows in this block); re-embed those files",
                )
            yield _l2(c) if normalize else c

    return int(x.shape[1]), chunks()


def _without_rows(parts: Iterable[np.ndarray], drop: set[int]) -> Iterator[np.ndarray]:
    """The rows of ``parts`` (consecutive blocks) without the rows numbered in ``drop``."""
    at = 0
    for p in parts:
        if drop:
            keep = [i for i in range(len(p)) if at + i not in drop]
            yield p[keep] if len(keep) < len(p) else p
        else:
            yield p
        at += len(p)


def embed(
    listing: Listing,
    deduplicated: Deduplicated | Objects,
    worker: WorkerConfig,
    lightly_cfg: LightlyConfig,
    *,
    checkpoint: ModelCheckpoint | None = None,
    progress: ProgressFactory = null_progress,
    shard_size: int = SHARD_SIZE,
    shard_seconds: float = SHARD_SECONDS,
    run_shards: ShardRunner | None = None,
    shard_rows: int | None = None,
) -> Embedded:
    """Embed every kept file, in filename order, as float32 (L2-normalised unless configured off).

    Args:
        listing: The listing (INPUT and LIGHTLY locations).
        deduplicated: The kept files, or (object level) the crops of the objects stage.
        worker: ``worker_config``.
        lightly_cfg: ``lightly_config`` (model, loader).
        checkpoint: The model checkpoint (trained in this run, or the user's); its content
            digest is part of the cache key.
        progress: Progress factory; the bar starts at the images already in committed shards.
        shard_size: Most images in one committed shard.
        shard_seconds: Seconds of embedding after which a shard is committed.
        run_shards: Embeds the planned shards elsewhere (the Dask cluster's runner); None
            embeds them here.
        shard_rows: Most images per planned shard (rounded up to whole batches); None plans
            one shard per run of missing rows.
    """
    lightly = _store.lightly_location(listing.lightly_url)
    names = deduplicated.kept()
    csv_rel = f".lightly/embeddings/{worker.embeddings}" if worker.embeddings else ""
    csv_digest = _input_digest(lightly, csv_rel) if csv_rel else ""
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
    committed = _committed(lightly, key, len(names)) if not csv_rel else []
    done = sum(len(rows) for _, _, rows in committed)
    cached = f"{done} of {len(names)} images from cache" if done else ""
    broken: dict[str, str] = {}
    # Rows for listed files the run dropped (corrupt, duplicate, filtered) are fine in a user's
    # file: one written by an earlier run of another tool may hold them. Rows for unlisted
    # files are not.
    if csv_rel and is_npy(worker.embeddings):
        dim, chunks = _npy_input(lightly, csv_rel, names, listing, worker.normalize_embeddings)
        log.info("using %d precomputed embeddings from %s", len(names), csv_rel)
    elif csv_rel:
        from thresher.storage.embeddings_csv import match_embeddings, read_embeddings_csv

        csv_names, csv_emb = read_embeddings_csv(lightly, csv_rel)
        listed = {*listing.names(), *listing.filtered()}
        emb = match_embeddings(csv_names, csv_emb, names, also_known=listed)
        del csv_emb
        if worker.normalize_embeddings:
            emb = _l2(emb)
        dim, chunks = int(emb.shape[1]), iter([emb])
        log.info("using %d precomputed embeddings from %s", len(names), csv_rel)
    else:
        if done < len(names):
            shards = [
                Shard(listing, deduplicated, worker, lightly_cfg, checkpoint, key, backend, a, b)
                for a, b in plan_shards(
                    [(start, start + len(rows)) for start, _, rows in committed],
                    len(names),
                    _whole_batches(shard_rows, _batch_size(lightly_cfg)),
                )
            ]
            if done:
                log.info(
                    "embed: resuming, %d of %d images are in committed shards", done, len(names)
                )
            log.info("embedding %d images with %s on %s", len(names) - done, model_name, backend)
            known = {start: rows for start, _, rows in committed}
            if run_shards is None:
                note = _embed_here(shards, names, known, progress, shard_size, shard_seconds)
            else:
                note = next((d.note for d in run_shards(shards) if d.note), "")
            committed = _committed(lightly, key, len(names), known)
        parts = [rows for _, _, rows in committed]
        if sum(len(p) for p in parts) != len(names):  # a shard vanished while the run went on
            raise RuntimeError(
                f"embed: the committed shards in {lightly.display}/{stage_dir(key)}/shards hold "
                f"{sum(len(p) for p in parts)} of {len(names)} rows; re-run to embed the rest"
            )
        broken = _broken(lightly, [path for _, path, _ in committed], names)
        dim = int(parts[0].shape[1]) if parts else 0
        drop = {i for i, n in enumerate(names) if n in broken}
        chunks = _without_rows(parts, drop)
    if broken:  # changed or vanished since the corruption check: counted as corrupt
        names = [n for n in names if n not in broken]
        log.warning(
            "embed: %d files could not be read any more and count as corrupt: %s",
            len(broken),
            ", ".join(sorted(broken)[:5]) + (" ..." if len(broken) > 5 else ""),
        )
    _store.write_npy_rows(lightly, f"{stage_dir(key)}/embeddings.npy", (len(names), dim), chunks)
    _store.write_json(lightly, f"{stage_dir(key)}/filenames.json", names)
    files = ["embeddings.npy", "filenames.json"]
    if broken:
        _store.write_json(lightly, f"{stage_dir(key)}/broken.json", broken)
        files.append("broken.json")
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
    shards_dir = f"{stage_dir(key)}/shards"
    if committed and lightly.exists(shards_dir):  # also shards passed over as overlapping
        for f in lightly.child(shards_dir).list_files((".npy", ".json"), skip_dirs=()):
            lightly.remove(f"{shards_dir}/{f.name}")
    return Embedded(
        key, listing.lightly_url, len(names), dim, model_name, description, cached, len(broken)
    )


def _broken(lightly: Location, paths: list[str], names: list[str]) -> dict[str, str]:
    """The files whose rows the committed shards at ``paths`` mark as unreadable: name -> why."""
    out: dict[str, str] = {}
    for path in paths:
        beside = path.removesuffix(".npy") + ".json"
        if lightly.exists(beside):
            found: dict[str, str] = _store.read_json(lightly, beside)
            out.update({names[int(i)]: why for i, why in found.items()})
    return out


@dataclass(frozen=True)
class _Model:
    """The loaded embedding model of a shard, and the int8 note (or ``""``).

    ``pretrained`` is set instead of ``model`` and ``spec`` when the shard embeds with a
    converted OpenVINO file from uint8 pixels, without PyTorch in the embedding
    (:mod:`thresher.models.openvino_embed`): the pretrained default model in fp32, and every
    int8 run (its quantized file, or the fp32 one after a fallback).
    """

    model: Any
    spec: Any
    note: str
    pretrained: Any = None


def _pretrained_default(shard: Shard) -> bool:
    """Whether the shard embeds images with the pretrained default model on OpenVINO.

    The rule is :func:`thresher.models.resolve_embedder`'s for the default model; such a run
    needs PyTorch only to convert the model once per machine, in fp32 and in int8.
    """
    worker, lightly_cfg = shard.worker, shard.lightly_cfg
    return (
        shard.backend == "openvino"
        and shard.checkpoint is None
        and not worker.enable_training
        and "name" not in lightly_cfg.model.model_fields_set
        and shard.listing.dataset_type == "images"
        and not isinstance(shard.deduplicated, Objects)
    )


def _load_pretrained() -> Any:
    """The default model's converted OpenVINO file, converted and noted on first use.

    None where the cache cannot be written: the run then embeds through PyTorch as before.
    """
    from thresher.models.backends import PRETRAINED_DEFAULT, pretrained_openvino

    found = pretrained_openvino(PRETRAINED_DEFAULT)
    if found is not None:
        return found
    from thresher.models import create
    from thresher.models import spec as zoo_spec
    from thresher.models.backends import remember_pretrained

    spec = zoo_spec(PRETRAINED_DEFAULT)
    try:
        return remember_pretrained(
            PRETRAINED_DEFAULT,
            create(PRETRAINED_DEFAULT),
            spec.input_size,
            spec.mean,
            spec.std,
            spec.dim,
        )
    except OSError as e:
        log.warning("cannot cache the converted model (%s): embedding through PyTorch", e)
        return None


def _load_int8(shard: Shard, names: list[str]) -> _Model:
    """The int8 model (or fp32 after a fallback) as a converted file, and the fidelity note.

    The pretrained default model comes from its noted file without PyTorch; another model
    (named, a checkpoint, trained) is built with PyTorch and converted once. Either way the
    calibration, the fidelity check and the embedding read the uint8 pixels of
    :mod:`thresher.models.openvino_embed` (int8 runs only on images, not frames or objects:
    refused when the run is checked).
    """
    from dataclasses import replace

    from thresher.models.int8 import prepare_int8

    fp32 = _load_pretrained() if _pretrained_default(shard) else None
    if fp32 is None:
        from thresher.models import resolve_embedder
        from thresher.models.backends import PretrainedOpenVINO, openvino_model_path

        model, spec, _ = resolve_embedder(
            shard.lightly_cfg,
            checkpoint=shard.checkpoint.url if shard.checkpoint else None,
            enable_training=shard.worker.enable_training,
        )
        try:
            xml = openvino_model_path(model, spec.input_size)
        except OSError as e:
            raise ConfigError(
                f"worker_config.embedding_precision 'int8' keeps the quantized model in "
                f"$THRESHER_HOME/models/openvino, which cannot be written ({e}): set "
                "THRESHER_HOME to a writable folder, or embedding_precision to 'fp32'."
            ) from e
        fp32 = PretrainedOpenVINO(xml, spec.input_size, tuple(spec.mean), tuple(spec.std), spec.dim)
    # Calibration and held-out images come from all the files, so every shard, and a resumed
    # run, makes the same int8 model (cached) as the first.
    workers = 0 if multiprocessing.current_process().daemon else -1
    plan = prepare_int8(fp32, shard.listing.input_url, names, num_workers=workers)
    chosen = fp32 if plan.model_xml is None else replace(fp32, xml=plan.model_xml)
    return _Model(None, None, plan.note, chosen)


def _load_model(shard: Shard, names: list[str]) -> _Model:
    if shard.worker.embedding_precision == "int8":
        return _load_int8(shard, names)
    if _pretrained_default(shard):
        found = _load_pretrained()
        if found is not None:
            return _Model(None, None, "", found)
    from thresher.models import resolve_embedder

    model, spec, _ = resolve_embedder(
        shard.lightly_cfg,
        checkpoint=shard.checkpoint.url if shard.checkpoint else None,
        enable_training=shard.worker.enable_training,
    )
    return _Model(model, spec, "")


def embed_shard(
    shard: Shard,
    *,
    progress: ProgressFactory = null_progress,
    shard_size: int = SHARD_SIZE,
    shard_seconds: float = SHARD_SECONDS,
) -> ShardDone:
    """Embed one shard in this process and commit its rows to LIGHTLY as it goes.

    What a Dask worker runs for each shard of a cluster run: it reads the file names from
    LIGHTLY and the files from INPUT itself, with this process's credentials.

    Args:
        shard: The rows to embed.
        progress: Progress factory (a bar over the shard's rows).
        shard_size: Most images in one committed file.
        shard_seconds: Seconds of embedding after which the rows so far are committed.
    """
    t0 = time.monotonic()
    names = shard.deduplicated.kept()
    loaded = _load_model(shard, names)
    with progress("embed", shard.stop - shard.start) as advance:
        _embed_rows(shard, names, loaded, advance, {}, shard_size, shard_seconds)
    seconds = round(time.monotonic() - t0, 3)
    return ShardDone(
        shard.start, shard.stop, socket.gethostname(), os.getpid(), seconds, loaded.note
    )


def _embed_here(
    shards: list[Shard],
    names: list[str],
    out: dict[int, np.ndarray],
    progress: ProgressFactory,
    shard_size: int,
    shard_seconds: float,
) -> str:
    """Embed ``shards`` in this process, one model for all; the int8 note or ``""``."""
    n_done = len(names) - sum(s.stop - s.start for s in shards)
    loaded = _load_model(shards[0], names)
    with progress("embed", len(names)) as advance:
        advance(n_done)
        for shard in shards:
            _embed_rows(shard, names, loaded, advance, out, shard_size, shard_seconds)
    return loaded.note


def _embed_rows(
    shard: Shard,
    names: list[str],
    loaded: _Model,
    advance: Callable[[int], None],
    out: dict[int, np.ndarray],
    shard_size: int,
    shard_seconds: float,
) -> None:
    """Embed the shard's rows, committing every ``shard_seconds`` or ``shard_size`` rows.

    Each committed file is ``shards/<first row>.npy`` (and the reasons for unreadable files in
    the ``.json`` beside it); its rows are also put in ``out`` by first row.
    """
    worker, lightly_cfg = shard.worker, shard.lightly_cfg
    lightly = _store.lightly_location(shard.listing.lightly_url)
    workers = worker.num_processes if worker.num_processes != -1 else lightly_cfg.loader.num_workers
    if multiprocessing.current_process().daemon:  # a Dask worker: it may not start processes
        workers = 0
    pending: list[np.ndarray] = []
    broken: dict[str, str] = {}  # row index (all names) -> reason, for the pending rows
    start = shard.start
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal start, last_commit
        last_commit = time.monotonic()
        rows = np.concatenate(pending)
        base = f"{stage_dir(shard.key)}/shards/{start:09d}"
        if broken:  # the reasons first: the .npy commits the shard
            _store.write_json(lightly, f"{base}.json", dict(broken))
        elif lightly.exists(f"{base}.json"):  # left by a shard that was never committed
            lightly.remove(f"{base}.json")
        _store.write_npy(lightly, f"{base}.npy", rows)
        out[start] = rows
        start += len(rows)
        pending.clear()
        broken.clear()

    def on_broken(i: int, reason: str) -> None:
        broken[str(shard.start + i)] = f"could not be read when embedding: {reason}"

    objects = shard.deduplicated if isinstance(shard.deduplicated, Objects) else None
    batches: Iterable[np.ndarray]
    if loaded.pretrained is not None:  # a converted file on OpenVINO, without PyTorch
        from thresher.models.openvino_embed import iter_pretrained_embeddings

        batches = iter_pretrained_embeddings(
            loaded.pretrained,
            shard.listing.input_url,
            names[shard.start : shard.stop],
            batch_size=_batch_size(lightly_cfg),
            num_workers=workers,
            normalize=worker.normalize_embeddings,
            on_broken=on_broken,
        )
    else:
        from thresher.models import iter_embeddings

        batches = iter_embeddings(
            loaded.model,
            loaded.spec,
            shard.listing.input_url,
            names[shard.start : shard.stop],
            batch_size=_batch_size(lightly_cfg),
            num_workers=workers,
            normalize=worker.normalize_embeddings,
            backend=shard.backend,
            frames=shard.listing.dataset_type == "videos",
            on_broken=on_broken,
            crops=objects.crops() if objects is not None else None,  # object level
        )
    try:
        for rows in batches:
            pending.append(rows)
            waited = time.monotonic() - last_commit
            if sum(len(p) for p in pending) >= shard_size or waited >= shard_seconds:
                commit()
            advance(len(rows))
    finally:  # on Ctrl-C or an error too: the decode workers stop before this process exits
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    if pending:
        commit()
