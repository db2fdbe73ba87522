"""The report of a real run whose strategies read scores, predictions and metadata."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from thresher.flows import curate

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdfimages") is None,
    reason="poppler-utils (pdftotext, pdfimages) not installed",
)


def _write_inputs(lightly: Path, dataset) -> None:
    """Classification predictions (the class is the cluster) and metadata (a number, a category)."""
    pred = lightly / ".lightly" / "predictions"
    (pred / "clf").mkdir(parents=True)
    (pred / "tasks.json").write_text(json.dumps(["clf"]))
    cats = [{"id": k, "name": f"class_{k}"} for k in range(dataset.n_clusters)]
    (pred / "clf" / "schema.json").write_text(
        json.dumps({"task_type": "classification", "categories": cats})
    )
    meta = lightly / ".lightly" / "metadata"
    meta.mkdir(parents=True)
    (meta / "schema.json").write_text(
        json.dumps(
            [
                {
                    "name": "temp",
                    "path": "temp",
                    "defaultValue": 0.0,
                    "valueDataType": "NUMERIC_FLOAT",
                },
                {
                    "name": "scene",
                    "path": "scene",
                    "defaultValue": "?",
                    "valueDataType": "CATEGORICAL_STRING",
                },
            ]
        )
    )
    rng = np.random.default_rng(0)
    for name in sorted(dataset.clusters) + sorted(dataset.duplicates):
        k = dataset.clusters.get(name, dataset.clusters.get(dataset.duplicates.get(name, ""), 0))
        probs = np.full(dataset.n_clusters, 0.1 / (dataset.n_clusters - 1))
        probs[k] = 0.9 - rng.uniform(0, 0.4)
        stem = str(Path(name).with_suffix(""))
        for root, body in (
            (
                pred / "clf",
                {
                    "predictions": [
                        {"category_id": k, "probabilities": (probs / probs.sum()).tolist()}
                    ]
                },
            ),
            (
                meta,
                {
                    "type": "image",
                    "metadata": {"temp": float(k * 10 + rng.uniform(0, 5)), "scene": f"s{k % 2}"},
                },
            ),
        ):
            (root / stem).parent.mkdir(parents=True, exist_ok=True)
            (root / f"{stem}.json").write_text(json.dumps({"file_name": name, **body}))


STRATEGIES = [
    {"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}},
    {
        "input": {"type": "SCORES", "task": "clf", "score": "uncertainty_margin"},
        "strategy": {"type": "WEIGHTS", "strength": 0.5},
    },
    {
        "input": {"type": "PREDICTIONS", "task": "clf", "name": "CLASS_DISTRIBUTION"},
        "strategy": {"type": "BALANCE", "distribution": "UNIFORM"},
    },
    {
        "input": {
            "type": "PREDICTIONS",
            "task": "clf",
            "name": "CATEGORY_COUNT",
            "categories": ["class_1"],
        },
        "strategy": {"type": "WEIGHTS"},
    },
    {"input": {"type": "METADATA", "key": "temp"}, "strategy": {"type": "WEIGHTS"}},
    {
        "input": {"type": "METADATA", "key": "scene"},
        "strategy": {"type": "BALANCE", "distribution": "UNIFORM"},
    },
    {"input": {"type": "METADATA", "key": "lightly.sharpness"}, "strategy": {"type": "WEIGHTS"}},
]


@needs_poppler
def test_report_places_and_draws_every_input_distribution(
    prefect_server, example_dataset, tmp_path
):
    lightly = tmp_path / "lightly"
    _write_inputs(lightly, example_dataset)
    result = curate(
        input=str(example_dataset.root),
        lightly=str(lightly),
        selection_config={"n_samples": 8, "strategies": STRATEGIES},
    )
    run = lightly / ".lightly" / "runs" / result.run_id
    report = json.loads((run / "report.json").read_text())
    da = report["datasetAnalysis"]
    task = ["datasetAnalysis", "predictionTaskInformation", "clf"]
    meta = ["datasetAnalysis", "metadataInformation"]
    assert [loc["path"] for loc in da["distributionLocations"]] == [
        [*task, "activeLearningScoreDistributions", "uncertainty_margin"],
        [*task, "categoryDistribution"],
        [*task, "categoryToCountsPerSample", "class_1"],
        [*meta, "customNumeric", "temp"],
        [*meta, "customCategorical", "scene"],
        [*meta, "lightlyNumeric", "lightly.sharpness"],
    ]
    sizes = report["generalInformation"]["datasetInformation"]["datasetSizes"]
    n_embedded = sizes["nSelected"] + sizes["nRemoved"]
    for loc in da["distributionLocations"]:
        node = report
        for key in loc["path"]:
            node = node[key]
        if loc["kind"] == "numeric":  # report_v2's NumericDistributionPerSet
            assert node["bins"] == 20 and len(node["range"]) == 2
            assert sum(node["input"]["counts"]) == n_embedded
            assert sum(node["selected"]["counts"]) == sum(node["random"]["counts"]) == 8
        else:
            assert set(node["input"]["metrics"]) == {"giniImbalance", "normalizedEntropy"}
        assert (run / loc["plot"]).stat().st_size > 1000
    # report_v2.json (Lightly's ReportV2 keys) sits beside it, the same distributions at the
    # same paths.
    v2 = json.loads((run / "report_v2.json").read_text())
    for loc in da["distributionLocations"]:
        node, node_v2 = report, v2
        for key in loc["path"]:
            node, node_v2 = node[key], node_v2[key]
        assert node_v2 == node
    # The PDF draws each distribution as a plot: its heading's page holds an image.
    pdf = run / "report.pdf"
    pages = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout.split("\f")
    listing = subprocess.run(
        ["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    with_images = {int(line.split()[0]) for line in listing if line.strip()}
    assert 1 in with_images  # page 1: the grid of selected images
    for loc in da["distributionLocations"]:
        page = next(i for i, text in enumerate(pages, 1) if loc["label"] in text)
        assert page in with_images, (loc["label"], pages[page - 1][:300])
