"""Build the run report: report.json, report.pdf and plots/*.png in one directory.

Example:
    >>> report = build_report(inputs, pathlib.Path("out"))  # doctest: +SKIP
    >>> sizes = report["generalInformation"]["datasetInformation"]["datasetSizes"]  # doctest: +SKIP
    >>> sizes["nSelected"]  # doctest: +SKIP
    50
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import math
import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from thresher.reports import figures, metrics
from thresher.reports.pdf import write_pdf

#: Most input / selected points stored (and drawn) in the PCA map.
MAX_SCATTER_POINTS = 5000

#: Most duplicate pairs listed in report.json (the full list is in filenames/duplicate.txt).
MAX_DUPLICATE_EXAMPLES = 1000

REPORT_FORMAT_VERSION = 1


@dataclass
class ReportInputs:
    """Everything the report needs from a finished run.

    Attributes:
        run_id: The run's id.
        started_at: Start time, timezone-aware (a naive time is taken as UTC).
        ended_at: End time.
        stage_seconds: Seconds per stage, e.g. ``{"embed": 40.0}``.
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
        distributions: report_v2-style distributions keyed by readable input name.
        seed: Seed of every subsample in the report.
        n_example_images: Number of selected-vs-removed pairs shown.
        memory_requirement_in_GB: Memory bound of the pairwise-distance block.
        strategies: The effective selection strategies, for display.
    """

    run_id: str
    started_at: dt.datetime
    ended_at: dt.datetime
    stage_seconds: dict[str, float]
    versions: dict[str, str]
    config: dict
    input_url: str
    sizes: dict[str, int]
    filenames: list[str]
    embeddings: np.ndarray
    selected: np.ndarray
    corrupt: dict[str, str]
    duplicates: dict[str, str]
    load_image: Callable[[str], Image.Image] | None
    distributions: dict[str, dict]
    seed: int = 0
    n_example_images: int = 6
    memory_requirement_in_GB: float = 2.0
    strategies: list[dict] = field(default_factory=list)


def build_report(inputs: ReportInputs, out_dir: pathlib.Path) -> dict:
    """Write ``out_dir/report.json``, ``out_dir/report.pdf`` and ``out_dir/plots/*.png``.

    Args:
        inputs: The finished run's data.
        out_dir: A local directory (created if missing).

    Returns:
        The report dict, exactly the content of report.json.

    Raises:
        ValueError: If the inputs are inconsistent (sizes that do not add up, embeddings that
            do not match the filenames, selected indices out of range or repeated).
    """
    out_dir = pathlib.Path(out_dir)
    x, sel = _validate(inputs)
    # Figures are drawn from the JSON-safe numbers, so the PDF shows exactly what the JSON holds.
    report = _json_safe(_compute(inputs, x, sel))
    plots = _draw(report, inputs, out_dir / "plots")
    report["plots"] = {k: p.relative_to(out_dir).as_posix() for k, p in plots.items()}
    text = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(text + "\n", encoding="utf-8")
    write_pdf(report, plots, out_dir / "report.pdf")
    return report


# ---------------------------------------------------------------------------------------------


def _validate(inputs: ReportInputs) -> tuple[np.ndarray, np.ndarray]:
    metrics.dataset_sizes(inputs.sizes)
    x = np.asarray(inputs.embeddings)
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
    if n_sel != len(sel) or n_rem != len(x) - len(sel):
        raise ValueError(
            f"sizes disagree with the arrays: n_selected={n_sel}, n_removed={n_rem}, but "
            f"len(selected)={len(sel)} and len(filenames) - len(selected)={len(x) - len(sel)}."
        )
    return x, sel


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def _compute(inputs: ReportInputs, x: np.ndarray, sel: np.ndarray) -> dict[str, Any]:
    start, end = _utc(inputs.started_at), _utc(inputs.ended_at)
    sizes = metrics.dataset_sizes(inputs.sizes)
    normalized = metrics.is_normalized(x) if x.size else True
    seed = int(inputs.seed)

    hists = metrics.distance_histograms(
        x,
        sel,
        memory_requirement_in_GB=inputs.memory_requirement_in_GB,
        seed=seed,
        normalized=normalized,
    )
    emb_info: dict[str, Any] = {
        "embeddingDimension": int(x.shape[1]) if x.ndim == 2 else 0,
        "normalized": bool(normalized),
        **metrics.embedding_statistics(x, sel, seed=seed, normalized=normalized),
    }
    if len(x):
        xy, ratio = metrics.pca_2d(x, seed=seed)
        shown_in = metrics.subsample(len(x), MAX_SCATTER_POINTS, seed)
        shown_sel = sel[metrics.subsample(len(sel), MAX_SCATTER_POINTS, seed + 1)]
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
    examples = metrics.selected_removed_examples(
        x, sel, inputs.filenames, int(inputs.n_example_images), seed=seed
    )
    duration = (end - start).total_seconds()
    dup_items = sorted(inputs.duplicates.items())
    analysis: dict[str, Any] = {"embeddingInformation": emb_info}
    analysis.update(_place_distributions(inputs.distributions))
    return {
        "reportFormatVersion": REPORT_FORMAT_VERSION,
        "generalInformation": {
            "workerInformation": {"buildVersion": inputs.versions.get("thresher")},
            "runInformation": {
                "runId": inputs.run_id,
                "startTimestamp": int(start.timestamp()),
                "endTimestamp": int(end.timestamp()),
                "startTime": start.isoformat(),
                "endTime": end.isoformat(),
                "totalProcessingTimeS": duration,
                "inputUrl": inputs.input_url,
            },
            "datasetInformation": {"datasetSizes": sizes, "inputUrl": inputs.input_url},
            "selectedAndRemovedImageExamples": examples,
        },
        "datasetAnalysis": analysis,
        "distanceHistograms": hists,
        "stageSeconds": {k: float(v) for k, v in inputs.stage_seconds.items()},
        "versions": dict(inputs.versions),
        "config": copy.deepcopy(inputs.config),
        "strategies": copy.deepcopy(list(inputs.strategies)),
        "corruptSamples": dict(sorted(inputs.corrupt.items())),
        "duplicateSamples": {
            "nTotal": len(dup_items),
            "examples": dict(dup_items[:MAX_DUPLICATE_EXAMPLES]),
        },
        "seed": seed,
        "memoryRequirementInGB": float(inputs.memory_requirement_in_GB),
    }


def _place_distributions(distributions: dict[str, dict]) -> dict[str, Any]:
    """Sort the selection engine's distributions into report_v2's sections.

    ``"METADATA lightly.x"`` numeric -> ``metadataInformation.lightlyNumeric``, other metadata
    -> ``customNumeric`` / ``customCategorical``; ``"SCORES task/score"`` ->
    ``predictionTaskInformation.task.activeLearningScoreDistributions.score``;
    ``"PREDICTIONS task CLASS_DISTRIBUTION"`` -> ``predictionTaskInformation.task
    .categoryDistribution``; anything else -> ``otherDistributions``. ``distributionLocations``
    maps each name to its JSON path.
    """
    meta: dict[str, dict] = {"lightlyNumeric": {}, "customNumeric": {}, "customCategorical": {}}
    tasks: dict[str, dict] = {}
    other: dict[str, Any] = {}
    where: dict[str, str] = {}
    for name, dist in distributions.items():
        d = copy.deepcopy(dist)
        kind = d.get("type") if isinstance(d, dict) else None
        head, _, rest = str(name).partition(" ")
        rest = rest.strip()
        if head == "METADATA" and rest and kind in ("numeric", "categorical"):
            group = (
                "customCategorical"
                if kind == "categorical"
                else ("lightlyNumeric" if rest.startswith("lightly.") else "customNumeric")
            )
            meta[group][rest] = d
            where[name] = f"datasetAnalysis.metadataInformation.{group}.{rest}"
        elif head == "SCORES" and "/" in rest:
            task, score = rest.split("/", 1)
            t = tasks.setdefault(task, {})
            t.setdefault("activeLearningScoreDistributions", {})[score] = d
            where[name] = (
                f"datasetAnalysis.predictionTaskInformation.{task}"
                f".activeLearningScoreDistributions.{score}"
            )
        elif head == "PREDICTIONS" and rest:
            task, _, what = rest.partition(" ")
            t = tasks.setdefault(task, {})
            if what.strip() in ("", "CLASS_DISTRIBUTION"):
                t["categoryDistribution"] = d
                where[name] = (
                    f"datasetAnalysis.predictionTaskInformation.{task}.categoryDistribution"
                )
            else:
                t.setdefault("otherDistributions", {})[what.strip()] = d
                where[name] = (
                    f"datasetAnalysis.predictionTaskInformation.{task}.otherDistributions"
                    f".{what.strip()}"
                )
        else:
            other[str(name)] = d
            where[name] = f"datasetAnalysis.otherDistributions.{name}"
    out: dict[str, Any] = {"metadataInformation": meta, "predictionTaskInformation": tasks}
    if other:
        out["otherDistributions"] = other
    out["distributionLocations"] = where
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()[:60] or "distribution"


def _draw(report: dict[str, Any], inputs: ReportInputs, plot_dir: pathlib.Path) -> dict:
    """Draw every figure from the report's numbers; returns name -> PNG path, in PDF order."""
    plots: dict[str, pathlib.Path] = {}
    gi, da = report["generalInformation"], report["datasetAnalysis"]

    def save(name: str, fig: Any) -> None:
        plots[name] = figures.save_figure(fig, plot_dir / f"{name}.png")

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
        save("scatter_pca", figures.pca_figure(*args, overlay=True))
        save("scatter_pca_no_overlay", figures.pca_figure(*args, overlay=False))
    pairs = gi["selectedAndRemovedImageExamples"]
    for k in range(0, len(pairs), 6):
        save(f"examples_{k // 6}", figures.examples_figure(pairs[k : k + 6], inputs.load_image))
    for i, (name, dist) in enumerate(_json_safe(inputs.distributions).items()):
        save(f"distribution_{i}_{_slug(name)}", figures.distribution_figure(name, dist))
    return plots


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
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, pathlib.PurePath):
        return obj.as_posix()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _json_safe(dataclasses.asdict(obj))
    return str(obj)
