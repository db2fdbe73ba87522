"""The report's findings about the data itself: near duplicates and quality issues.

report.json holds them under ``datasetAnalysis``:

- ``nearDuplicates``: ``{threshold, metric, removed, nGroups, nNearDuplicates, examples}``,
  ``examples`` the first pairs ``{keptImage, duplicateImage, distance}`` (one per group, the
  farthest member, so the examples show how far the threshold reaches).
- ``qualityIssues``: ``{cutoff, nImages, counts{key: n}, examples{key: [{image, score}]}}``:
  per ``thresher.*`` score how many checked images score at or above ``cutoff``, and the worst
  few.

The PDF shows both on one page, with thumbnails (:func:`pdf_section`).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image

from thresher.checks.quality import CUTOFF
from thresher.config.selection import THRESHER_METADATA_KEYS
from thresher.reports.thumbs import Tile, tile_sheet

#: Pairs / images per issue shown as examples.
N_EXAMPLES = 6

#: A short label per quality score, for the PDF.
QUALITY_LABELS = {
    "thresher.dark_score": "too dark",
    "thresher.bright_score": "too bright",
    "thresher.blur_score": "blurry",
    "thresher.low_information_score": "low information",
    "thresher.odd_aspect_ratio_score": "odd aspect ratio",
    "thresher.tiny_score": "tiny",
}


def near_duplicate_findings(doc: Mapping[str, Any], n_examples: int = N_EXAMPLES) -> dict[str, Any]:
    """report.json's ``nearDuplicates`` from a stored ``near_duplicates.json`` document."""
    groups: list[list[str]] = doc.get("groups", [])
    distances: list[list[float]] = doc.get("distances", [])
    examples = []
    for g, d in list(zip(groups, distances, strict=True))[:n_examples]:
        far = int(np.argmax(d))
        examples.append({"keptImage": g[0], "duplicateImage": g[far], "distance": d[far]})
    return {
        "threshold": doc.get("threshold"),
        "metric": doc.get("metric", "cosine distance"),
        "removed": bool(doc.get("removed", False)),
        "nGroups": len(groups),
        "nNearDuplicates": sum(len(g) - 1 for g in groups),
        "examples": examples,
    }


def quality_findings(
    quality: Mapping[str, Mapping[str, float]],
    cutoff: float = CUTOFF,
    n_examples: int = N_EXAMPLES,
) -> dict[str, Any]:
    """report.json's ``qualityIssues`` from per-image quality scores (name -> key -> score)."""
    counts: dict[str, int] = {}
    examples: dict[str, list[dict[str, Any]]] = {}
    for key in THRESHER_METADATA_KEYS:
        hits = [(s[key], n) for n, s in quality.items() if s.get(key, 0.0) >= cutoff]
        counts[key] = len(hits)
        hits.sort(key=lambda t: (-t[0], t[1]))
        examples[key] = [{"image": n, "score": v} for v, n in hits[:n_examples]]
    return {"cutoff": cutoff, "nImages": len(quality), "counts": counts, "examples": examples}


def add_findings(
    report: dict[str, Any],
    plots: dict[str, pathlib.Path],
    near_duplicates: Mapping[str, Any] | None,
    quality: Mapping[str, Mapping[str, float]] | None,
    load_image: Callable[[str], Image.Image] | None,
    plot_dir: pathlib.Path,
) -> None:
    """Put both findings into ``report`` and draw their example figures into ``plot_dir``."""
    analysis = report.setdefault("datasetAnalysis", {})
    if near_duplicates is not None:
        found = near_duplicate_findings(near_duplicates)
        analysis["nearDuplicates"] = found
        if found["examples"]:
            pairs = [
                (e["keptImage"], e["duplicateImage"], f"d = {e['distance']:.3f}")
                for e in found["examples"]
            ]
            rows: list[list[Tile | None]] = [
                [Tile(k, below=_base(k), above=t, frame="#4C72B0") for k, _, t in pairs],
                [Tile(d, below=_base(d), frame="#8C8C8C") for _, d, _ in pairs],
            ]
            plots["near_duplicate_examples"] = tile_sheet(
                rows,
                load_image,
                plot_dir / "near_duplicate_examples.png",
                thumb_px=160,
                row_labels=("kept", "near duplicate"),
            )
    if quality is not None:
        issues = quality_findings(quality)
        analysis["qualityIssues"] = issues
        tiles = [
            Tile(e["image"], below=_base(e["image"]), above=f"{QUALITY_LABELS[k]} {e['score']:.2f}")
            for k in THRESHER_METADATA_KEYS
            for e in issues["examples"][k][:2]
        ][:12]
        if tiles:
            plots["quality_examples"] = tile_sheet(
                [tiles[i : i + 6] for i in range(0, len(tiles), 6)],
                load_image,
                plot_dir / "quality_examples.png",
            )


def _base(name: str) -> str:
    """A tile's label: the whole relative name (shortened in the middle to fit the tile)."""
    return name


def pdf_section(pdf: Any, report: dict[str, Any], plots: Mapping[str, pathlib.Path]) -> None:
    """The PDF page "Near duplicates and quality issues" (nothing when neither is in report)."""
    analysis = report.get("datasetAnalysis", {})
    near = analysis.get("nearDuplicates")
    issues = analysis.get("qualityIssues")
    if near is None and issues is None:
        return
    pdf.add_page()
    pdf.h1("Near duplicates and quality issues")
    if near is not None:
        pdf.h2("Near duplicates")
        what = "removed before selection" if near["removed"] else "kept (found and listed only)"
        pdf.para(
            f"{near['nNearDuplicates']} images in {near['nGroups']} groups have an embedding "
            f"within {near['metric']} {near['threshold']} of another image: {what}. The groups "
            "are in near_duplicates.json (worker_config.remove_near_duplicates, "
            "near_duplicate_threshold)."
        )
        if "near_duplicate_examples" in plots:
            pdf.figure(
                plots["near_duplicate_examples"],
                caption="Kept image (top) and the farthest near duplicate of its group "
                "(bottom), with their cosine distance.",
            )
    if issues is not None:
        pdf.h2("Quality issues")
        rows = [
            (QUALITY_LABELS[k], f"{issues['counts'][k]} of {issues['nImages']}")
            for k in THRESHER_METADATA_KEYS
            if issues["counts"][k]
        ]
        if rows:
            pdf.kv_table(rows, col_widths=(3, 2))
        else:
            pdf.para(
                f"None of the {issues['nImages']} checked images is "
                + ", ".join(QUALITY_LABELS[k] for k in THRESHER_METADATA_KEYS)
                + "."
            )
        pdf.para(
            f"Images scoring at least {issues['cutoff']} (scores in [0, 1], higher is worse; "
            "usable as METADATA inputs thresher.dark_score etc., e.g. with a THRESHOLD "
            "strategy). Not a filter unless the selection config uses them."
        )
        if "quality_examples" in plots:
            pdf.figure(plots["quality_examples"], caption="The worst images per issue.")
