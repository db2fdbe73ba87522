"""Stage ``write_results``: the run's results in the ``.lightly/`` layout.

Layout (PRODUCT.md)::

    .lightly/runs/<run_id>/ report.pdf report.json plots/ log.txt memlog.txt config.json
                            embeddings.csv embeddings.parquet corruptness_check_information.json
                            sequence_information.json (selected_sequence_length > 1)
                            near_duplicates.json (docs/selection.md, "Near duplicates")
                            filenames/{selected,removed,duplicate,corrupt,filtered}.txt
    .lightly/tags/initial-tag.txt (first run), .lightly/tags/<run_id>.txt
    .lightly/thumbnails/<selected file name>_thumb.<ext> (``thresher.storage.thumbnails``)
    .lightly/frames/<frame name>   (a video run: the selected frames, ``output_image_format``)
    .lightly/crops/<task>/<crop name>  (object level: the selected crops, ``docs/objects.md``)
    .lightly/runs/<run_id>/filenames/{selected,removed}_crops.txt  (object level)

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
from thresher.stages.near_duplicates import NearDuplicates
from thresher.stages.objects import Objects
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
    #: ``use_datapool``: earlier runs' picks (not input of this run, not in the sum).
    n_preselected_datapool: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts by their report.json names."""
        return dict(self.__dict__)


def corrupt_files(
    checked: CorruptionChecked, embedded: Embedded | None, objects: Objects | None = None
) -> dict[str, str]:
    """Every corrupt file with its reason.

    The corruption check's, and the files that could not be read any more when embedding
    (changed or vanished since the check).
    """
    corrupt = checked.corrupt()
    if embedded is not None:
        broken = embedded.broken()
        if objects is not None and broken:  # object level: a crop that failed is its image's
            crops = objects.crops()
            broken = {crops[n][0]: why for n, why in broken.items()}
        corrupt.update(broken)
    return corrupt


def sizes(
    listing: Listing,
    checked: CorruptionChecked,
    deduplicated: Deduplicated,
    embedded: Embedded | None,
    selected: Selected | None,
    objects: Objects | None = None,
) -> Sizes:
    """Count where every input file went, and refuse a result whose counts do not add up.

    With ``objects`` (object level) the embedded rows are crops; an image counts as selected
    when one of its crops is (``docs/objects.md``).
    """
    n_selected = selected.n_selected if selected else 0
    n_broken = embedded.n_broken if embedded else 0
    if objects is not None and embedded is not None and selected is not None:
        chosen = selected_images(embedded, selected, objects)
        n_selected = len(chosen)
        n_broken = len(set(objects.images_of(list(embedded.broken()))) - set(chosen))
    s = Sizes(
        listing.n_input,
        listing.n_filtered,
        checked.n_corrupt + n_broken,
        deduplicated.n_duplicate,
        deduplicated.n_kept - n_broken - n_selected,
        n_selected,
        n_preselected_datapool=selected.n_preselected if selected else 0,
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
        video_sizes: A video run's video-level counts (:func:`video_sizes`); None for images.
        object_sizes: An object-level run's counts (``Objects.sizes``); None otherwise.
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
    video_sizes: dict[str, int] | None = None
    object_sizes: dict[str, Any] | None = None


def _write_embeddings_parquet(
    lightly: Location, rel: str, names: list[str], emb: np.ndarray
) -> None:
    """``filename`` and ``embedding`` (fixed-size float32 lists), one row group per chunk.

    zstd without dictionaries: the floats and the filenames are (nearly) all distinct, so
    Parquet's default dictionary pages were built and dropped for every chunk; at 10,000 x 1,280
    that took 0.65 s for 33 MB with snappy, against 0.16 s for 29 MB (the run writes this
    beside its report, whose cores it shares).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from thresher.storage.embeddings_npy import iter_chunks, streamed_write

    d = int(emb.shape[1])
    schema = pa.schema([("filename", pa.string()), ("embedding", pa.list_(pa.float32(), d))])
    with (
        streamed_write(lightly, rel) as fh,
        pq.ParquetWriter(fh, schema, use_dictionary=False, compression="zstd") as writer,
    ):
        for a, chunk in iter_chunks(emb):
            flat = pa.array(chunk.reshape(-1), type=pa.float32())
            vectors = pa.FixedSizeListArray.from_arrays(flat, d)
            writer.write_table(
                pa.table(
                    {
                        "filename": pa.array(names[a : a + len(chunk)], type=pa.string()),
                        "embedding": vectors,
                    },
                    schema=schema,
                )
            )


def _lines(names: list[str]) -> str:
    return "".join(f"{n}\n" for n in names)


def video_sizes(
    listing: Listing, checked: CorruptionChecked, chosen: list[str]
) -> dict[str, int] | None:
    """A video run's video-level counts (None for images), by report.json names.

    ``nInput`` videos listed (``nFiltered`` of them dropped by relevant filenames),
    ``nCorrupt`` excluded whole (do not open, or broken frames at the threshold),
    ``nFrames`` frames of the other videos, ``nCorruptFrames`` of those broken,
    ``nSelectedFrames`` frames selected, from ``nVideosWithSelectedFrames`` videos.
    """
    if listing.dataset_type != "videos":
        return None
    from thresher.storage.video import parse_frame_name

    videos = checked.videos()
    picked = {p[0] for n in chosen if (p := parse_frame_name(n)) is not None}
    frames = sum(v["n_frames"] for v in videos.values() if v["corrupt"] is None)
    return {
        "nInput": len(videos) + listing.n_filtered,
        "nFiltered": listing.n_filtered,
        "nCorrupt": sum(1 for v in videos.values() if v["corrupt"] is not None),
        "nFrames": frames,
        "nCorruptFrames": sum(v["n_broken"] for v in videos.values() if v["corrupt"] is None),
        "nSelectedFrames": len(chosen),
        "nVideosWithSelectedFrames": len(picked),
    }


#: ``worker_config.output_image_format`` -> Pillow's format name.
_PIL_FORMATS = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "bmp": "BMP",
    "webp": "WEBP",
    "tif": "TIFF",
    "tiff": "TIFF",
}


def frame_file(name: str, image_format: str) -> str:
    """Where a selected frame is written, relative to LIGHTLY: its name under ``.lightly/frames/``.

    The frame name ends in ``.png`` (Lightly's name); another ``output_image_format``
    replaces that suffix, e.g. ``.lightly/frames/clip-07-mp4.jpg``.
    """
    stem = name.removesuffix(".png")
    return f".lightly/frames/{stem}.{image_format}"


def write_frames(input_url: str, lightly: Location, chosen: list[str], image_format: str) -> None:
    """Write each selected frame as an image into ``.lightly/frames/`` (atomically).

    Each video is read once, in frame order (:func:`thresher.storage.video.read_frames`);
    one frame is in memory at a time.
    """
    from thresher.storage.video import read_frames

    fmt = _PIL_FORMATS[image_format]
    for name, image in read_frames(Location(input_url), chosen):
        buf = io.BytesIO()
        image.save(buf, format=fmt)
        lightly.write_bytes(frame_file(name, image_format), buf.getvalue())
    log.info("frames: %d selected frames written to .lightly/frames/", len(chosen))


def _thumbnails(input_url: str, lightly: Location, chosen: list[str]) -> int:
    """The selected images' thumbnails (the web page's gallery); INPUT is opened read-only."""
    from thresher.storage.thumbnails import write_thumbnails

    done = write_thumbnails(Location(input_url), lightly, chosen)
    for name, why in done.failed:
        log.warning("no thumbnail for %s: %s", name, why)
    log.info("thumbnails: %d of %d selected images", done.written, len(chosen))
    return done.written


def selected_images(
    embedded: Embedded, selected: Selected, objects: Objects | None = None
) -> list[str]:
    """The selected files; at object level the images holding a selected crop."""
    names = embedded.filenames()
    chosen = [names[i] for i in selected.indices()]
    return objects.images_of(chosen) if objects is not None else chosen


def thumbnails(
    listing: Listing,
    embedded: Embedded | None,
    selected: Selected | None,
    objects: Objects | None = None,
) -> int:
    """Write the selected images' thumbnails (the web page's gallery); how many were written.

    They need only the selection, so the flow writes them beside the report. A video run's
    thumbnails are of the frames :func:`write_results` writes: it makes them there.
    """
    if listing.dataset_type == "videos" or embedded is None or selected is None:
        return 0
    chosen = selected_images(embedded, selected, objects)
    if not chosen:
        return 0
    return _thumbnails(listing.input_url, _store.lightly_location(listing.lightly_url), chosen)


def write_sequence_information(
    listing: Listing, lightly: Location, base: str, chosen: list[str], length: int
) -> None:
    """``sequence_information.json`` (Lightly's format) for a run with sequences (L > 1).

    A video run: ``[{video_name, frame_names, frame_timestamps_pts, frame_timestamps_sec,
    frame_indices}]``, the timestamps as the listing decoded them (a listing that counted
    frames by metadata did not decode: those videos are decoded here); an image run:
    ``[{filenames}]``. One entry per selected sequence, in pick order.
    """
    from thresher.selection.sequences import sequence_information
    from thresher.storage.video import parse_frame_name, read_timestamps

    timestamps = None
    if listing.dataset_type == "videos":
        scans = listing.videos()
        inp = Location(listing.input_url)
        for video in {p[0] for n in chosen if (p := parse_frame_name(n)) is not None}:
            scan = scans.get(video)
            if scan is not None and not scan.pts:
                scans[video] = read_timestamps(inp, scan)

        def timestamps(video: str, index: int) -> tuple[int | None, float | None]:
            scan = scans.get(video)
            return scan.timestamps(index) if scan is not None else (None, None)

    doc = sequence_information(
        chosen, length, videos=listing.dataset_type == "videos", timestamps=timestamps
    )
    _store.write_json(lightly, f"{base}/sequence_information.json", doc)
    log.info("sequences: %d selected sequences of %d", len(doc), length)


def write_crops(input_url: str, lightly: Location, objects: Objects, chosen: list[str]) -> None:
    """Write each selected crop as a PNG into ``.lightly/crops/<task>/`` (atomically).

    The crops are cut image by image, so each image is decoded once.
    """
    from thresher.storage.crops import CropReader, crop_file

    crops = objects.crops()
    reader = CropReader(Location(input_url), crops)
    for name in sorted(chosen, key=lambda n: crops[n][0]):
        buf = io.BytesIO()
        reader.read_crop(name).save(buf, format="PNG")
        lightly.write_bytes(crop_file(objects.task, name), buf.getvalue())
    log.info("crops: %d selected crops written to .lightly/crops/%s/", len(chosen), objects.task)


def embedding_files(listing: Listing, run_id: str, embedded: Embedded | None) -> None:
    """Write the run's ``embeddings.csv`` (Lightly's format) and ``embeddings.parquet``.

    They need only the embeddings, so the flow writes them beside the report. Both are written
    a chunk of rows at a time from the stored embeddings (a memory map); past the in-memory
    bound the CSV is not written, with a warning.
    """
    if embedded is None:
        return
    from thresher.selection.reduce import needs_reduction
    from thresher.storage.embeddings_csv import write_embeddings_csv_rows

    lightly = _store.lightly_location(listing.lightly_url)
    base = run_dir(run_id)
    names = embedded.filenames()
    emb = embedded.embeddings()
    if needs_reduction(*emb.shape):  # past 1 GiB of rows: a CSV would be 2.5x that
        log.warning(
            "embedding_files: %d x %d embeddings are past the in-memory bound; "
            "embeddings.parquet holds them, embeddings.csv (Lightly's format, about %.0f GB "
            "here) is not written",
            emb.shape[0],
            emb.shape[1],
            emb.shape[0] * emb.shape[1] * 10 / 1e9,
        )
    else:
        write_embeddings_csv_rows(lightly, f"{base}/embeddings.csv", names, emb)
    _write_embeddings_parquet(lightly, f"{base}/embeddings.parquet", names, emb)


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
    objects: Objects | None = None,
    near: NearDuplicates | None = None,
) -> RunOutputs:
    """Write filenames/*.txt, config.json, the corruptness info, duplicates, tags, frames.

    The embeddings files (:func:`embedding_files`) and the thumbnails of an image run
    (:func:`thumbnails`) are written beside the report; a video run's thumbnails, of the frames
    written here, are made here.

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
        objects: An object-level run's crops: the rows are crops, ``selected.txt`` and the
            tags list the images holding selected crops, ``selected_crops.txt`` the crops.
        near: The near-duplicate groups, written as ``near_duplicates.json``; when they were
            removed, ``deduplicated`` already counts them as duplicates.
    """
    lightly = _store.lightly_location(listing.lightly_url)
    base = run_dir(run_id)
    names = embedded.filenames() if embedded else []
    idx = selected.indices() if selected else np.zeros(0, dtype=np.int64)
    chosen = [names[i] for i in idx]
    chosen_set = set(chosen)
    removed = [n for n in names if n not in chosen_set]
    corrupt = corrupt_files(checked, embedded, objects)
    duplicates = deduplicated.duplicates()
    s = sizes(listing, checked, deduplicated, embedded, selected, objects)
    chosen_crops: list[str] = []
    object_sizes = None
    if objects is not None:  # -- object level: the rows are crops; the lists below images --
        chosen_crops, removed_crops = chosen, removed
        lightly.write_text(f"{base}/filenames/selected_crops.txt", _lines(chosen_crops))
        lightly.write_text(f"{base}/filenames/removed_crops.txt", _lines(removed_crops))
        chosen = objects.images_of(chosen_crops)
        chosen_set = set(chosen)
        removed = [n for n in objects.images() if n not in chosen_set and n not in corrupt]
        object_sizes = objects.sizes(chosen_crops)

    lightly.write_text(f"{base}/filenames/selected.txt", _lines(chosen))
    lightly.write_text(f"{base}/filenames/removed.txt", _lines(removed))
    lightly.write_text(f"{base}/filenames/duplicate.txt", _lines(sorted(duplicates)))
    lightly.write_text(f"{base}/filenames/corrupt.txt", _lines(sorted(corrupt)))
    lightly.write_text(f"{base}/filenames/filtered.txt", _lines(listing.filtered()))
    info: dict[str, Any] = {"corrupt_samples": corrupt, "not_listed": listing.refused()}
    if listing.dataset_type == "videos":
        # per video: frames, broken frames, and why the whole video is excluded (or null)
        info["videos"] = checked.videos()
    _store.write_json(
        lightly,
        f"{base}/corruptness_check_information.json",
        # not_listed: files whose names no output can hold (line breaks, not UTF-8)
        info,
    )
    _store.write_json(lightly, f"{base}/duplicates.json", {"duplicates": duplicates})
    if near is not None:
        _store.write_json(lightly, f"{base}/near_duplicates.json", near.document())
    if selected is not None and selected.sequence_length > 1:
        write_sequence_information(listing, lightly, base, chosen, selected.sequence_length)
    stages = (listing, checked, deduplicated, trained, embedded, near, selected)
    doc: dict[str, Any] = {
        "run_id": run_id,
        "input": Location(listing.input_url).display,
        "lightly": lightly.display,
        "input_fingerprint": listing.key,
        "stage_keys": {x.key.rsplit("-", 1)[0]: x.key for x in stages if x is not None},
        "sizes": s.as_dict(),
        **({"video_sizes": vs} if (vs := video_sizes(listing, checked, chosen)) else {}),
        **({"object_sizes": object_sizes} if object_sizes else {}),
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
    if objects is not None and objects.upload:
        write_crops(listing.input_url, lightly, objects, chosen_crops)
    if chosen and listing.dataset_type == "videos":
        image_format = str(config.get("worker_config", {}).get("output_image_format", "png"))
        write_frames(listing.input_url, lightly, chosen, image_format)
        if image_format == "png":  # the thumbnails of the frames just written
            _thumbnails(lightly.child(".lightly/frames").url, lightly, chosen)
    return RunOutputs(
        run_id=run_id,
        lightly=lightly.display,
        run_dir=lightly.child(base).display,
        sizes=s.as_dict(),
        report_pdf=lightly.child(f"{base}/report.pdf").display,
        report_json=lightly.child(f"{base}/report.json").display,
        tags=tags,
        video_sizes=video_sizes(listing, checked, chosen),
        object_sizes=object_sizes,
    )
