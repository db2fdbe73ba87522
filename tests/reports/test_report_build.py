"""build_report end to end on synthetic clustered embeddings and generated images."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess

import numpy as np
import pytest
from report_synthetic import synthetic_inputs

from thresher.reports import ReportInputs, build_report
from thresher.selection.report import load_distributions

needs_poppler = pytest.mark.skipif(
    shutil.which("pdfinfo") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils (pdfinfo, pdftoppm) not installed",
)


def _strict_json(path):
    def no_constants(name):
        raise AssertionError(f"report.json contains {name}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constants)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    inputs = synthetic_inputs(n=300, n_selected=40)
    return inputs, build_report(inputs, out), out


def test_report_json_is_strict_and_equals_the_returned_dict(built):
    _, report, out = built
    assert _strict_json(out / "report.json") == report


def test_general_information(built):
    inputs, report, _ = built
    gi = report["generalInformation"]
    run = gi["runInformation"]
    assert run["runId"] == "run-0001"
    # The report stage began 95.5 s after the start; the report's own time comes on top.
    report_s = report["stageSeconds"]["report"]
    assert report_s > 0  # recorded (how long is for benchmarks, not tests)
    assert run["totalProcessingTimeS"] == pytest.approx(95.5 + report_s)
    assert run["endTimestamp"] - run["startTimestamp"] == int(95.5 + report_s)
    assert run["startTime"].startswith("2024-05-01T12:00:00")
    assert run["device"] == inputs.device and run["commandLine"] == inputs.command_line
    assert run["modelDescription"] == inputs.model_description
    assert report["notes"] == inputs.notes
    # The grid on page 1: the first picks, in pick order.
    shown = gi["selectedImages"]["shown"]
    assert gi["selectedImages"]["nSelected"] == 40 and len(shown) == 30
    assert shown == [inputs.filenames[i] for i in inputs.selected[:30]]
    sizes = gi["datasetInformation"]["datasetSizes"]
    # 300 embedded + 3 corrupt + 5 duplicates + 2 filtered = 310 input files.
    assert sizes == {
        "nInput": 310,
        "nFiltered": 2,
        "nCorrupt": 3,
        "nDuplicate": 5,
        "nRemoved": 260,
        "nSelected": 40,
    }
    parts = ("nFiltered", "nCorrupt", "nDuplicate", "nRemoved", "nSelected")
    assert sum(sizes[k] for k in parts) == sizes["nInput"]
    examples = gi["selectedAndRemovedImageExamples"]
    assert len(examples) == inputs.n_example_images == 6
    selected = {inputs.filenames[i] for i in inputs.selected}
    for e in examples:
        assert e["selectedImage"] in selected and e["removedImage"] not in selected
        i, j = e["removedIndex"], e["selectedIndex"]
        d = float(np.linalg.norm(inputs.embeddings[i] - inputs.embeddings[j]))
        assert e["distance"] == pytest.approx(d, abs=1e-4)
    # The rank orders the removed images by distance to the selection: 0 is the closest pair.
    by_rank = sorted(examples, key=lambda e: e["removedRank"])
    assert by_rank[0]["removedRank"] == 0 == examples[0]["removedRank"]
    assert [e["distance"] for e in by_rank] == sorted(e["distance"] for e in examples)


def test_timing_adds_up_to_the_wall_clock(built):
    inputs, report, _ = built
    rows = report["stageSeconds"]
    # The given steps in order (startup first), then the report's own time, then the rest.
    assert list(rows) == [*inputs.stage_seconds, "report", "other"]
    assert {k: rows[k] for k in inputs.stage_seconds} == inputs.stage_seconds
    # 4 + 0.1 + 3.2 + 0.1 + 40 + 0.3 = 47.7 s of steps in 95.5 s before the report began.
    assert rows["other"] == pytest.approx(95.5 - 47.7)
    total = report["generalInformation"]["runInformation"]["totalProcessingTimeS"]
    assert sum(rows.values()) == pytest.approx(total)


def test_run_metadata_is_copied(built):
    inputs, report, _ = built
    assert report["config"] == inputs.config
    assert report["versions"] == inputs.versions
    assert report["strategies"] == inputs.strategies
    assert report["corruptSamples"] == inputs.corrupt
    assert report["duplicateSamples"]["nTotal"] == 5
    assert report["duplicateSamples"]["examples"] == inputs.duplicates


def test_embedding_information(built):
    _, report, _ = built
    hists = report["distanceHistograms"]
    for key, n in (("before", 300), ("after", 40)):
        h = hists[key]
        assert h["range"] == [0.0, 2.0]  # normalised embeddings
        assert len(h["bins"]) == len(h["counts"]) + 1
        assert sum(h["counts"]) == h["nPairs"] == n * (n - 1) // 2
    emb = report["datasetAnalysis"]["embeddingInformation"]
    assert emb["normalized"] and emb["embeddingDimension"] == 8
    nn = emb["distanceToNearestNeighborInSet"]
    # A diverse selection is less crowded than the input, half of which is one dense cluster.
    assert nn["selected"]["metrics"]["median"] > nn["input"]["metrics"]["median"]
    cov = emb["distanceToCoverInput"]
    assert cov["exact"] and cov["nQueries"] == 300 and cov["metrics"]["min"] == 0.0
    pca = emb["scatterPlotData"]["pcaEmbeddingData"]
    assert len(pca["input2dEmbeddings"]) == 300
    assert len(pca["selectedExcludingDatapool2dEmbeddings"]) == 40
    assert all(len(p) == 2 for p in pca["input2dEmbeddings"])


def test_distributions_are_placed_report_v2_style(built):
    inputs, report, _ = built
    locations = report["datasetAnalysis"]["distributionLocations"]
    task = ["datasetAnalysis", "predictionTaskInformation", "clf"]
    meta = ["datasetAnalysis", "metadataInformation"]
    assert [loc["path"] for loc in locations] == [
        [*meta, "lightlyNumeric", "lightly.sharpness"],
        [*meta, "customCategorical", "weather"],
        [*meta, "customNumeric", "temp"],
        [*task, "activeLearningScoreDistributions", "uncertainty_margin"],
        [*task, "categoryDistribution"],
        [*task, "categoryToCountsPerSample", "cat"],
    ]
    assert [loc["kind"] for loc in locations] == [d.kind for d in inputs.distributions]
    for loc, dist in zip(locations, inputs.distributions, strict=True):
        node = report
        for key in loc["path"]:
            node = node[key]
        assert load_distributions([node]) == [dist]  # the producer's numbers, unchanged
        assert loc["plot"] == f"plots/{loc['plotName']}.png"
    sharp = report["datasetAnalysis"]["metadataInformation"]["lightlyNumeric"]["lightly.sharpness"]
    # report_v2's NumericDistributionPerSet: a bin count and a range, 20 counts per set.
    assert sharp["bins"] == 20 and len(sharp["range"]) == 2
    assert sum(sharp["input"]["counts"]) == 300 and sum(sharp["selected"]["counts"]) == 40
    classes = report["datasetAnalysis"]["predictionTaskInformation"]["clf"]["categoryDistribution"]
    assert set(classes["input"]["counts"]) == {"cat", "dog"}
    assert set(classes["input"]["metrics"]) == {"giniImbalance", "normalizedEntropy"}


def test_plots_are_written(built):
    _, report, out = built
    names = set(report["plots"])
    assert {
        "selected_grid",
        "sizes",
        "distance_distr_before",
        "distance_distr_after",
        "scatter_pca",
        "scatter_pca_no_overlay",
        "nearest_neighbor_distances",
        "examples_0",
    } <= names
    assert {n for n in names if n.startswith("distribution_")} == {
        f"distribution_{i}" for i in range(6)
    }
    # Lightly's filter_decision_<n>.png: one per example pair, n the removed image's rank.
    examples = report["generalInformation"]["selectedAndRemovedImageExamples"]
    assert {n for n in names if n.startswith("filter_decision_")} == {
        f"filter_decision_{e['removedRank']}" for e in examples
    }
    assert "filter_decision_0" in names
    for rel in report["plots"].values():
        assert (out / rel).stat().st_size > 1000


def _pdf_pages_text(pdf):
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return text.split("\f")


def _pages_with_images(pdf):
    listing = subprocess.run(
        ["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    return {int(line.split()[0]) for line in listing if line.strip()}


@needs_poppler
def test_pdf_pages_show_what_they_promise(built):
    _, report, out = built
    pages = _pdf_pages_text(out / "report.pdf")
    images = _pages_with_images(out / "report.pdf")
    first = pages[0]
    for text in (
        "Asked for 500 samples",
        "efficientnet-lite0",
        "Test CPU 9000",
        "thresher run /data/input",
        "Selected 40 of 310",
        "in pick order",
    ):
        assert text in first, text
    assert 1 in images  # the grid of selected images
    # Every distribution's heading sits on a page with an image: its plot, never a table.
    for loc in report["datasetAnalysis"]["distributionLocations"]:
        page = next(i for i, t in enumerate(pages, 1) if loc["label"] in t)
        assert page in images, loc["label"]
    # The raw configuration is the appendix, the last page; the timing table has the report.
    appendix = next(i for i, t in enumerate(pages) if "Appendix: effective configuration" in t)
    assert appendix > next(i for i, t in enumerate(pages) if "Corrupt files and duplicates" in t)
    assert not any('"worker_config"' in t for t in pages[:appendix])
    timing = next(t for t in pages if "Time per step" in t)
    assert "report" in timing and "total (wall clock)" in timing


@needs_poppler
def test_pdf_has_pages_and_renders(built, tmp_path):
    _, _, out = built
    info = subprocess.run(
        ["pdfinfo", str(out / "report.pdf")], capture_output=True, text=True, check=True
    ).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages")))
    assert pages > 1
    subprocess.run(
        ["pdftoppm", "-png", "-r", "20", str(out / "report.pdf"), str(tmp_path / "p")],
        check=True,
        capture_output=True,
    )
    assert len(list(tmp_path.glob("p-*.png"))) == pages


def test_images_that_fail_to_open_become_placeholders(tmp_path):
    def broken(name):
        raise OSError(f"cannot open {name}")

    inputs = dataclasses.replace(synthetic_inputs(n=60, n_selected=10), load_image=broken)
    report = build_report(inputs, tmp_path)
    assert (tmp_path / report["plots"]["examples_0"]).exists()
    assert (tmp_path / "report.pdf").stat().st_size > 0


def _tiny(n: int, n_selected: int, **kw) -> ReportInputs:
    base = synthetic_inputs(n=max(n, 10), n_selected=min(max(n_selected, 1), 5))
    x = np.random.default_rng(1).normal(size=(n, 3)).astype(np.float32) * 4
    sizes = {
        "n_input": n + 1,
        "n_filtered": 0,
        "n_corrupt": 1,
        "n_duplicate": 0,
        "n_removed": n - n_selected,
        "n_selected": n_selected,
    }
    fields = dict(
        filenames=[f"f{i}.png" for i in range(n)],
        embeddings=x,
        selected=np.arange(n_selected),
        sizes=sizes,
        corrupt={"bad.png": "truncated"},
        duplicates={},
        distributions=[],
        strategies=[],
        load_image=None,
    )
    fields.update(kw)
    return dataclasses.replace(base, **fields)


@pytest.mark.parametrize(("n", "n_selected"), [(0, 0), (1, 1), (5, 2)])
def test_degenerate_runs_still_produce_a_report(tmp_path, n, n_selected):
    report = build_report(_tiny(n, n_selected), tmp_path)
    assert _strict_json(tmp_path / "report.json") == report
    assert report["generalInformation"]["datasetInformation"]["datasetSizes"]["nSelected"] == (
        n_selected
    )
    assert (tmp_path / "report.pdf").exists()


def test_unnormalised_embeddings_use_zero_to_max_bins(tmp_path):
    report = build_report(_tiny(5, 2), tmp_path)
    h = report["distanceHistograms"]
    assert not report["datasetAnalysis"]["embeddingInformation"]["normalized"]
    assert h["before"]["range"][0] == 0.0
    assert h["before"]["range"][1] == pytest.approx(
        max(h["before"]["metrics"]["max"], h["after"]["metrics"]["max"])
    )
    assert not math.isnan(h["before"]["range"][1])


def test_inconsistent_inputs_are_rejected(tmp_path):
    good = _tiny(5, 2)
    with pytest.raises(ValueError, match="do not add up"):
        build_report(dataclasses.replace(good, sizes={**good.sizes, "n_input": 99}), tmp_path)
    with pytest.raises(ValueError, match="sizes disagree"):
        build_report(dataclasses.replace(good, selected=np.arange(3)), tmp_path)
    with pytest.raises(ValueError, match="unique"):
        build_report(dataclasses.replace(good, selected=np.array([1, 1])), tmp_path)
    with pytest.raises(ValueError, match="shape"):
        build_report(dataclasses.replace(good, embeddings=good.embeddings[:4]), tmp_path)
    assert not (tmp_path / "report.json").exists()
