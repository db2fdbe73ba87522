"""Stage ``write_results``: the run's results in the ``.lightly/`` layout.

Layout (PRODUCT.md)::

    .lightly/runs/<run_id>/ report.pdf report.json plots/ log.txt memlog.txt config.json
                            embeddings.csv embeddings.parquet corruptness_check_information.json
                            filenames/{selected,removed,duplicate,corrupt,filtered}.txt
    .lightly/tags/initial-tag.txt (first run), .lightly/tags/<run_id>.txt
    .lightly/thumbnails/<selected file name>_thumb.<ext> (``thresher.storage.thumbnails``)

Every file is written atomically. ``selected.txt`` lists the picks in pick order (the first line
is the most wanted), so a smaller labeling budget can take the first lines.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from thresher.stages import _store
from thresher.stages.corruption_check import CorruptionChecked
from thresher.stages.deduplicate import Deduplicated
from thresher.stages.embed import Embedded
from thresher.stages.list_input import Listing
from thresher.stages.select import Selected
from thresher.stages.train import Trained
from thresher.storage.location import Location

log = logging.getLogger("thresher.stages")

INITIAL_TAG = "initial-tag"


def run_dir(run_id: str) -> str:
    """The run folder, relative to the LIGHTLY root."""
    return f".lightly/runs/{run_id}"


@dataclass(frozen=True)
class Sizes:
    """How many input files ended where; they add up to ``n_input``."""

    n_input: int
    n_filtered: int
    n_corrupt: int
    n_duplicate: int
    n_removed: int
    n_selected: int

    def as_dict(self) -> dict[str, int]:
        """The counts by their report.json names."""
        return dict(self.__dict__)


def sizes(
    listing: Listing,
    checked: CorruptionChecked,
    deduplicated: Deduplicated,
    selected: Selected | None,
) -> Sizes:
    """Count where every input file went, and refuse a result whose counts do not add up."""
    n_selected = selected.n_selected if selected else 0
    s = Sizes(
        listing.n_input,
        listing.n_filtered,
        checked.n_corrupt,
        deduplicated.n_duplicate,
        deduplicated.n_kept - n_selected,
        n_selected,
    )
    total = s.n_filtered + s.n_corrupt + s.n_duplicate + s.n_removed + s.n_selected
    if total != s.n_input:  # a bug, never user error: refuse to write an inconsistent result
        raise RuntimeError(f"file accounting does not add up: {s} sums to {total}")
    return s


@dataclass
class RunOutputs:
    """What a run produced. Returned by the flow; everything in it is JSON-safe.

    Attributes:
        notes: Sentences the user must see (e.g. fewer usable images than asked for).
        cached: Stage name -> what came from the cache (``"cached"``, ``"224 of 500 images
            from cache"``), for the stages that did not compute everything anew.
    """

    run_id: str
    lightly: str
    run_dir: str
    sizes: dict[str, int]
    report_pdf: str
    report_json: str
    tags: list[str] = field(default_factory=list)
    peak_memory_mb: float = 0.0
    notes: list[str] = field(default_factory=list)
    cached: dict[str, str] = field(default_factory=dict)


def _embeddings_parquet(names: list[str], emb: np.ndarray) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = pa.array(emb.reshape(-1), type=pa.float32())
    vectors = pa.FixedSizeListArray.from_arrays(flat, emb.shape[1])
    table = pa.table({"filename": pa.array(names, type=pa.string()), "embedding": vectors})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _lines(names: list[str]) -> str:
    return "".join(f"{n}\n" for n in names)


def _thumbnails(input_url: str, lightly: Location, chosen: list[str]) -> None:
    """The selected images' thumbnails (the web page's gallery); INPUT is opened read-only."""
    from thresher.storage.thumbnails import write_thumbnails

    done = write_thumbnails(Location(input_url), lightly, chosen)
    for name, why in done.failed:
        log.warning("no thumbnail for %s: %s", name, why)
    log.info("thumbnails: %d of %d selected images", done.written, len(chosen))


def write_results(
    run_id: str,
    *,
    config: dict[str, Any],
    listing: Listing,
    checked: CorruptionChecked,
    deduplicated: Deduplicated,
    embedded: Embedded | None,
    selected: Selected | None,
    trained: Trained | None = None,
) -> RunOutputs:
    """Write filenames/*.txt, embeddings, config.json, the corruptness info, tags, thumbnails.

    With ``embedded`` and ``selected`` None (nothing was left to embed), only what the run
    found is written: the file lists, the corruptness info, duplicates and config.json.

    Args:
        run_id: The run folder's name.
        config: The run's config.json document (effective configs, versions, notes...); the
            file accounting and stage keys are added here.
        listing: The listed files.
        checked: The corruption check's findings.
        deduplicated: The kept files and duplicates.
        embedded: The embeddings, or None.
        selected: The picks, or None.
        trained: The training's checkpoint, copied into the run folder when given.
    """
    from thresher.storage.embeddings_csv import write_embeddings_csv

    lightly = _store.lightly_location(listing.lightly_url)
    base = run_dir(run_id)
    names = embedded.filenames() if embedded else []
    idx = selected.indices() if selected else np.zeros(0, dtype=np.int64)
    chosen = [names[i] for i in idx]
    chosen_set = set(chosen)
    removed = [n for n in names if n not in chosen_set]
    corrupt = checked.corrupt()
    duplicates = deduplicated.duplicates()
    s = sizes(listing, checked, deduplicated, selected)

    lightly.write_text(f"{base}/filenames/selected.txt", _lines(chosen))
    lightly.write_text(f"{base}/filenames/removed.txt", _lines(removed))
    lightly.write_text(f"{base}/filenames/duplicate.txt", _lines(sorted(duplicates)))
    lightly.write_text(f"{base}/filenames/corrupt.txt", _lines(sorted(corrupt)))
    lightly.write_text(f"{base}/filenames/filtered.txt", _lines(listing.filtered()))
    _store.write_json(
        lightly,
        f"{base}/corruptness_check_information.json",
        # not_listed: files whose names no output can hold (line breaks, not UTF-8)
        {"corrupt_samples": corrupt, "not_listed": listing.refused()},
    )
    _store.write_json(lightly, f"{base}/duplicates.json", {"duplicates": duplicates})
    if embedded is not None:
        emb = embedded.embeddings()
        write_embeddings_csv(lightly, names, emb, f"{base}/embeddings.csv")
        lightly.write_bytes(f"{base}/embeddings.parquet", _embeddings_parquet(names, emb))

    stages = (listing, checked, deduplicated, trained, embedded, selected)
    doc: dict[str, Any] = {
        "run_id": run_id,
        "input": Location(listing.input_url).display,
        "lightly": lightly.display,
        "input_fingerprint": listing.key,
        "stage_keys": {x.key.rsplit("-", 1)[0]: x.key for x in stages if x is not None},
        "sizes": s.as_dict(),
        "training": trained.summary if trained else None,
        **config,
    }
    lightly.write_text(f"{base}/config.json", json.dumps(doc, indent=2, ensure_ascii=False))
    if trained is not None:
        lightly.write_bytes(f"{base}/checkpoint.ckpt", lightly.read_bytes(trained.checkpoint_rel))

    tags: list[str] = []
    if selected is not None:
        tags = [run_id]
        if not lightly.exists(f".lightly/tags/{INITIAL_TAG}.txt"):
            tags.insert(0, INITIAL_TAG)
        for tag in tags:
            lightly.write_text(f".lightly/tags/{tag}.txt", _lines(chosen))
    if chosen:
        _thumbnails(listing.input_url, lightly, chosen)
    return RunOutputs(
        run_id=run_id,
        lightly=lightly.display,
        run_dir=lightly.child(base).display,
        sizes=s.as_dict(),
        report_pdf=lightly.child(f"{base}/report.pdf").display,
        report_json=lightly.child(f"{base}/report.json").display,
        tags=tags,
    )
