"""Stage: pick the samples with the selection engine.

The engine works on rows in memory. Embeddings up to
:data:`thresher.selection.reduce.FULL_BYTES_MAX` (1 GiB of float32) are loaded whole; larger
ones (a million 1,280-dim rows are 5 GB) are projected on their first
:data:`~thresher.selection.reduce.REDUCED_DIM` principal components, a chunk of the
memory-mapped file at a time, and every strategy picks on the projection (query embeddings
and datapool rows are projected too), so no strategy loads the full rows. The run log says
so, with the share of the variance kept.

``thresher.*`` quality metadata comes from the corruption check's stored scores (``checked``)
rather than from decoding every image again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from thresher.caching import digest, stage_dir, stage_key
from thresher.config import SelectionConfig
from thresher.progress import ProgressFactory, null_progress
from thresher.stages import _store, datapool
from thresher.stages.embed import Embedded
from thresher.stages.list_input import Listing
from thresher.stages.near_duplicates import NearDuplicates
from thresher.stages.objects import Objects

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from thresher.selection.reduce import Pca
    from thresher.selection.report import Distribution
    from thresher.stages.corruption_check import CorruptionChecked

log = logging.getLogger("thresher.stages")


@dataclass(frozen=True)
class Selected:
    """The picks, as row indices into the embedded files, in pick order.

    Attributes:
        n_requested: What the selection config asked for (``n_samples``, or
            ``proportion_samples`` of the embedded files); more than ``n_selected`` when fewer
            files were usable or a threshold or stopping condition ended the pick early.
    """

    key: str
    lightly_url: str
    n_selected: int
    n_requested: int
    cached: str = ""
    #: ``worker_config.selected_sequence_length``: the picks are whole sequences of this many
    #: rows, consecutive in :meth:`indices` (``thresher.selection.sequences``).
    sequence_length: int = 1
    #: ``worker_config.use_datapool``: how many samples earlier runs selected (counted as
    #: chosen, never picked again; the report's ``nPreselectedDatapool``).
    n_preselected: int = 0

    def indices(self) -> np.ndarray:
        """Row indices into the embedded files, most wanted first."""
        lightly = _store.lightly_location(self.lightly_url)
        return _store.read_npy(lightly, f"{stage_dir(self.key)}/selected.npy")

    def distributions(self) -> list[Distribution]:
        """The report's per-input distributions (the selection→report contract)."""
        lightly = _store.lightly_location(self.lightly_url)
        from thresher.selection.report import load_distributions

        return load_distributions(
            _store.read_json(lightly, f"{stage_dir(self.key)}/distributions.json")
        )


def _inputs_fingerprint(listing: Listing, selection: SelectionConfig) -> str:
    """Fingerprint the user files this selection reads (and only those).

    A run writes tags itself, so fingerprinting all of ``.lightly/tags`` would make every
    re-run miss the cache; only the tags and files the strategies name count.
    """
    from thresher.config.selection import (
        EmbeddingsInput,
        MetadataInput,
        PredictionsInput,
        ScoresInput,
    )

    lightly = _store.lightly_location(listing.lightly_url)
    dirs: set[str] = set()
    files: set[str] = set()
    for entry in selection.effective_strategies():
        inp = entry.input
        if isinstance(inp, (ScoresInput, PredictionsInput)):
            dirs.add(f".lightly/predictions/{inp.task}")
        elif isinstance(inp, MetadataInput) and not inp.key.startswith("lightly."):
            dirs.add(".lightly/metadata")
        elif isinstance(inp, EmbeddingsInput):
            if inp.tag_name is not None:
                files.add(f".lightly/tags/{inp.tag_name}.txt")
            elif inp.query_embeddings is not None:
                files.add(f".lightly/embeddings/{inp.query_embeddings}")
    parts: list[object] = []
    for rel in sorted(dirs):
        if lightly.exists(rel):
            found = lightly.child(rel).list_files(skip_dirs=())
            parts.append([rel, [(f.name, f.size, f.token) for f in found]])
    for rel in sorted(files):
        parts.append([rel, digest(lightly.read_text(rel)) if lightly.exists(rel) else None])
    return digest(parts)


def _stored_quality(
    checked: CorruptionChecked | None, selection: SelectionConfig, names: list[str]
) -> dict[str, NDArray[np.float64]] | None:
    """The ``thresher.*`` quality scores the corruption check stored, per row of ``names``.

    None when no strategy reads them, or the check did not score every row (it was off, or
    datapool rows come from earlier runs): the engine then computes them.
    """
    from thresher.config.selection import MetadataInput

    wanted = any(
        isinstance(e.input, MetadataInput) and e.input.key.startswith("thresher.")
        for e in selection.effective_strategies()
    )
    if checked is None or not wanted:
        return None
    quality = checked.quality()
    if not quality or any(n not in quality for n in names):
        return None
    from thresher.config.selection import THRESHER_METADATA_KEYS

    return {
        k: np.fromiter((quality[n][k] for n in names), np.float64, len(names))
        for k in THRESHER_METADATA_KEYS
    }


def _project_queries(queries: dict[str, object], pca: Pca, dim: int) -> dict[str, object]:
    """Query embeddings (``(Q, dim)`` arrays) projected like the rows; tags (names) as they are."""
    out: dict[str, object] = {}
    for k, v in queries.items():
        if isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[1] == dim:
            out[k] = pca.transform(v)
        else:
            out[k] = v
    return out


def select(
    listing: Listing,
    embedded: Embedded,
    selection: SelectionConfig,
    *,
    seed: int,
    progress: ProgressFactory = null_progress,
    sequence_length: int = 1,
    objects: Objects | None = None,
    checked: CorruptionChecked | None = None,
    near: NearDuplicates | None = None,
) -> Selected:
    """Run the selection engine over the embeddings (and whatever inputs the config names).

    With ``sequence_length`` L > 1 the engine picks sequences of L samples
    (:mod:`thresher.selection.sequences`); the stored indices are their frames, in order.
    With ``objects`` (object level) the rows are crops, and SCORES and PREDICTIONS of the
    object task apply per crop (``docs/objects.md``). With ``checked`` (the corruption
    check), ``thresher.*`` metadata inputs use its stored quality scores. With ``near`` (the
    near-duplicate stage that ran on these embeddings), its neighbour graph spares COVERAGE
    its own search where it fits (:meth:`NearDuplicates.graph`); the picks are the same.
    """
    from thresher import selection as engine

    lightly = _store.lightly_location(listing.lightly_url)
    sel_json = selection.model_dump(mode="json", exclude_none=True)
    fingerprint = _inputs_fingerprint(listing, selection)
    seq = [sequence_length] if sequence_length > 1 else []  # L = 1 keeps the frame-level key
    key = stage_key("select", embedded.key, sel_json, seed, fingerprint, *seq)
    m = _store.cached(lightly, key)
    if m is not None:
        return Selected(
            key, listing.lightly_url, m["n_selected"], m["n_requested"], "cached",
            sequence_length=sequence_length,
            n_preselected=m.get("n_preselected", 0),
        )  # fmt: skip
    from thresher.selection.reduce import search_rows

    stored = embedded.embeddings()
    names = embedded.filenames()
    emb, pca = search_rows(stored, seed=seed)
    if pca is not None:
        log.info(
            "select: %d x %d embeddings are past the in-memory bound; selecting on their first "
            "%d principal components (%.1f%% of the variance)",
            stored.shape[0],
            stored.shape[1],
            pca.dim,
            100 * pca.explained,
        )
    del stored
    # -- datapool (use_datapool): earlier picks are rows after the candidates', counted as
    # chosen; the engine returns new picks only, all among the candidates --
    pre = datapool.preselected(listing, names, embedded.dim, embedded.model)
    row_names, row_emb = names, emb
    if pre is not None:
        pre_emb = pca.transform(pre.embeddings) if pca is not None else pre.embeddings
        row_names, row_emb = [*names, *pre.names], np.concatenate([emb, pre_emb])
    # --
    if objects is not None:  # -- object level: the object task's predictions per crop --
        inputs = objects.selection_inputs(row_emb, row_names)
    else:
        inputs = engine.gather_inputs(
            selection,
            input_url=listing.input_url,
            lightly_url=listing.lightly_url,
            filenames=row_names,
            embeddings=row_emb,
            known_metadata=_stored_quality(checked, selection, row_names),
        )
    if pca is not None:
        inputs["queries"] = _project_queries(inputs.get("queries", {}), pca, embedded.dim)
    # -- sequences (selected_sequence_length > 1): select over groups of L rows --
    groups = None
    pick_cfg, pick_inputs = selection, inputs
    pick_pre = pre.rows if pre is not None else None
    if sequence_length > 1:
        from thresher.selection import sequences

        groups = sequences.plan(names, sequence_length, videos=listing.dataset_type == "videos")
        pick_cfg = sequences.group_config(selection, sequence_length)
        # datapool rows count as chosen sequences (sequences.group_inputs)
        pick_inputs = sequences.group_inputs({**inputs, "preselected": pick_pre}, groups)
        pick_pre = pick_inputs.pop("preselected", None)
        log.info("%d candidate sequences of %d samples", len(groups), sequence_length)
    # --
    # -- the near-duplicate search's graph, where the rows are its own --
    same_rows = pca is None and pre is None and groups is None and objects is None
    graph = None
    if near is not None and near.embedded.key == embedded.key and same_rows:
        graph = near.graph()
    # --
    with progress("select", 1, unit="run") as advance:
        picks = engine.select(
            pick_cfg, seed=seed, **pick_inputs, preselected=pick_pre, neighbours=graph
        )
        idx = np.asarray(picks, dtype=np.int64)
        advance(1)
    # -- sequences: the picked groups' rows, group after group --
    if groups is not None:
        from thresher.selection import sequences

        idx = sequences.expand(idx, groups)
    # --
    dists = engine.report_distributions(selection, inputs, idx, seed)
    _store.write_npy(lightly, f"{stage_dir(key)}/selected.npy", idx)
    _store.write_json(
        lightly, f"{stage_dir(key)}/distributions.json", engine.report.dump_distributions(dists)
    )
    n_for = selection.n_for(len(names))
    requested = len(names) if n_for is None else n_for
    if groups is not None:  # sequences: whole sequences of the candidates
        n_groups = pick_cfg.n_for(len(groups))
        requested = (len(groups) if n_groups is None else n_groups) * sequence_length
    n_pre = pre.n_earlier if pre is not None else 0
    _store.finish(
        lightly,
        key,
        {"n_selected": len(idx), "n_requested": requested, "n_preselected": n_pre},
        ["selected.npy", "distributions.json"],
    )
    log.info("selected %d of %d samples", len(idx), len(names))
    return Selected(
        key, listing.lightly_url, len(idx), requested,
        sequence_length=sequence_length, n_preselected=n_pre,
    )  # fmt: skip
