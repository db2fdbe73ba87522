"""The datapool: what earlier ``use_datapool`` runs processed and selected (``docs/datapool.md``).

With ``worker_config.use_datapool: true`` a dataset grows run by run: a run lists everything
but takes as candidates only the files the datapool has not processed (or whose size or
change token differ since), and the selection counts every earlier pick as already chosen, so
new picks keep their distance from them and ``n_samples`` counts new picks only.

The datapool lives in the LIGHTLY location, one version per folder::

    .lightly/datapool/state.json              {"version": "<v>"}: the current version, written last
    .lightly/datapool/<v>/pool.json           dataset type, model, processed files, selected files
    .lightly/datapool/<v>/embeddings.npy      the selected files' embeddings, rows as "selected"

A version's files are written before ``state.json`` points at them, and only after a run has
written its results (:func:`update`), so a run that fails or is killed leaves the datapool as
it was. The previous version is kept (a run that started against it can still finish);
older ones are deleted.

This module owns the datapool: the flow calls :func:`restrict` after listing and
:func:`update` after writing the results; the select stage calls :func:`preselected`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from thresher.caching import digest, stage_dir, stage_key
from thresher.config import WorkerConfig
from thresher.errors import ConfigError, InputError, NotSupportedYetError
from thresher.stages import _store
from thresher.stages.list_input import Listing
from thresher.storage.embeddings_npy import read_rows
from thresher.storage.location import Location

if TYPE_CHECKING:  # select imports this module
    from thresher.stages.embed import Embedded
    from thresher.stages.select import Selected

log = logging.getLogger("thresher.stages")

DIR = ".lightly/datapool"
STATE = f"{DIR}/state.json"
#: ``Listing.datapool`` of a ``use_datapool`` run that found no datapool yet.
EMPTY = "empty"


@dataclass(frozen=True)
class Datapool:
    """One version of the datapool.

    Attributes:
        version: The folder name under ``.lightly/datapool/`` (a digest of the content).
        dataset_type: ``images`` or ``videos``; a datapool never changes type.
        model: The model that embedded the selected files (``Embedded.model``).
        processed: Every file an earlier run processed: name -> ``[size, change token]``.
        selected: Every earlier pick, in pick order (rows of :meth:`embeddings`).
    """

    lightly_url: str
    version: str
    dataset_type: str
    model: str
    processed: dict[str, list[Any]]
    selected: list[str]

    def embeddings(self) -> np.ndarray:
        """``(len(selected), dim)`` float32: the selected files' embeddings."""
        lightly = _store.lightly_location(self.lightly_url)
        return _store.read_npy(lightly, f"{DIR}/{self.version}/embeddings.npy")


def load(lightly_url: str, version: str | None = None) -> Datapool | None:
    """The datapool's ``version`` (default: the current one), or None when there is none."""
    lightly = _store.lightly_location(lightly_url)
    if version is None:
        if not lightly.exists(STATE):
            return None
        version = str(_store.read_json(lightly, STATE)["version"])
    if version == EMPTY:
        return None
    rel = f"{DIR}/{version}/pool.json"
    if not lightly.exists(rel):
        raise InputError(
            f"The datapool version {version} is gone from {lightly.child(DIR).display} (another "
            "run replaced it twice while this one ran). Run again: it starts from the current "
            "datapool."
        )
    doc = _store.read_json(lightly, rel)
    return Datapool(
        lightly_url,
        version,
        doc["dataset_type"],
        doc["model"],
        doc["processed"],
        doc["selected"],
    )


def restrict(listing: Listing, worker: WorkerConfig) -> Listing:
    """The listing of the files this run processes: with the datapool, only the new ones.

    Without ``use_datapool`` the listing is returned as it is. With it, the files the datapool
    processed before (same name, size and change token) are left out, unless
    ``datasource.process_all`` is set; the returned listing is stored beside the full one and
    records the datapool version in ``Listing.datapool``.

    Raises:
        ConfigError: the datapool holds another dataset type (images vs videos).
        InputError: no file is new (and ``process_all`` is not set).
        NotSupportedYetError: ``enable_training`` (each run's model would differ, so its
            embeddings could not be compared with the datapool's).
    """
    if not worker.use_datapool:
        return listing
    if worker.enable_training:
        raise NotSupportedYetError(
            "worker_config.enable_training with use_datapool",
            "train once, then pass the checkpoint to every datapool run",
        )
    pool = load(listing.lightly_url)
    if pool is None:
        log.info("datapool: empty; every file is new")
        return dataclasses.replace(listing, datapool=EMPTY)
    if pool.dataset_type != listing.dataset_type:
        raise ConfigError(
            f"worker_config.use_datapool: the datapool in {_where(listing)} holds "
            f"{pool.dataset_type}, but this run's dataset type is {listing.dataset_type}. A "
            "datapool keeps its type: use another LIGHTLY location (or platform dataset) for "
            f"{listing.dataset_type}."
        )
    names, sizes, tokens = listing.names(), listing.sizes(), listing.tokens()
    process_all = worker.datasource.process_all
    keep = [
        i
        for i, n in enumerate(names)
        if process_all or pool.processed.get(n) != [_at(sizes, i), tokens[i]]
    ]
    if not keep:
        where = Location(listing.input_url).display
        raise InputError(
            f"worker_config.use_datapool: all {len(names)} files in {where} were processed "
            f"by earlier runs (datapool in {_where(listing)}); there is "
            "nothing new. Add files, or set worker_config.datasource.process_all: true to "
            "process them all again."
        )
    key = stage_key("list_input", listing.key, "datapool", pool.version, process_all)
    lightly = _store.lightly_location(listing.lightly_url)
    new = [names[i] for i in keep]
    n_input = len(new) + listing.n_filtered
    if _store.cached(lightly, key) is None:
        doc: dict[str, Any] = {
            "names": new,
            "sizes": [sizes[i] for i in keep] if sizes else None,
            "tokens": [tokens[i] for i in keep],
            "filtered": listing.filtered(),
            "refused": listing.refused(),
        }
        if listing.dataset_type == "videos":
            wanted = set(new)
            doc["videos"] = {
                name: scan.to_json()
                for name, scan in listing.videos().items()
                if name in wanted or wanted.intersection(scan.frame_names())
            }
        _store.write_json(lightly, f"{stage_dir(key)}/names.json", doc)
        _store.finish(
            lightly, key, {"n_input": n_input, "n_filtered": listing.n_filtered}, ["names.json"]
        )
    n_new = sum(1 for i in keep if pool.processed.get(names[i]) != [_at(sizes, i), tokens[i]])
    log.info(
        "datapool: %d of %d files are new%s; %d earlier picks count as selected",
        n_new,
        len(names),
        " (datasource.process_all: processing all of them)" if process_all else "",
        len(pool.selected),
    )
    return dataclasses.replace(
        listing, key=key, n_input=n_input, n_relevant=len(new), datapool=pool.version
    )


@dataclass(frozen=True)
class Preselected:
    """The selection's view of the datapool for one run's candidates.

    Attributes:
        names: The datapool's earlier picks that are not among the candidates (rows appended
            after the candidates' rows).
        embeddings: Their embeddings, ``(len(names), dim)``.
        rows: Row indices of every earlier pick in ``candidates + names``: the candidates'
            rows that were picked before (``process_all``, a changed file), then the appended
            rows. The engine counts them as chosen and never returns them.
        n_earlier: How many files earlier runs selected (the report's ``nPreselectedDatapool``).
    """

    names: list[str]
    embeddings: np.ndarray
    rows: np.ndarray
    n_earlier: int


def preselected(
    listing: Listing, candidates: list[str], dim: int, model: str
) -> Preselected | None:
    """The earlier picks the selection must count as chosen, or None without a datapool.

    Raises:
        ConfigError: the datapool's embeddings come from another model or have another size.
    """
    if not listing.datapool:
        return None
    pool = load(listing.lightly_url, listing.datapool)
    if pool is None:
        return Preselected([], np.zeros((0, dim), np.float32), np.zeros(0, np.int64), 0)
    emb = pool.embeddings()
    if pool.model != model or emb.shape[1] != dim:
        raise ConfigError(
            f"worker_config.use_datapool: the datapool in {_where(listing)} holds embeddings "
            f"from {pool.model} ({emb.shape[1]} values each), but this run embeds with {model} "
            f"({dim}): their distances cannot be compared. Use the datapool's model "
            "(lightly_config.model.name, the same checkpoint) or another LIGHTLY location."
        )
    row_of = {n: i for i, n in enumerate(candidates)}
    inside = [row_of[n] for n in pool.selected if n in row_of]
    outside = [j for j, n in enumerate(pool.selected) if n not in row_of]
    rows = np.asarray(inside + [len(candidates) + k for k in range(len(outside))], dtype=np.int64)
    return Preselected(
        [pool.selected[j] for j in outside],
        emb[outside].astype(np.float32, copy=False),
        rows,
        len(pool.selected),
    )


def update(
    listing: Listing, worker: WorkerConfig, embedded: Embedded, selected: Selected
) -> str | None:
    """Record a finished run in the datapool: the files it processed and its new picks.

    The flow calls it after the run's results are written. With ``use_datapool`` the run is
    added to the datapool it started from; without it the run starts the datapool afresh
    (as a first run on an empty platform dataset does), so a later ``use_datapool`` run
    builds on it. ``datasource.enable_datapool_update: false`` leaves the datapool as it
    is. The new version's files are written first and ``state.json`` last, so an
    interrupted update leaves the datapool as it was.

    Args:
        listing: The run's listing as :func:`restrict` returned it (the processed files).
        worker: ``worker_config``.
        embedded: The run's embeddings (the picks' rows are stored).
        selected: The run's picks (new ones only: earlier picks are never picked again).

    Returns:
        The new version, or None when nothing was written.
    """
    if not worker.datasource.enable_datapool_update:
        return None
    pool = load(listing.lightly_url, listing.datapool) if worker.use_datapool else None
    lightly = _store.lightly_location(listing.lightly_url)
    processed = dict(pool.processed) if pool else {}
    sizes = listing.sizes()
    for i, (name, token) in enumerate(zip(listing.names(), listing.tokens(), strict=True)):
        processed[name] = [_at(sizes, i), token]
    earlier = pool.selected if pool else []
    seen = set(earlier)
    idx = [int(i) for i in selected.indices()]
    names = embedded.filenames()
    rows = [i for i in idx if names[i] not in seen]
    parts = [pool.embeddings()] if pool and earlier else []
    # only the new picks' rows, read from the stored file (never the whole memory map)
    new_emb = read_rows(embedded.embeddings(), rows)
    emb = np.concatenate([*parts, new_emb], axis=0) if parts else new_emb
    doc = {
        "dataset_type": listing.dataset_type,
        "model": embedded.model,
        "processed": processed,
        "selected": [*earlier, *(names[i] for i in rows)],
    }
    version = digest(doc, hashlib.sha256(emb.tobytes()).hexdigest(), emb.shape)[:16]
    _store.write_npy(lightly, f"{DIR}/{version}/embeddings.npy", emb)
    _store.write_json(lightly, f"{DIR}/{version}/pool.json", doc)
    _store.write_json(lightly, STATE, {"version": version})  # last: the update is done
    _prune(lightly, keep={version, pool.version if pool else ""})
    log.info(
        "datapool: %d files processed, %d selected (%d new) -> version %s",
        len(processed),
        len(doc["selected"]),
        len(rows),
        version,
    )
    return version


def refusal(dataset_name: str, n_samples: int, worker_config: dict[str, Any] | None) -> str:
    """Why a platform run may not start on its dataset ("" when it may): Lightly's rule.

    Without ``use_datapool`` the dataset must be empty; once a run added samples, later runs
    add to them only with the datapool. The CLI never refuses (re-running a command into the
    same LIGHTLY location resumes it); the platform worker does, before the flow starts.
    """
    if n_samples == 0:
        return ""
    try:
        worker = WorkerConfig.model_validate(worker_config or {})
    except ValueError:  # the flow names what is wrong with the config
        return ""
    if worker.use_datapool:
        return ""
    return (
        f"The dataset {dataset_name!r} already has {n_samples} samples from earlier runs, and "
        "this run does not use the datapool. Set worker_config.use_datapool: true to add to "
        "the dataset (the run then processes only new files and keeps its picks apart from "
        "the earlier ones), or schedule the run on a new, empty dataset."
    )


def _prune(lightly: Location, keep: set[str]) -> None:
    """Delete datapool versions other than ``keep`` (the current and the previous one)."""
    if not lightly.exists(DIR):
        return
    for f in lightly.child(DIR).list_files(skip_dirs=()):
        parts = f.name.split("/")
        if len(parts) == 2 and parts[0] not in keep:
            lightly.remove(f"{DIR}/{f.name}")


def _at(sizes: list[int] | None, i: int) -> int | None:
    return sizes[i] if sizes else None


def _where(listing: Listing) -> str:
    return _store.lightly_location(listing.lightly_url).child(DIR).display
