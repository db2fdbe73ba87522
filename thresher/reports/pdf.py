"""Assemble report.pdf with fpdf2 from the report dict and the PNG figures.

Page 1 answers "what did I get?": notes, counts, the model and device, and the first selected
images. Then run details and timing, the strategies, the embedding analysis, examples, the
selection inputs' distributions, removed files, and the raw configuration as an appendix.
Text is set in DejaVu Sans (shipped with matplotlib) so that any filename renders.

Example:
    >>> write_pdf(report, plots, pathlib.Path("out/report.pdf"))  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from collections.abc import Sequence
from typing import Any

from fpdf import FPDF
from PIL import Image

from thresher.reports.findings import pdf_section as findings_section
from thresher.reports.fonts import FONT_FILES, displayable

#: Rows of long lists (corrupt files, duplicates) printed in the PDF; report.json has all.
MAX_LIST_ROWS = 40

CAPTIONS = {
    "sizes": (
        "Every input file ends in exactly one stage: filtered out by relevant_filenames, "
        "corrupt, exact duplicate, removed by the selection, or selected."
    ),
    "distance": (
        "Distances between pairs of images in embedding space, before (left) and after (right) "
        "selection, on the same bins, counts in log scale. A heavy tail at short distances means "
        "dense clusters of near-identical images; a good selection thins it out and makes the "
        "histogram more symmetric. A heavy tail at long distances points to outliers."
    ),
    "nearest_neighbor": (
        "Left: distance from each image to its nearest neighbour in the same set; the selection "
        "should sit further right than the input (fewer near-copies). Right: distance from each "
        "input image to its nearest selected image; small values mean the selection covers the "
        "input well, and the maximum is the worst-covered image."
    ),
    "pca": (
        "The embeddings projected onto their two main directions (PCA). Selected images "
        "(orange) should spread over the whole cloud, sparse regions included, rather than "
        "pile up where the data is dense. Far-apart points in 2-D are far apart in embedding "
        "space, but close points may not be."
    ),
    "examples": (
        "Each column: a removed image (top, grey frame) and the selected image nearest to it "
        "(bottom, orange frame) with their embedding distance. These are the closest pairs: "
        "they show why images were dropped, since a near-copy is already selected."
    ),
    "grid": (
        "The first selected images in pick order (1 = picked first), with their names relative "
        "to the input. filenames/selected.txt in the run folder lists all of them."
    ),
    "savings": (
        "What labeling the removed images would have cost, at the prices and times per image in "
        "the table: public price lists and published annotation times, rounded "
        "(thresher/reports/cost.py gives the sources). Set your own with worker_config "
        "labeling_usd_per_image and labeling_seconds_per_image. CO2 is not estimated."
    ),
    "umap": (
        "UMAP maps of the embeddings for k nearest neighbours, with the selection in orange "
        "(all maps with and without it are in plots/). Small k keeps local detail "
        "(many small islands), large k the global layout. A good selection puts picks on "
        "every island. Distances between islands mean little; the axes have no units."
    ),
    "vs_random": (
        "The same label-free measures for the selection and for random picks of the same size "
        "(mean ± std; the figure shows each random pick as a dot). A selection whose goal is not "
        "diversity (scores, metadata, similarity) need not beat random on coverage."
    ),
    "distribution": (
        "Distribution over the input (blue), the selection (orange) and a random pick of the "
        "same size (green). Where selected differs from random, the selection strategy shaped "
        "the result."
    ),
}


class _ReportPDF(FPDF):
    def __init__(self, run_id: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.run_id = run_id
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=15)
        self.add_font("DejaVu", "", str(FONT_FILES[""]))
        self.add_font("DejaVu", "B", str(FONT_FILES["B"]))
        self.add_font("DejaVu", "I", str(FONT_FILES["I"]))
        self.add_font("DejaVuMono", "", str(FONT_FILES["mono"]))
        self.set_title(f"thresher report {run_id}")
        self.set_creator("thresher")

    def normalize_text(self, text: str) -> str:
        """Characters DejaVu lacks (CJK, emoji) become □ rather than empty boxes and warnings."""
        face = "mono" if self.font_family == "dejavumono" else self.font_style[:1]
        return super().normalize_text(displayable(text, face if face in ("B", "I", "mono") else ""))

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font("DejaVu", "", 7)
        self.set_text_color(120)
        self.cell(
            0,
            5,
            f"thresher curation report · run {self.run_id} · page {self.page_no()}/{{nb}}",
            align="C",
        )
        self.set_text_color(0)

    # -- building blocks -----------------------------------------------------------------------

    def h1(self, text: str) -> None:
        self.set_font("DejaVu", "B", 18)
        self.multi_cell(0, 9, text, new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def h2(self, text: str) -> None:
        if self.will_page_break(30):
            self.add_page()
        self.ln(2)
        self.set_font("DejaVu", "B", 12.5)
        self.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def para(self, text: str, size: float = 9, style: str = "") -> None:
        self.set_font("DejaVu", style, size)
        self.multi_cell(0, size * 0.5, text, align="L", new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def caption(self, text: str) -> None:
        self.set_text_color(70)
        self.para(text, size=8, style="I")
        self.set_text_color(0)

    def mono(self, text: str, size: float = 6.5) -> None:
        """Preformatted text; long lines are cut to the width and continue indented."""
        self.set_font("DejaVuMono", "", size)
        per_line = max(20, int((self.epw - 2 * self.c_margin) / self.get_string_width("M")) - 1)
        out: list[str] = []
        for line in text.splitlines():
            indent = " " * min(len(line) - len(line.lstrip(" ")) + 4, per_line // 2)
            while len(line) > per_line:
                out.append(line[:per_line])
                line = indent + line[per_line:]
            out.append(line)
        self.multi_cell(0, size * 0.45, "\n".join(out), align="L", new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def kv_table(
        self,
        rows: Sequence[Sequence[str]],
        header: Sequence[str] | None = None,
        col_widths: Sequence[float] = (1, 3),
        size: float = 8,
    ) -> None:
        """A simple table; the first row is a bold heading when ``header`` is given."""
        self.set_font("DejaVu", "", size)
        data = ([list(header)] if header else []) + [[str(c) for c in r] for r in rows]
        if not data:
            return
        with self.table(
            col_widths=tuple(col_widths),
            first_row_as_headings=header is not None,
            line_height=size * 0.5,
            padding=0.8,
            text_align="LEFT",
        ) as table:
            for r in data:
                row = table.row()
                for c in r:
                    row.cell(c)
        self.ln(2)

    def note(self, text: str) -> None:
        """A sentence the reader must not miss: bold, on a light amber band."""
        self.set_font("DejaVu", "B", 10)
        self.set_fill_color(255, 236, 179)
        self.multi_cell(
            0, 5.5, text, align="L", fill=True, padding=(1, 2), new_x="LMARGIN", new_y="NEXT"
        )
        self.set_fill_color(255)
        self.ln(2)

    def figure(
        self,
        path: pathlib.Path,
        width: float | None = None,
        caption: str = "",
        fit_page: bool = False,
    ) -> None:
        """An image at full text width (or ``width`` mm), kept on one page with its caption.

        With ``fit_page`` the image is shrunk to the room left on the current page (down to
        80% of its height, where its labels stay readable) rather than moved to the next one.
        """
        w = width or self.epw
        with Image.open(path) as im:
            px_w, px_h = im.size
        h = w * px_h / px_w
        room = self.eph - 25
        if fit_page:
            left = self.h - self.b_margin - self.y - (12 if caption else 0)
            room = min(room, max(left, h * 0.8))  # smaller than 80% and labels get unreadable
        if h > room:  # too tall for the room: scale down
            w, h = w * room / h, room
        if self.will_page_break(h + (12 if caption else 0)):
            self.add_page()
        x = self.l_margin + (self.epw - w) / 2
        self.image(str(path), x=x, y=self.y, w=w, h=h)
        self.set_y(self.y + h + 1)
        if caption:
            self.caption(caption)

    def figure_pair(self, left: pathlib.Path, right: pathlib.Path, caption: str) -> None:
        """Two images side by side at half width each, with one caption."""
        w = (self.epw - 4) / 2
        hs = []
        for p in (left, right):
            with Image.open(p) as im:
                hs.append(w * im.size[1] / im.size[0])
        h = max(hs)
        if self.will_page_break(h + 14):
            self.add_page()
        y = self.y
        self.image(str(left), x=self.l_margin, y=y, w=w)
        self.image(str(right), x=self.l_margin + w + 4, y=y, w=w)
        self.set_y(y + h + 1)
        self.caption(caption)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _when(iso: str | None) -> str:
    if not iso:
        return "–"
    try:
        return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:
        return iso


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    return f"{s:.0f} s ({dt.timedelta(seconds=round(s))})"


# ---------------------------------------------------------------------------------------------


def write_pdf(report: dict[str, Any], plots: dict[str, pathlib.Path], path: pathlib.Path) -> None:
    """Write report.pdf.

    Args:
        report: The JSON-safe report dict built by :func:`thresher.reports.build_report`.
        plots: Figure name -> PNG path, as drawn by the build (missing names are skipped).
        path: Target PDF file.
    """
    gi = report["generalInformation"]
    run = gi["runInformation"]
    pdf = _ReportPDF(str(run.get("runId", "")))
    _summary_page(pdf, report, plots)
    _run_page(pdf, report, plots)
    _video_section(pdf, report, plots)
    _strategies_section(pdf, report)
    _embedding_section(pdf, report, plots)
    _umap_section(pdf, report, plots)
    _vs_random_section(pdf, report, plots)
    _savings_section(pdf, report)
    _examples_section(pdf, report, plots)
    findings_section(pdf, report, plots)  # near duplicates, quality issues (findings.py)
    _distribution_section(pdf, report, plots)
    _removed_files_section(pdf, report)
    _config_appendix(pdf, report)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))


def _summary_page(pdf: _ReportPDF, report: dict[str, Any], plots: dict[str, pathlib.Path]) -> None:
    gi = report["generalInformation"]
    run = gi["runInformation"]
    sizes = gi["datasetInformation"]["datasetSizes"]
    pdf.add_page()
    pdf.h1("Curation report")
    pdf.para(f"Run {run.get('runId')} · {_when(run.get('startTime'))}", size=10)
    for note in report.get("notes") or []:
        pdf.note(note)
    n_sel, n_in = sizes.get("nSelected", 0), sizes.get("nInput", 0)
    pdf.para(
        f"Selected {_fmt(n_sel)} of {_fmt(n_in)} input files. Not selected: "
        f"{_fmt(sizes.get('nRemoved'))} removed by the selection, "
        f"{_fmt(sizes.get('nDuplicate'))} exact duplicates, {_fmt(sizes.get('nCorrupt'))} "
        f"corrupt, {_fmt(sizes.get('nFiltered'))} filtered out by relevant_filenames.",
        size=10.5,
        style="B",
    )
    if report.get("sampling"):
        n_in_emb = report["sampling"][0]["nTotal"]
        pdf.para(
            f"Bounded cost: with {_fmt(n_in_emb)} embedded samples, some statistics and maps "
            "use seeded samples of them; the section “Sampling” on the embeddings pages lists "
            "each (report.json: sampling).",
            size=8.5,
        )
    if sizes.get("nPreselectedDatapool"):  # use_datapool (docs/datapool.md)
        pdf.para(
            f"Datapool: {_fmt(sizes['nPreselectedDatapool'])} samples selected by earlier runs "
            f"counted as chosen; with this run's new picks, "
            f"{_fmt(sizes.get('nSelectedWithDatapool'))} in all. Only files new to the "
            "datapool were input of this run.",
            size=10,
        )
    rows = [
        ("Model", run.get("modelDescription") or "–"),
        ("Device", run.get("device") or "–"),
        ("Command", run.get("commandLine") or "–"),
        ("Input", run.get("inputUrl")),
        ("Duration", _duration(run.get("totalProcessingTimeS"))),
    ]
    pdf.kv_table([(k, _fmt(v)) for k, v in rows], col_widths=(1, 6))
    shown = gi["selectedImages"]["shown"]
    if "selected_grid" in plots and shown:
        pdf.h2(f"Selected images: the first {len(shown):,} of {_fmt(n_sel)}, in pick order")
        pdf.figure(plots["selected_grid"], caption=CAPTIONS["grid"], fit_page=True)


def _run_page(pdf: _ReportPDF, report: dict[str, Any], plots: dict[str, pathlib.Path]) -> None:
    gi = report["generalInformation"]
    run = gi["runInformation"]
    pdf.add_page()
    pdf.h1("Run information")
    rows = [
        ("Run id", run.get("runId")),
        ("Started", _when(run.get("startTime"))),
        ("Ended", _when(run.get("endTime"))),
        ("Duration (wall clock)", _duration(run.get("totalProcessingTimeS"))),
        ("Input", run.get("inputUrl")),
        ("Seed", report.get("seed")),
    ]
    rows += [(f"Version: {k}", v) for k, v in report.get("versions", {}).items()]
    pdf.kv_table([(k, _fmt(v)) for k, v in rows])

    stages = report.get("stageSeconds", {})
    if stages:
        total = float(run.get("totalProcessingTimeS") or sum(stages.values()) or 1.0)
        pdf.h2("Time per step")
        body = [(k, f"{v:.2f}", f"{100 * v / total:.1f}%") for k, v in stages.items()]
        body.append(("total (wall clock)", f"{total:.2f}", "100.0%"))
        pdf.kv_table(body, header=("step", "seconds", "share"), col_widths=(2, 1, 1))
        pdf.caption(
            "startup: Prefect's start-up before the first stage; other: time between the "
            "steps (caching, logging). write_results runs after the report and is not counted."
        )

    sizes = gi["datasetInformation"]["datasetSizes"]
    pdf.h2("Dataset sizes")
    n_in = sizes.get("nInput") or 0
    labels = {
        "nInput": "input files",
        "nFiltered": "filtered out by relevant_filenames",
        "nCorrupt": "corrupt",
        "nDuplicate": "exact duplicates",
        "nRemoved": "removed by the selection",
        "nSelected": "selected",
        "nPreselectedDatapool": "selected by earlier runs (datapool)",
        "nSelectedWithDatapool": "selected, with the datapool's",
    }
    pdf.kv_table(
        [
            (labels.get(k, k), k, _fmt(v), f"{100 * v / n_in:.1f}%" if n_in else "–")
            for k, v in sizes.items()
            # The datapool rows only mean something when the datapool had samples.
            if sizes.get("nPreselectedDatapool")
            or k not in ("nPreselectedDatapool", "nSelectedWithDatapool")
        ],
        header=("stage", "key", "files", "share of input"),
        col_widths=(3, 1.5, 1.2, 1.3),
    )
    if "sizes" in plots:
        pdf.figure(plots["sizes"], width=pdf.epw * 0.75, caption=CAPTIONS["sizes"], fit_page=True)


def _video_section(pdf: _ReportPDF, report: dict[str, Any], plots: dict[str, pathlib.Path]) -> None:
    """A video run's counts and, when drawn, where in each video the picks came from."""
    sizes = report["generalInformation"]["datasetInformation"].get("videoLevelSizes")
    if sizes is None:
        return
    pdf.h2("Videos")
    labels = {
        "nInput": "Videos in the input",
        "nFiltered": "Filtered out (relevant_filenames)",
        "nCorrupt": "Corrupt or excluded",
        "nFrames": "Frames",
        "nCorruptFrames": "Broken frames",
        "nSelectedFrames": "Frames selected",
        "nVideosWithSelectedFrames": "Videos with a selected frame",
    }
    rows = [(label, _fmt(sizes[key])) for key, label in labels.items() if key in sizes]
    pdf.kv_table(rows, col_widths=(3, 2))
    if "video_sampling_timeline" in plots:
        pdf.figure(
            plots["video_sampling_timeline"],
            caption="Where in each video the selected frames lie (black), broken frames (red) "
            "and excluded videos (red band).",
        )


def _strategies_section(pdf: _ReportPDF, report: dict[str, Any]) -> None:
    strategies = report.get("strategies") or []
    pdf.add_page()
    pdf.h1("Selection strategies")
    if not strategies:
        pdf.para("No strategies were recorded for this run.")
        return
    rows = []
    for i, s in enumerate(strategies):
        rows.append(
            (
                str(i + 1),
                json.dumps(s.get("input", {}), ensure_ascii=False),
                json.dumps(s.get("strategy", {}), ensure_ascii=False),
            )
        )
    pdf.kv_table(rows, header=("#", "input", "strategy"), col_widths=(0.3, 3, 3))
    pdf.caption("The full effective configuration is in the appendix at the end.")


def _config_appendix(pdf: _ReportPDF, report: dict[str, Any]) -> None:
    pdf.add_page()
    pdf.h1("Appendix: effective configuration")
    pdf.para(
        "The configuration the run used (worker_config, selection_config, lightly_config), "
        "after validation and defaults. lightly_config.model is the model that embedded.",
        size=8,
    )
    pdf.mono(json.dumps(report.get("config", {}), indent=2, ensure_ascii=False, sort_keys=False))


def _metric_rows(named: dict[str, dict[str, Any]], keys: Sequence[str]) -> list[list[str]]:
    return [[name] + [_fmt((m or {}).get(k)) for k in keys] for name, m in named.items()]


def _embedding_section(
    pdf: _ReportPDF, report: dict[str, Any], plots: dict[str, pathlib.Path]
) -> None:
    if pdf.will_page_break(120):  # the section's text and first figures; else go on below
        pdf.add_page()
    else:
        pdf.ln(4)
    pdf.h1("Embeddings before and after selection")
    emb = report["datasetAnalysis"]["embeddingInformation"]
    hists = report["distanceHistograms"]
    if "scatterPlotData" not in emb:  # nothing was embedded: no distances to show
        pdf.para("No images were embedded in this run, so there are no embeddings to show.")
        return
    pdf.para(
        f"Embedding dimension {emb.get('embeddingDimension')}, "
        f"{'L2-normalised (distances in [0, 2])' if emb.get('normalized') else 'not normalised'}."
        f" Pairwise statistics use {_fmt(hists['before'].get('nPoints'))} input and "
        f"{_fmt(hists['after'].get('nPoints'))} selected points"
        f"{' (seeded subsample)' if hists['before'].get('subsampled') else ''}.",
        size=8.5,
    )
    if report.get("sampling"):
        pdf.h2("Sampling")
        pdf.para(
            "To build in bounded time and memory at any size, these were computed on seeded "
            "samples (the same seed gives the same report):\n"
            + "\n".join(f"• {e['text']}" for e in report["sampling"]),
            size=8.5,
        )
    pdf.h2("Pairwise distances")
    if "distance_distr_before" in plots and "distance_distr_after" in plots:
        pdf.figure_pair(
            plots["distance_distr_before"], plots["distance_distr_after"], CAPTIONS["distance"]
        )
    keys = ("mean", "std", "min", "median", "max")
    pdf.kv_table(
        _metric_rows(
            {
                "pairwise, before": hists["before"].get("metrics"),
                "pairwise, after": hists["after"].get("metrics"),
                "nearest neighbour, input": emb["distanceToNearestNeighborInSet"]["input"].get(
                    "metrics"
                ),
                "nearest neighbour, selected": emb["distanceToNearestNeighborInSet"][
                    "selected"
                ].get("metrics"),
                "input to nearest selected": emb["distanceToCoverInput"].get("metrics"),
            },
            keys,
        ),
        header=("distance", *keys),
        col_widths=(2.6, 1, 1, 1, 1, 1),
    )
    if "nearest_neighbor_distances" in plots:
        if pdf.will_page_break(100):  # keep the heading with its figure
            pdf.add_page()
        pdf.h2("Nearest neighbours and coverage")
        cov = emb["distanceToCoverInput"]
        m = cov.get("metrics") or {}
        pdf.figure(plots["nearest_neighbor_distances"], caption=CAPTIONS["nearest_neighbor"])
        pdf.para(
            f"Coverage over {_fmt(cov.get('nQueries'))} input points"
            f"{'' if cov.get('exact') else ' (seeded subsample)'}: mean {_fmt(m.get('mean'))}, "
            f"95th percentile {_fmt(m.get('p95'))}, 99th {_fmt(m.get('p99'))}, "
            f"max {_fmt(m.get('max'))}.",
            size=8.5,
        )
    if "scatter_pca" in plots:
        pca = emb["scatterPlotData"]["pcaEmbeddingData"]
        pdf.add_page()
        pdf.h2("2-D map of the embeddings (PCA)")
        pdf.figure(plots["scatter_pca"], width=pdf.epw * 0.85, caption=CAPTIONS["pca"])
        shown = len(pca.get("input2dEmbeddings", []))
        pdf.para(
            f"{_fmt(shown)} of {_fmt(pca.get('nInput'))} input points and "
            f"{_fmt(len(pca.get('selectedExcludingDatapool2dEmbeddings', [])))} of "
            f"{_fmt(pca.get('nSelected'))} selected points drawn.",
            size=8,
        )


def _examples_section(
    pdf: _ReportPDF, report: dict[str, Any], plots: dict[str, pathlib.Path]
) -> None:
    pairs = report["generalInformation"]["selectedAndRemovedImageExamples"]
    if not pairs:
        return
    pdf.add_page()
    pdf.h1("Selected vs removed examples")
    for name in sorted(p for p in plots if p.startswith("examples_")):
        pdf.figure(plots[name])
    pdf.caption(CAPTIONS["examples"])
    pdf.kv_table(
        [(p["removedImage"], p["selectedImage"], _fmt(p["distance"])) for p in pairs],
        header=("removed image", "nearest selected image", "distance"),
        col_widths=(3, 3, 1),
        size=7,
    )


def _distribution_section(
    pdf: _ReportPDF, report: dict[str, Any], plots: dict[str, pathlib.Path]
) -> None:
    where = report["datasetAnalysis"]["distributionLocations"]
    if not where:
        return
    pdf.add_page()
    pdf.h1("Selection inputs: metadata, scores, predictions")
    pdf.caption(CAPTIONS["distribution"])
    for loc in where:
        node: Any = report
        for key in loc["path"]:
            node = node[key]
        if pdf.will_page_break(100):  # keep the heading with its plot
            pdf.add_page()
        pdf.h2(loc["label"])
        pdf.figure(plots[loc["plotName"]])
        _distribution_table(pdf, node)
        pdf.para(f"report.json: {' › '.join(loc['path'])}", size=6.5)


def _distribution_table(pdf: _ReportPDF, dist: Any) -> None:
    if not isinstance(dist, dict):
        return
    sets = [s for s in ("input", "selected", "random") if isinstance(dist.get(s), dict)]
    keys: list[str] = []
    for s in sets:
        for k in dist[s].get("metrics") or {}:
            if k not in keys:
                keys.append(k)
    if not keys:
        return
    pdf.kv_table(
        _metric_rows({s: dist[s].get("metrics") for s in sets}, keys),
        header=["set", *keys],
        col_widths=[1.2] + [1] * len(keys),
        size=7.5,
    )


def _removed_files_section(pdf: _ReportPDF, report: dict[str, Any]) -> None:
    corrupt = report.get("corruptSamples") or {}
    dups = report.get("duplicateSamples") or {}
    examples = dups.get("examples") or {}
    if not corrupt and not examples:
        return
    pdf.add_page()
    pdf.h1("Corrupt files and duplicates")
    if corrupt:
        pdf.h2(f"Corrupt files ({len(corrupt):,})")
        items = list(corrupt.items())
        pdf.kv_table(items[:MAX_LIST_ROWS], header=("file", "reason"), col_widths=(1, 1), size=7)
        if len(items) > MAX_LIST_ROWS:
            pdf.para(
                f"… and {len(items) - MAX_LIST_ROWS:,} more in report.json (corruptSamples).",
                size=7.5,
            )
    if examples:
        pdf.h2(f"Exact duplicates ({dups.get('nTotal', len(examples)):,})")
        items = list(examples.items())
        pdf.kv_table(
            items[:MAX_LIST_ROWS],
            header=("duplicate (removed)", "kept original"),
            col_widths=(1, 1),
            size=7,
        )
        if dups.get("nTotal", 0) > MAX_LIST_ROWS:
            pdf.para(
                f"… {dups['nTotal'] - MAX_LIST_ROWS:,} more; report.json lists the first "
                f"{len(examples):,} (duplicateSamples), filenames/duplicate.txt all of them.",
                size=7.5,
            )


def _savings_section(pdf: _ReportPDF, report: dict[str, Any]) -> None:
    """Estimated labeling money and time not spent on the removed images."""
    savings = report["generalInformation"].get("annotationSavings") or {}
    if not savings:
        return
    n_removed = report["generalInformation"]["datasetInformation"]["datasetSizes"]["nRemoved"]
    pdf.h2(f"Estimated labeling savings: {_fmt(n_removed)} images need no labels")
    labels = {
        "imageClassification": "image classification",
        "objectDetection": "object detection",
        "semanticSegmentation": "semantic segmentation",
    }
    rows = [
        (
            labels.get(task, task),
            f"${v['usdPerImage']:,.2f}",
            f"{v['secondsPerImage']:,.0f} s",
            f"${v['costSavings']:,.0f}",
            f"{v['hoursSaved']:,.1f} h",
        )
        for task, v in savings.items()
    ]
    pdf.kv_table(
        rows,
        header=("if you label for", "price / image", "time / image", "money saved", "time saved"),
        col_widths=(2.2, 1.2, 1.2, 1.3, 1.3),
    )
    pdf.caption(CAPTIONS["savings"])


def _umap_section(pdf: _ReportPDF, report: dict[str, Any], plots: dict[str, pathlib.Path]) -> None:
    """The UMAP maps (k = 5, 15, 50) with the selection; the plain maps are in plots/."""
    emb = report["datasetAnalysis"]["embeddingInformation"]
    umap = (emb.get("scatterPlotData") or {}).get("umapEmbeddingData")
    names = [f"scatter_umap_k_{k}" for k in (5, 15, 50) if f"scatter_umap_k_{k}" in plots]
    if not umap or not names:
        return
    pdf.add_page()
    ks = ", ".join(n.rsplit("_", 1)[-1] for n in names)
    pdf.h2(f"2-D maps of the embeddings (UMAP, k = {ks})")
    extra = f"{names[len(names) // 2]}_no_overlay"
    drawn = names + ([extra] if len(names) % 2 and extra in plots else [])
    for i in range(0, len(drawn) - 1, 2):
        pdf.figure_pair(plots[drawn[i]], plots[drawn[i + 1]], "")
    if len(drawn) % 2:
        pdf.figure(plots[drawn[-1]], width=pdf.epw / 2)
    sample = (
        f"Fitted and drawn on a seeded sample of {_fmt(umap['nFitted'])} of "
        f"{_fmt(umap['nInput'])} input points ({_fmt(umap['nFittedSelected'])} of them "
        "selected); the rest are not on the maps."
        if umap.get("inputSubsampled")
        else f"All {_fmt(umap['nInput'])} input points drawn."
    )
    skipped = umap.get("skipped") or []
    if skipped:
        sample += f" Skipped (time bound reached): k = {', '.join(str(k) for k in skipped)}."
    pdf.caption(f"{CAPTIONS['umap']} {sample}")


def _vs_random_section(
    pdf: _ReportPDF, report: dict[str, Any], plots: dict[str, pathlib.Path]
) -> None:
    """The selection against random picks of the same size: sentence, figure and table."""
    vr = report.get("selectionVsRandom") or {}
    if not vr:
        return
    pdf.add_page()
    pdf.h1("The selection against random picks")
    pdf.note(vr["verdict"])
    if "selection_vs_random" in plots:
        width = pdf.epw * (0.7 if len(vr["measures"]) <= 4 else 0.95)
        pdf.figure(plots["selection_vs_random"], width=width, fit_page=True)
    rows = []
    for m in vr["measures"].values():
        pct = m["description"].startswith("share")
        show = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: _fmt(v, 3))
        rand = "–"
        if m["randomMean"] is not None:
            rand = f"{show(m['randomMean'])} ± {show(m['randomStd'] or 0.0)}"
        better = "higher" if m["higherIsBetter"] else "lower"
        rows.append(
            (f"{m['description']} ({better} is better)", show(m["selected"]), rand, m["status"])
        )
    pdf.kv_table(
        rows,
        header=("measure", "selection", f"{vr['nRandomPicks']} random picks", "selection is"),
        col_widths=(3.6, 1, 1.5, 1),
    )
    where = (
        "every input point"
        if vr.get("exact")
        else f"a seeded sample of {_fmt(vr['nQueries'])} of {_fmt(vr['nInput'])} input points"
    )
    extra = ""
    if vr.get("classTask"):
        extra = f" Classes are those predicted by task {vr['classTask']!r}."
    pdf.caption(
        f"{CAPTIONS['vs_random']} Coverage is measured from {where}; k-means has "
        f"k = {_fmt(vr['nClusters'])} clusters.{extra}"
    )
