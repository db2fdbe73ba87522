"""Stage ``near_duplicates``: find groups of near-identical images in embedding space.

Runs between ``embed`` and ``select``. It always finds the groups
(:func:`thresher.selection.near_duplicates.find_near_duplicates`: cosine distance below
``worker_config.near_duplicate_threshold``) and stores them as ``near_duplicates.json``
(``{"threshold", "metric", "removed", "groups": [[kept, dup, ...]], "distances"}``, names, the
kept file first), which the report summarises and write_results copies into the run folder.

With ``worker_config.remove_near_duplicates`` the other members of each group are removed
before selection: the stage then stores the remaining rows (``embeddings.npy``,
``filenames.json``) and a deduplication record that counts them as duplicates
(``deduplicated.json``: exact duplicates plus near ones), and hands both on as the
:class:`~thresher.stages.embed.Embedded` and :class:`~thresher.stages.deduplicate.Deduplicated`
the later stages see. So the accounting stays selected + removed + duplicate + corrupt +
filtered = listed, and ``filenames/duplicate.txt`` lists them. Off (the default), the inputs go
on unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from thresher.caching import stage_dir, stage_key
from thresher.config import WorkerConfig
from thresher.errors import ConfigError
from thresher.selection.knn import NeighbourGraph
from thresher.stages import _store
from thresher.stages.deduplicate import FILE as DEDUP_FILE
from thresher.stages.deduplicate import Deduplicated
from thresher.stages.embed import Embedded
from thresher.storage.embeddings_npy import CHUNK_ROWS, read_rows

log = logging.getLogger("thresher.stages")

FILE = "near_duplicates.json"
#: The shared neighbour graph (:meth:`NearDuplicates.graph`).
GRAPH_DISTANCES, GRAPH_INDICES = "neighbour_distances.npy", "neighbour_indices.npy"
#: Principal components the near-duplicate search keeps past the in-memory bound: a
#: projection only shortens distances and every candidate is checked on the full rows, so
#: fewer dimensions cost extra checks; a pair is missed only where more than k other rows come
#: closer in the projection. 64 halves the index (and the search) of 128.
SEARCH_DIM = 64


@dataclass(frozen=True)
class NearDuplicates:
    """The near-duplicate groups, and what the later stages work on.

    Attributes:
        n_groups: Groups of two or more near-identical images.
        n_near_duplicates: Images in them other than the kept one.
        removed: Whether those were removed before selection.
        embedded: The embeddings selection sees (without the near duplicates when removed).
        deduplicated: The deduplication record later stages count with (near duplicates
            added to the duplicates when removed).
    """

    key: str
    lightly_url: str
    n_groups: int
    n_near_duplicates: int
    removed: bool
    embedded: Embedded
    deduplicated: Deduplicated
    cached: str = ""
    #: Whether the stage stored its neighbour graph (:meth:`graph`).
    has_graph: bool = False

    def document(self) -> dict[str, Any]:
        """The stored ``near_duplicates.json``."""
        lightly = _store.lightly_location(self.lightly_url)
        doc: dict[str, Any] = _store.read_json(lightly, f"{stage_dir(self.key)}/{FILE}")
        return doc

    def graph(self) -> NeighbourGraph | None:
        """The exact neighbour graph of :attr:`embedded`'s rows, for the selection to reuse.

        Stored when the search ran on the stored rows themselves (unit rows, in memory, at
        most the COVERAGE reference size) and none were removed; None otherwise.
        """
        if not self.has_graph:
            return None
        lightly = _store.lightly_location(self.lightly_url)
        base = stage_dir(self.key)
        return NeighbourGraph(
            _store.read_npy(lightly, f"{base}/{GRAPH_DISTANCES}"),
            _store.read_npy(lightly, f"{base}/{GRAPH_INDICES}").astype(np.int64),
        )


def refuse_near_duplicate_removal(worker: WorkerConfig, object_level: bool) -> None:
    """Refuse ``remove_near_duplicates`` where removing rows would break the run's units.

    Raises:
        ConfigError: With ``selected_sequence_length`` > 1 (a sequence would lose frames) or
            at object level (the rows are crops, counted per image).
    """
    if not worker.remove_near_duplicates:
        return
    if worker.selected_sequence_length > 1:
        raise ConfigError(
            "worker_config.remove_near_duplicates cannot be combined with "
            f"selected_sequence_length {worker.selected_sequence_length}: removing frames would "
            "break the sequences. Set remove_near_duplicates to false (near duplicates are "
            "still reported), or selected_sequence_length to 1."
        )
    if object_level:
        raise ConfigError(
            "worker_config.remove_near_duplicates is not supported at object level (the "
            "samples are crops): set it to false."
        )


def near_duplicates(
    embedded: Embedded,
    deduplicated: Deduplicated,
    *,
    threshold: float,
    remove: bool = False,
) -> NearDuplicates:
    """Find (and with ``remove``, drop) the near duplicates among the embedded images.

    Args:
        embedded: The embed stage's output.
        deduplicated: The deduplicate stage's output (the exact duplicates).
        threshold: ``worker_config.near_duplicate_threshold`` (cosine distance).
        remove: ``worker_config.remove_near_duplicates``.
    """
    from thresher.selection.near_duplicates import MAX_CHECKED_PAIRS, find_near_duplicates

    key = stage_key("near_duplicates", embedded.key, deduplicated.key, threshold, remove)
    lightly = _store.lightly_location(embedded.lightly_url)
    base = stage_dir(key)
    m = _store.cached(lightly, key)
    if m is not None:
        return _summary(key, embedded, deduplicated, m, "cached")
    from thresher.selection.reduce import search_rows

    emb = embedded.embeddings()
    names = embedded.filenames()
    rows, pca = search_rows(emb, normalize=True, dim=SEARCH_DIM)
    if pca is not None:  # past the in-memory bound: candidates on a projection, checked in full
        log.info(
            "near duplicates: %d x %d embeddings searched on their first %d principal "
            "components (%.1f%% of the variance); candidate pairs checked on the full rows",
            emb.shape[0],
            emb.shape[1],
            pca.dim,
            100 * pca.explained,
        )
    graph = _shared_graph(rows) if pca is None else None
    found = find_near_duplicates(
        rows, threshold, full=emb if pca is not None else None, graph=graph
    )
    del rows
    if found.n_unchecked:
        log.warning(
            "near duplicates: %d candidate pairs of the projected search were not checked on the "
            "full rows (at most %d are, the closest first); groups may be missing from them",
            found.n_unchecked,
            MAX_CHECKED_PAIRS,
        )
    doc = {
        "threshold": threshold,
        "metric": "cosine distance",
        "removed": remove,
        **({"unchecked_pairs": found.n_unchecked} if found.n_unchecked else {}),
        "groups": [[names[i] for i in g] for g in found.groups],
        "distances": found.distances,
    }
    _store.write_json(lightly, f"{base}/{FILE}", doc)
    files = [FILE]
    if remove and found.groups:
        dup_rows = found.duplicates
        keep = np.array([i for i in range(len(names)) if i not in dup_rows], dtype=np.int64)
        _store.write_npy_rows(
            lightly,
            f"{base}/embeddings.npy",
            (len(keep), int(emb.shape[1])),
            (read_rows(emb, keep[a : a + CHUNK_ROWS]) for a in range(0, len(keep), CHUNK_ROWS)),
        )
        _store.write_json(lightly, f"{base}/filenames.json", [names[i] for i in keep])
        if embedded.n_broken:
            _store.write_json(lightly, f"{base}/broken.json", embedded.broken())
            files.append("broken.json")
        near = {names[r]: names[k] for r, k in dup_rows.items()}
        kept = [n for n in deduplicated.kept() if n not in near]
        duplicates = {**deduplicated.duplicates(), **near}
        _store.write_json(lightly, f"{base}/{DEDUP_FILE}", {"kept": kept, "duplicates": duplicates})
        files += ["embeddings.npy", "filenames.json", DEDUP_FILE]
    if graph is not None and "filenames.json" not in files:  # the selection's rows: these
        _store.write_npy(lightly, f"{base}/{GRAPH_DISTANCES}", graph.distances)
        _store.write_npy(lightly, f"{base}/{GRAPH_INDICES}", graph.indices.astype(np.int32))
        files += [GRAPH_DISTANCES, GRAPH_INDICES]
    summary = {"n_groups": len(found.groups), "n_near_duplicates": found.n_duplicates}
    _store.finish(lightly, key, summary, files)
    log.info(
        "near duplicates (cosine distance < %g): %d groups, %d images%s",
        threshold,
        len(found.groups),
        found.n_duplicates,
        " removed before selection" if remove and found.groups else "",
    )
    return _summary(key, embedded, deduplicated, {**summary, "files": files}, "")


def _shared_graph(rows: np.ndarray) -> NeighbourGraph | None:
    """One exact search for the near duplicates and the COVERAGE selection, where both can use it.

    The selection searches the stored rows as they are, and the near-duplicate search their
    unit-length copies: one graph serves both when the rows are unit already (normalised
    embeddings, the default) and COVERAGE would search all of them (at most its reference
    size). It is as wide as COVERAGE's default neighbourhood; a wider one (a small
    ``n_samples``) is searched by the selection itself. At 10,000 x 1,280 each search took
    1.2 s on 2 cores, at any width up to 64.
    """
    from thresher.selection.coverage import NEIGHBORS, REFERENCE_SIZE
    from thresher.selection.knn import neighbour_graph
    from thresher.selection.near_duplicates import DEFAULT_K, EXACT_MAX_ROWS, unit_rows

    n = len(rows)
    if n < 2 or n > min(REFERENCE_SIZE, EXACT_MAX_ROWS) or unit_rows(rows) is not rows:
        return None
    return neighbour_graph(rows, max(DEFAULT_K + 1, NEIGHBORS))


def _summary(
    key: str, embedded: Embedded, deduplicated: Deduplicated, m: dict[str, Any], cached: str
) -> NearDuplicates:
    """The stage's summary from its manifest."""
    n = int(m["n_near_duplicates"])
    removed = "filenames.json" in m["files"]
    emb, dedup = embedded, deduplicated
    if removed:
        emb = Embedded(
            key,
            embedded.lightly_url,
            embedded.n - n,
            embedded.dim,
            embedded.model,
            embedded.description,
            embedded.cached,
            embedded.n_broken,
        )
        dedup = Deduplicated(
            key, deduplicated.lightly_url, deduplicated.n_duplicate + n, deduplicated.n_kept - n
        )
    return NearDuplicates(
        key,
        embedded.lightly_url,
        int(m["n_groups"]),
        n,
        removed,
        emb,
        dedup,
        cached,
        has_graph=GRAPH_INDICES in m["files"],
    )
