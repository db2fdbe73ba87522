"""Build the run report: report.json, report.pdf and plots/*.png in one directory.

Example:
    >>> report = build_report(inputs, pathlib.Path("out"))  # doctest: +SKIP
    >>> sizes = report["generalInformation"]["datasetInformation"]["datasetSizes"]  # doctest: +SKIP
    >>> sizes["nSelected"]  # doctest: +SKIP
    50
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from thresher.reports import figures
from thresher.reports.cost import annotation_savings
from thresher.reports.distances import distance_histograms
from thresher.reports.findings import add_findings
from thresher.reports.neighbors import embedding_statistics, selected_removed_examples
from thresher.reports.pca import pca_2d
from thresher.reports.pdf import write_pdf
from thresher.reports.report_v2 import N_EXAMPLE_IMAGES as V2_EXAMPLE_IMAGES
from thresher.reports.report_v2 import report_v2
from thresher.reports.sizes import dataset_sizes
from thresher.reports.stats import is_normalized, subsample
from thresher.reports.umap_2d import (
    PendingMaps,
    clean_neighbors,
    start_umap,
    umap_embedding_data,
)
from thresher.reports.video_timeline import VideoTimeline, video_timeline_figure
from thresher.reports.vs_random import ClassLabels, selection_vs_random
from thresher.selection.report import (
    CategoricalDistribution,
    Distribution,
    dump_distributions,
)

#: Most input / selected points stored (and drawn) in the PCA map.
MAX_SCATTER_POINTS = 5000

#: Most duplicate pairs listed in report.json (the full list is in filenames/duplicate.txt).
MAX_DUPLICATE_EXAMPLES = 1000

#: Selected images shown as thumbnails on the first page (the first picks, in pick order).
MAX_GRID_IMAGES = 30

REPORT_FORMAT_VERSION = 2


@dataclass
class ReportInputs:
    """Everything the report needs from a finished run.

    Attributes:
        run_id: The run's id.
        started_at: When the run started, timezone-aware (a naive time is taken as UTC).
        ended_at: When the report stage started; the report adds its own time to it.
        stage_seconds: Seconds per step in run order, e.g. ``{"startup": 3.1, "embed": 40.0}``.
        versions: Package and model versions, e.g. ``{"thresher": "0.1.0"}``.
        config: ``{"worker_config", "selection_config", "lightly_config"}``, JSON-safe.
        input_url: The INPUT location, already scrubbed of secrets.
        sizes: ``n_input``, ``n_filtered``, ``n_corrupt``, ``n_duplicate``, ``n_removed``,
            ``n_selected``; they must add up.
        filenames: The embedded files (after corrupt/duplicate removal), relative names.
        embeddings: (len(filenames), D) float array.
        selected: 1-D int indices into ``filenames``, in pick order.
        corrupt: Corrupt filename -> reason.
        duplicates: Duplicate filename -> the kept original's filename.
        load_image: Opens a file by relative name for thumbnails; None for no thumbnails.
        distributions: The selection's input distributions (``report_distributions``).
        seed: Seed of every subsample in the report.
        n_example_images: Number of selected-vs-removed pairs shown.
        memory_requirement_in_GB: Memory bound of the pairwise-distance block.
        strategies: The effective selection strategies, for display.
        device: What computed, e.g. ``"CPU: Intel Xeon (2 cores)"``.
        command_line: How the run was started.
        notes: Sentences the user must see on page 1.
        model_description: The model that embedded, and why that one.
        video_sizes: A video run's video-level counts (``videoLevelSizes``); None for images.
        video_timeline: A video run's timeline rows (``show_video_sampling_timeline``), or None.
        labeling_usd_per_image: Labeling price overrides by task type (``cost.py``).
        labeling_seconds_per_image: Labeling time overrides by task type (``cost.py``).
        umap_neighbors: ``n_neighbors`` of the UMAP maps; empty for none.
        class_labels: Predicted classes per classification / detection task, for the
            class measures of ``selectionVsRandom``.
        object_sizes: An object-level run's counts (``objectLevelSizes``); then ``filenames``,
            ``embeddings`` and ``selected`` are the crops, and ``sizes`` count images.
    """

    run_id: str
    started_at: dt.datetime
    ended_at: dt.datetime
    stage_seconds: dict[str, float]
    versions: dict[str, str]
    config: dict[str, Any]
    input_url: str
    sizes: dict[str, int]
    filenames: list[str]
    embeddings: NDArray[Any]
    selected: NDArray[np.integer[Any]]
    corrupt: dict[str, str]
    duplicates: dict[str, str]
    load_image: Callable[[str], Image.Image] | None
    distributions: list[Distribution]
    seed: int = 0
    n_example_images: int = 6
    memory_requirement_in_GB: float = 2.0
    strategies: list[dict[str, Any]] = field(default_factory=list)
    device: str = ""
    command_line: str = ""
    notes: list[str] = field(default_factory=list)
    model_description: str = ""
    video_sizes: dict[str, int] | None = None
    video_timeline: list[VideoTimeline] | None = None
    labeling_usd_per_image: dict[str, float] = field(default_factory=dict)
    labeling_seconds_per_image: dict[str, float] = field(default_factory=dict)
    umap_neighbors: tuple[int, ...] = (5, 15, 50)
    class_labels: dict[str, ClassLabels] = field(default_factory=dict)
    object_sizes: dict[str, Any] | None = None
    #: The stored near_duplicates.json (``datasetAnalysis.nearDuplicates``), or None.
    near_duplicates: dict[str, Any] | None = None
    #: Per checked image its quality scores (``datasetAnalysis.qualityIssues``), or None.
    quality: dict[str, dict[str, float]] | None = None


def build_report(inputs: ReportInputs, out_dir: pathlib.Path) -> dict[str, Any]:
    """Write ``out_dir/report.json``, ``report_v2.json``, ``report.pdf`` and ``plots/*.png``.

    Args:
        inputs: The finished run's data.
        out_dir: A local directory (created if missing).

    Returns:
        The report dict, exactly the content of report.json.

    Raises:
        ValueError: If the inputs are inconsistent (sizes that do not add up, embeddings that
            do not match the filenames, selected indices out of range or repeated).
    """
    t0 = time.perf_counter()
    out_dir = pathlib.Path(out_dir)
    x, sel = _validate(inputs)
    # The UMAP fits (seconds of single-threaded work) start first, in a worker process when
    # there is a spare core, and run beside everything else until the maps are drawn.
    umap = start_umap(
        x, sel, seed=int(inputs.seed), neighbors=clean_neighbors(tuple(inputs.umap_neighbors))
    )
    try:
        return _build(inputs, out_dir, x, sel, umap, t0)
    finally:
        umap.close()


def _build(
    inputs: ReportInputs,
    out_dir: pathlib.Path,
    x: NDArray[Any],
    sel: NDArray[np.int64],
    umap: PendingMaps,
    t0: float,
) -> dict[str, Any]:
    # Figures are drawn from the JSON-safe numbers, so the PDF shows exactly what the JSON holds.
    computed, xy = _compute(inputs, x, sel)
    report: dict[str, Any] = _json_safe(computed)
    plots = _draw(report, inputs, out_dir / "plots")
    # Only now wait for the UMAP maps, then draw them.
    maps = umap_embedding_data(x, sel, list(inputs.filenames), seed=int(inputs.seed), pending=umap)
    scatter = report["datasetAnalysis"]["embeddingInformation"].get("scatterPlotData")
    if maps is not None and scatter is not None:
        scatter["umapEmbeddingData"] = _json_safe(maps)
        _draw_umap(scatter["umapEmbeddingData"], plots, out_dir / "plots")
    _add_video(report, plots, inputs, out_dir / "plots")
    add_findings(  # near duplicates and quality issues (reports/findings.py)
        report, plots, inputs.near_duplicates, inputs.quality, inputs.load_image, out_dir / "plots"
    )
    if inputs.object_sizes is not None:
        info = report["generalInformation"]["datasetInformation"]
        info["objectLevelSizes"] = dict(inputs.object_sizes)
    report["plots"] = {k: p.relative_to(out_dir).as_posix() for k, p in plots.items()}
    for loc in report["datasetAnalysis"]["distributionLocations"]:
        loc["plot"] = report["plots"][loc["plotName"]]
    report["sampling"] = sampling_statements(report)
    # The report's own time runs to here; writing the files below takes well under a second.
    _add_timing(report, inputs, time.perf_counter() - t0)
    text = dumps_json(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(text + "\n", encoding="utf-8")
    v2 = _json_safe(report_v2(report, list(inputs.filenames), xy, sel))
    if inputs.video_sizes is not None:
        v2["generalInformation"]["datasetInformation"]["videoLevelSizes"] = inputs.video_sizes
    if inputs.object_sizes is not None:
        v2["generalInformation"]["datasetInformation"]["objectLevelSizes"] = inputs.object_sizes
    text_v2 = dumps_json(v2)
    (out_dir / "report_v2.json").write_text(text_v2 + "\n", encoding="utf-8")
    write_pdf(report, plots, out_dir / "report.pdf")
    return report


# ---------------------------------------------------------------------------------------------


def _add_video(
    report: dict[str, Any],
    plots: dict[str, pathlib.Path],
    inputs: ReportInputs,
    plot_dir: pathlib.Path,
) -> None:
    """A video run's counts and timeline: in report.json, as a plot, and so in the PDF."""
    if inputs.video_sizes is None:
        return
    info = report["generalInformation"]["datasetInformation"]
    info["videoLevelSizes"] = dict(inputs.video_sizes)
    rows = inputs.video_timeline
    if not rows:
        return
    name = "video_sampling_timeline"
    info["videoSamplingTimeline"] = {
        "plot": f"plots/{name}.png",
        "videos": [
            {"video": r.video, "nFrames": r.n_frames, "selectedFrames": list(r.selected)}
            for r in rows
        ],
    }
    plots[name] = figures.save_figure(video_timeline_figure(rows), plot_dir / f"{name}.png")


def _validate(inputs: ReportInputs) -> tuple[NDArray[Any], NDArray[np.int64]]:
    dataset_sizes(inputs.sizes)
    x = np.asanyarray(inputs.embeddings)  # a memmap stays one: rows are read with file reads
    if x.ndim == 1 and x.size == 0:
        x = x.reshape(0, 0)
    if x.ndim != 2 or len(x) != len(inputs.filenames):
        raise ValueError(
            f"embeddings must have shape (len(filenames), D) = ({len(inputs.filenames)}, D), "
            f"got {x.shape}."
        )
    sel = np.asarray(inputs.selected, dtype=np.int64).ravel()
    if sel.size and (sel.min() < 0 or sel.max() >= len(x)):
        raise ValueError(
            f"selected indices must lie in [0, {len(x)}), got {sel.min()}..{sel.max()}."
        )
    if len(np.unique(sel)) != len(sel):
        raise ValueError("selected indices must be unique; got repeated indices.")
    n_sel, n_rem = int(inputs.sizes["n_selected"]), int(inputs.sizes["n_removed"])
    if inputs.object_sizes is not None:  # the rows are crops; sizes count images
        n_sel = int(inputs.object_sizes["nSelectedObjects"])
        n_rem = int(inputs.object_sizes["nObjects"]) - n_sel
    if n_sel != len(sel) or n_rem != len(x) - len(sel):
        raise ValueError(
            f"sizes disagree with the arrays: n_selected={n_sel}, n_removed={n_rem}, but "
            f"len(selected)={len(sel)} and len(filenames) - len(selected)={len(x) - len(sel)}."
        )
    return x, sel


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def _compute(
    inputs: ReportInputs, x: NDArray[Any], sel: NDArray[np.int64]
) -> tuple[dict[str, Any], NDArray[np.float64]]:
    """The report's numbers, and the (N, 2) PCA map of every row (for report_v2.json)."""
    start = _utc(inputs.started_at)
    sizes = dataset_sizes(inputs.sizes)
    normalized = is_normalized(x) if x.size else True
    seed = int(inputs.seed)

    hists = distance_histograms(
        x,
        sel,
        memory_requirement_in_GB=inputs.memory_requirement_in_GB,
        seed=seed,
        normalized=normalized,
    )
    emb_info: dict[str, Any] = {
        "embeddingDimension": int(x.shape[1]) if x.ndim == 2 else 0,
        "normalized": bool(normalized),
        **embedding_statistics(x, sel, seed=seed, normalized=normalized),
    }
    xy = np.zeros((0, 2))
    if len(x):
        shown_in = subsample(len(x), MAX_SCATTER_POINTS, seed)
        shown_sel = sel[subsample(len(sel), MAX_SCATTER_POINTS, seed + 1)]
        # Only the rows any map shows are projected (report_v2 picks the same ones and the
        # first picks): a memmap of a million rows is not read whole for a 5,000-point map.
        drawn = np.concatenate([shown_in, shown_sel, sel[:V2_EXAMPLE_IMAGES]])
        xy, ratio = pca_2d(x, seed=seed, rows=drawn)
        emb_info["scatterPlotData"] = {
            "pcaEmbeddingData": {
                "input2dEmbeddings": np.round(xy[shown_in], 5).tolist(),
                "selectedExcludingDatapool2dEmbeddings": np.round(xy[shown_sel], 5).tolist(),
                "explainedVarianceRatio": ratio.tolist(),
                "nInput": len(x),
                "nSelected": len(sel),
                "inputSubsampled": bool(len(shown_in) < len(x)),
                "selectedSubsampled": bool(len(shown_sel) < len(sel)),
            }
        }
    examples = selected_removed_examples(
        x, sel, inputs.filenames, int(inputs.n_example_images), seed=seed
    )
    dup_items = sorted(inputs.duplicates.items())
    analysis: dict[str, Any] = {"embeddingInformation": emb_info}
    analysis.update(place_distributions(inputs.distributions))
    return {
        "reportFormatVersion": REPORT_FORMAT_VERSION,
        "notes": list(inputs.notes),
        "generalInformation": {
            "workerInformation": {"buildVersion": inputs.versions.get("thresher")},
            "runInformation": {
                "runId": inputs.run_id,
                "startTimestamp": int(start.timestamp()),
                "startTime": start.isoformat(),
                "inputUrl": inputs.input_url,
                "commandLine": inputs.command_line,
                "device": inputs.device,
                "modelDescription": inputs.model_description,
            },
            "datasetInformation": {"datasetSizes": sizes, "inputUrl": inputs.input_url},
            "selectedImages": {
                "nSelected": len(sel),
                "shown": [inputs.filenames[int(i)] for i in sel[:MAX_GRID_IMAGES]],
            },
            "selectedAndRemovedImageExamples": examples,
            "annotationSavings": annotation_savings(
                int(sizes["nRemoved"]),
                inputs.labeling_usd_per_image,
                inputs.labeling_seconds_per_image,
            ),
        },
        "datasetAnalysis": analysis,
        "distanceHistograms": hists,
        "versions": dict(inputs.versions),
        "config": copy.deepcopy(inputs.config),
        "strategies": copy.deepcopy(list(inputs.strategies)),
        "corruptSamples": dict(sorted(inputs.corrupt.items())),
        "duplicateSamples": {
            "nTotal": len(dup_items),
            "examples": dict(dup_items[:MAX_DUPLICATE_EXAMPLES]),
        },
        "selectionVsRandom": selection_vs_random(x, sel, classes=inputs.class_labels, seed=seed),
        "seed": seed,
        "memoryRequirementInGB": float(inputs.memory_requirement_in_GB),
    }, xy


def sampling_statements(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Which statistics were computed on a seeded sample, in words: report.json's ``sampling``.

    The report's cost is bounded at any N by sampling (pairwise distances, nearest-neighbour
    searches, maps); each entry says what was sampled and how much, e.g. ``{"what":
    "pairwiseDistances.input", "nSampled": 2000, "nTotal": 1000000, "text": "pairwise distances
    from a seeded sample of 2,000 of 1,000,000 input samples"}``. Empty when nothing was.
    """
    out: list[dict[str, Any]] = []

    def add(what: str, n_sampled: Any, n_total: Any, text: str) -> None:
        if n_sampled is not None and n_total is not None and int(n_sampled) < int(n_total):
            t = text.format(s=f"{int(n_sampled):,}", n=f"{int(n_total):,}")
            out.append(
                {"what": what, "nSampled": int(n_sampled), "nTotal": int(n_total), "text": t}
            )

    emb = report["datasetAnalysis"]["embeddingInformation"]
    pca = (emb.get("scatterPlotData") or {}).get("pcaEmbeddingData") or {}
    n_in, n_sel = pca.get("nInput"), pca.get("nSelected")
    if n_in is None:
        return out
    hists = report.get("distanceHistograms") or {}
    for key, who, n in (("before", "input", n_in), ("after", "selected", n_sel)):
        h = hists.get(key) or {}
        add(
            f"pairwiseDistances.{who}",
            h.get("nPoints"),
            n,
            "pairwise distances from a seeded sample of {s} of {n} " + who + " samples",
        )
    nn = emb.get("distanceToNearestNeighborInSet") or {}
    for who, n in (("input", n_in), ("selected", n_sel)):
        h = nn.get(who) or {}
        add(
            f"nearestNeighbor.{who}.reference",
            h.get("nReference"),
            n,
            "nearest neighbours searched within a seeded sample of {s} of {n} " + who + " samples",
        )
        add(
            f"nearestNeighbor.{who}.queries",
            h.get("nQueries"),
            min(int(h.get("nReference") or 0), int(n or 0)),
            "nearest-neighbour distances of {s} of those {n} " + who + " samples",
        )
    cov = emb.get("distanceToCoverInput") or {}
    add("coverage.queries", cov.get("nQueries"), n_in, "coverage measured from {s} of {n} inputs")
    add(
        "coverage.reference",
        cov.get("nReference"),
        n_sel,
        "coverage: distance to the nearest of a seeded sample of {s} of {n} selected samples",
    )
    add(
        "pcaMap.input",
        len(pca.get("input2dEmbeddings", [])),
        n_in,
        "PCA map: {s} of {n} inputs drawn",
    )
    sel_drawn = len(pca.get("selectedExcludingDatapool2dEmbeddings", []))
    add("pcaMap.selected", sel_drawn, n_sel, "PCA map: {s} of {n} selected samples drawn")
    umap = (emb.get("scatterPlotData") or {}).get("umapEmbeddingData") or {}
    add(
        "umapMaps.input",
        umap.get("nFitted"),
        umap.get("nInput"),
        "UMAP maps fitted on and drawing {s} of {n} inputs",
    )
    vr = report.get("selectionVsRandom") or {}
    add(
        "selectionVsRandom.queries",
        vr.get("nQueries"),
        vr.get("nInput"),
        "selection vs random: coverage from {s} of {n} inputs",
    )
    add(
        "selectionVsRandom.reference",
        vr.get("nReference"),
        vr.get("nSelected"),
        "selection vs random: each pick searched as a seeded sample of {s} of its {n} samples",
    )
    return out


def _add_timing(report: dict[str, Any], inputs: ReportInputs, report_seconds: float) -> None:
    """End time, total and the time per step, with the report's own time and the rest.

    ``stageSeconds`` holds the given steps, ``report`` and ``other`` (time outside every
    step: bookkeeping between stages), so that its values add up to
    ``runInformation.totalProcessingTimeS``, the wall-clock time from start to now.
    """
    start = _utc(inputs.started_at)
    end = _utc(inputs.ended_at) + dt.timedelta(seconds=report_seconds)
    wall = (end - start).total_seconds()
    rows = {k: float(v) for k, v in inputs.stage_seconds.items()}
    rows["report"] = float(report_seconds)
    rest = wall - sum(rows.values())
    if rest > 0:
        rows["other"] = rest
    run = report["generalInformation"]["runInformation"]
    run.update(
        endTimestamp=int(end.timestamp()),
        endTime=end.isoformat(),
        totalProcessingTimeS=max(wall, sum(rows.values())),
    )
    report["stageSeconds"] = rows


def distribution_path(dist: Distribution) -> list[str]:
    """Where a distribution sits in report.json, as report_v2 places it (a list of keys).

    - METADATA: ``datasetAnalysis.metadataInformation.{lightlyNumeric | customNumeric |
      customCategorical}.<key>``
    - SCORES: ``datasetAnalysis.predictionTaskInformation.<task>
      .activeLearningScoreDistributions.<score>``
    - PREDICTIONS CLASS_DISTRIBUTION: ``... .<task>.categoryDistribution``
    - PREDICTIONS CATEGORY_COUNT: ``... .<task>.categoryToCountsPerSample.<categories joined
      by "+", or "(all)">``
    """
    if dist.input_type == "METADATA":
        if isinstance(dist, CategoricalDistribution):
            group = "customCategorical"
        else:
            group = "lightlyNumeric" if dist.key.startswith("lightly.") else "customNumeric"
        return ["datasetAnalysis", "metadataInformation", group, dist.key]
    task = ["datasetAnalysis", "predictionTaskInformation", str(dist.task)]
    if dist.input_type == "SCORES":
        return [*task, "activeLearningScoreDistributions", dist.key]
    if dist.key == "CLASS_DISTRIBUTION":
        return [*task, "categoryDistribution"]
    return [*task, "categoryToCountsPerSample", "+".join(dist.categories or ["(all)"])]


def place_distributions(distributions: list[Distribution]) -> dict[str, Any]:
    """The ``datasetAnalysis`` entries that hold the distributions, report_v2-style.

    Returns:
        ``metadataInformation``, ``predictionTaskInformation`` and ``distributionLocations``:
        one entry per distribution, in order, with its ``label``, ``inputType``, ``task``,
        ``key``, ``kind``, ``path`` (see :func:`distribution_path`) and ``plotName``.
    """
    meta: dict[str, dict[str, Any]] = {
        "lightlyNumeric": {},
        "customNumeric": {},
        "customCategorical": {},
    }
    root: dict[str, Any] = {"metadataInformation": meta, "predictionTaskInformation": {}}
    where: list[dict[str, Any]] = []
    for i, (dist, data) in enumerate(
        zip(distributions, dump_distributions(distributions), strict=True)
    ):
        path = distribution_path(dist)
        node = root
        for key in path[1:-1]:
            node = node.setdefault(key, {})
        if path[-1] in node:  # only CATEGORY_COUNT subsets like ["a+b"] vs ["a", "b"] collide
            path[-1] += f" ({i})"
        node[path[-1]] = data
        where.append(
            {
                "label": dist.label,
                "inputType": dist.input_type,
                "task": dist.task,
                "key": dist.key,
                "kind": dist.kind,
                "path": path,
                "plotName": f"distribution_{i}",
            }
        )
    return {**root, "distributionLocations": where}


def _draw(
    report: dict[str, Any], inputs: ReportInputs, plot_dir: pathlib.Path
) -> dict[str, pathlib.Path]:
    """Draw every figure from the report's numbers; returns name -> PNG path, in PDF order."""
    plots: dict[str, pathlib.Path] = {}
    gi, da = report["generalInformation"], report["datasetAnalysis"]

    def save(name: str, fig: Any) -> None:
        plots[name] = figures.save_figure(fig, plot_dir / f"{name}.png")

    def pair(m: figures.MapFigure, name: str) -> None:  # drawn once, saved twice
        with_sel, plain = plot_dir / f"{name}.png", plot_dir / f"{name}_no_overlay.png"
        m.save_pair(with_sel, plain)
        plots[name], plots[f"{name}_no_overlay"] = with_sel, plain

    plots["selected_grid"] = figures.selected_grid_sheet(
        gi["selectedImages"]["shown"], inputs.load_image, plot_dir / "selected_grid.png"
    )
    save("sizes", figures.sizes_figure(gi["datasetInformation"]["datasetSizes"]))
    hists = report["distanceHistograms"]
    save(
        "distance_distr_before",
        figures.distance_histogram_figure(
            hists["before"], "Before selection", figures.COLORS["input"]
        ),
    )
    save(
        "distance_distr_after",
        figures.distance_histogram_figure(
            hists["after"], "After selection", figures.COLORS["selected"]
        ),
    )
    emb = da["embeddingInformation"]
    save("nearest_neighbor_distances", figures.nearest_neighbor_figure(emb))
    pca = emb.get("scatterPlotData", {}).get("pcaEmbeddingData")
    if pca is not None:
        args = (
            pca["input2dEmbeddings"],
            pca["selectedExcludingDatapool2dEmbeddings"],
            pca["explainedVarianceRatio"],
        )
        pair(figures.pca_map(*args), "scatter_pca")
    if report.get("selectionVsRandom"):
        save("selection_vs_random", figures.vs_random_figure(report["selectionVsRandom"]))
    pairs = gi["selectedAndRemovedImageExamples"]
    for k in range(0, len(pairs), 6):
        name = f"examples_{k // 6}"
        plots[name] = figures.examples_sheet(
            pairs[k : k + 6], inputs.load_image, plot_dir / f"{name}.png"
        )
    for p in pairs:  # Lightly's file names: one pair each, numbered by the removed image's rank
        name = f"filter_decision_{p['removedRank']}"
        plots[name] = figures.examples_sheet([p], inputs.load_image, plot_dir / f"{name}.png")
    for loc, dist in zip(da["distributionLocations"], inputs.distributions, strict=True):
        save(loc["plotName"], figures.distribution_figure(dist))
    return plots


def dumps_json(obj: Any, indent: int = 2, _level: int = 0) -> str:
    """JSON text with objects indented and lists of plain values on one line each.

    ``json.dumps(indent=2)`` runs Python's slow pure-Python encoder and puts every number of a
    coordinate list on its own line; this writes the same document (``json.loads`` gives it
    back equal) with the C encoder for each list of values: several times faster and easier to
    read.

    Raises:
        ValueError: On NaN or infinity (``allow_nan=False``).
    """
    kw: dict[str, Any] = {"ensure_ascii": False, "allow_nan": False}
    pad, inner = " " * (indent * _level), " " * (indent * (_level + 1))
    if isinstance(obj, dict) and obj:
        items = [
            f"{inner}{json.dumps(str(k), **kw)}: {dumps_json(v, indent, _level + 1)}"
            for k, v in obj.items()
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, list) and any(isinstance(v, dict) and v for v in obj):
        items = [f"{inner}{dumps_json(v, indent, _level + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(obj, separators=(", ", ": "), **kw)


def _draw_umap(
    umap: dict[str, Any], plots: dict[str, pathlib.Path], plot_dir: pathlib.Path
) -> None:
    """The UMAP maps, each drawn once and saved with and without the selection."""
    for k, m in umap.get("maps", {}).items():
        name = f"scatter_umap_k_{k}"
        with_sel, plain = plot_dir / f"{name}.png", plot_dir / f"{name}_no_overlay.png"
        figures.umap_map(
            m["input2dEmbeddings"],
            m["selectedExcludingDatapool2dEmbeddings"],
            int(k),
            umap["nInput"],
        ).save_pair(with_sel, plain)
        plots[name], plots[f"{name}_no_overlay"] = with_sel, plain


def _json_safe(obj: Any) -> Any:
    """Plain JSON types only: NaN/inf become null, numpy values become Python values."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)
