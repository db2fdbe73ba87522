"""The report's UMAP maps, labeling savings and selection-vs-random sections, end to end."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pytest
from report_synthetic import selection_inputs, synthetic_inputs

from thresher.reports import build_report
from thresher.reports.cost import SECONDS_PER_IMAGE
from thresher.reports.umap_2d import available
from thresher.reports.vs_random import ClassLabels

needs_umap = pytest.mark.skipif(not available(), reason="umap-learn not installed")

#: Lightly's plot file names (reference §5) that a run with embeddings must write.
LIGHTLY_PLOTS = [
    "distance_distr_before.png",
    "distance_distr_after.png",
    "scatter_pca.png",
    "scatter_pca_no_overlay.png",
    *(f"scatter_umap_k_{k}{s}.png" for k in (5, 15, 50) for s in ("", "_no_overlay")),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("sections")
    inputs = synthetic_inputs(n=300, n_selected=40)
    preds = selection_inputs(inputs.embeddings, inputs.filenames)["predictions"]["clf"]
    inputs = dataclasses.replace(
        inputs,
        labeling_usd_per_image={"objectDetection": 2.0},
        class_labels={"clf": ClassLabels("clf", preds.category_names, preds.category_counts)},
    )
    return inputs, build_report(inputs, out), out


@needs_umap
def test_every_lightly_plot_name_is_written(built):
    _, report, out = built
    for name in LIGHTLY_PLOTS:
        assert (out / "plots" / name).stat().st_size > 5000, name
        assert f"plots/{name}" in report["plots"].values(), name
    assert (out / "plots" / "selection_vs_random.png").exists()


@needs_umap
def test_umap_maps_are_in_both_reports(built):
    inputs, report, out = built
    umap = report["datasetAnalysis"]["embeddingInformation"]["scatterPlotData"]["umapEmbeddingData"]
    assert umap["projection"] == "umap" and umap["skipped"] == []
    assert sorted(umap["maps"], key=int) == ["5", "15", "50"]
    assert umap["nFitted"] == 300 and not umap["inputSubsampled"]
    m = umap["maps"]["15"]
    assert len(m["input2dEmbeddings"]) == 300
    assert len(m["selectedExcludingDatapool2dEmbeddings"]) == 40
    v2 = json.loads((out / "report_v2.json").read_text(encoding="utf-8"))
    v2_umap = v2["datasetAnalysis"]["embeddingInformation"]["scatterPlotData"]["umapEmbeddingData"]
    assert v2_umap["projection"] == "umap" and v2_umap["nNeighbors"] == 15
    assert v2_umap["input2dEmbeddings"] == m["input2dEmbeddings"]
    first = [inputs.filenames[int(i)] for i in inputs.selected[:20]]
    assert [e["filename"] for e in v2_umap["exampleImages"]] == first
    # The same seed gives the same map: the report is reproducible.
    again = build_report(inputs, out.parent / "again")
    assert (
        again["datasetAnalysis"]["embeddingInformation"]["scatterPlotData"]["umapEmbeddingData"][
            "maps"
        ]
        == umap["maps"]
    )


def test_labeling_savings_use_the_configured_prices(built):
    _, report, out = built
    savings = report["generalInformation"]["annotationSavings"]
    n_removed = report["generalInformation"]["datasetInformation"]["datasetSizes"]["nRemoved"]
    assert n_removed == 260
    assert savings["objectDetection"]["costSavings"] == pytest.approx(520.0)
    assert savings["imageClassification"]["costSavings"] == pytest.approx(13.0)
    hours = n_removed * SECONDS_PER_IMAGE["semanticSegmentation"] / 3600
    assert savings["semanticSegmentation"]["hoursSaved"] == pytest.approx(hours, abs=0.01)
    v2 = json.loads((out / "report_v2.json").read_text(encoding="utf-8"))
    v2_savings = v2["generalInformation"]["annotationSavings"]
    assert v2_savings["objectDetection"] == {"costSavings": 520.0, "co2Savings": None}


def test_selection_vs_random_is_measured_with_classes(built):
    _, report, _ = built
    vr = report["selectionVsRandom"]
    assert vr["nSelected"] == 40 and vr["nRandomPicks"] == 5 and vr["classTask"] == "clf"
    assert set(vr["measures"]) == {
        "coverageMean",
        "coverageMax",
        "nearestPickMean",
        "clusterCoverage",
        "classCoverage",
        "classBalance",
    }
    # A greedy k-center pick on clustered data covers better than random.
    assert vr["measures"]["coverageMax"]["status"] == "better"
    assert vr["verdict"].startswith("The selection covers the data better than random:")
    for m in vr["measures"].values():
        assert len(m["random"]) == 5 and np.isfinite(m["selected"])


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdf_has_the_new_sections(built):
    _, _, out = built
    text = subprocess.run(
        ["pdftotext", "-layout", str(out / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Estimated labeling savings: 260 images need no labels" in text
    assert "The selection against random picks" in text
    assert "The selection covers the data better than random" in text
    if available():
        assert "UMAP, k = 5, 15, 50" in text
