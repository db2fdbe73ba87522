"""report_v2.json: every key path of Lightly's ReportV2 (reference section 5) is present."""

from __future__ import annotations

import json
from typing import Any

import pytest
from report_synthetic import synthetic_inputs

from thresher.reports import build_report
from thresher.reports.cost import USD_PER_IMAGE

# The ReportV2 key paths, copied by hand from shared/reference/lightly_worker_features.md
# section 5 ("report_v2.json keys come from the ReportV2 model"). "[]" steps into every item of
# a list; "<task>" stands for each prediction task. Optional keys of the reference ("?") are
# written anyway (null or empty) and listed too, except videoLevelSizes (no videos) and the
# detection-only and optional per-task keys.
REPORT_V2_KEY_PATHS: list[str] = [
    "generalInformation",
    "generalInformation.workerInformation.buildTime",
    "generalInformation.workerInformation.buildVersion",
    "generalInformation.runInformation.startTimestamp",
    "generalInformation.runInformation.endTimestamp",
    "generalInformation.runInformation.totalProcessingTimeS",
    "generalInformation.runInformation.runId",
    "generalInformation.runInformation.runUrl",
    "generalInformation.datasetInformation.datasetSizes.nInput",
    "generalInformation.datasetInformation.datasetSizes.nCorrupt",
    "generalInformation.datasetInformation.datasetSizes.nDuplicate",
    "generalInformation.datasetInformation.datasetSizes.nRemoved",
    "generalInformation.datasetInformation.datasetSizes.nSelected",
    "generalInformation.datasetInformation.datasetSizes.nPreselectedDatapool",
    "generalInformation.datasetInformation.datasetSizes.nSelectedWithDatapool",
    "generalInformation.datasetInformation.datasetId",
    "generalInformation.datasetInformation.datasetUrl",
    "generalInformation.datasetInformation.datasetName",
    *(
        f"generalInformation.annotationSavings.{task}.{key}"
        for task in ("imageClassification", "objectDetection", "semanticSegmentation")
        for key in ("costSavings", "co2Savings")
    ),
    "generalInformation.selectedAndRemovedImageExamples[].selectedImage",
    "generalInformation.selectedAndRemovedImageExamples[].removedImage",
    "generalInformation.selectedAndRemovedImageExamples[].distance",
    "datasetAnalysis.embeddingInformation.distanceToNearestNeighborInSet",
    "datasetAnalysis.embeddingInformation.distanceToCoverInput",
    *(
        f"datasetAnalysis.embeddingInformation.scatterPlotData.{m}.{key}"
        for m in ("pcaEmbeddingData", "umapEmbeddingData")
        for key in (
            "input2dEmbeddings",
            "datapool2dEmbeddings",
            "selectedExcludingDatapool2dEmbeddings",
            "exampleImages[].location",
            "exampleImages[].filename",
        )
    ),
    "datasetAnalysis.metadataInformation.lightlyNumeric",
    "datasetAnalysis.metadataInformation.customNumeric",
    "datasetAnalysis.metadataInformation.customCategorical",
    *(
        f"datasetAnalysis.predictionTaskInformation.<task>.{key}"
        for key in (
            "taskType",
            "categoryIdToName",
            "activeLearningScoreDistributions",
            "categoryDistribution",
            "categoryToCountsPerSample",
        )
    ),
]

NUMERIC_SET_KEYS = ("bins", "range", "input", "selected", "random")


def _resolve(node: Any, steps: list[str], tasks: list[str], path: str) -> list[Any]:
    """Every value at ``steps`` below ``node``; fails naming the first missing key."""
    if not steps:
        return [node]
    step, rest = steps[0], steps[1:]
    if step == "<task>":
        assert tasks, f"{path}: no prediction task in the report to check"
        return [v for t in tasks for v in _resolve(node[t], rest, tasks, path)]
    key, is_list = (step[:-2], True) if step.endswith("[]") else (step, False)
    assert isinstance(node, dict) and key in node, f"report_v2.json lacks {path} (at {key!r})"
    value = node[key]
    if not is_list:
        return _resolve(value, rest, tasks, path)
    assert isinstance(value, list) and value, f"{path}: {key} must be a non-empty list here"
    return [v for item in value for v in _resolve(item, rest, tasks, path)]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    out = tmp_path_factory.mktemp("report")
    report = build_report(synthetic_inputs(n=300, n_selected=40), out)
    v2 = json.loads((out / "report_v2.json").read_text(encoding="utf-8"))
    return report, v2


def test_every_reference_key_path_is_present(built: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, v2 = built
    tasks = sorted(v2["datasetAnalysis"]["predictionTaskInformation"])
    assert tasks == ["clf"]
    for path in REPORT_V2_KEY_PATHS:
        _resolve(v2, path.split("."), tasks, path)


def test_the_check_fails_on_a_missing_key(built: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, v2 = built
    broken = json.loads(json.dumps(v2))
    del broken["generalInformation"]["datasetInformation"]["datasetSizes"]["nSelectedWithDatapool"]
    path = "generalInformation.datasetInformation.datasetSizes.nSelectedWithDatapool"
    with pytest.raises(AssertionError, match="nSelectedWithDatapool"):
        _resolve(broken, path.split("."), [], path)


def test_values_match_report_json(built: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, v2 = built
    gi, v2gi = report["generalInformation"], v2["generalInformation"]
    sizes = v2gi["datasetInformation"]["datasetSizes"]
    assert sizes["nSelected"] == 40 == sizes["nSelectedWithDatapool"]
    assert sizes["nPreselectedDatapool"] == 0
    assert sizes["nRemoved"] == gi["datasetInformation"]["datasetSizes"]["nRemoved"]
    assert v2gi["runInformation"]["runId"] == "run-0001"
    assert v2gi["runInformation"]["endTimestamp"] == gi["runInformation"]["endTimestamp"]
    n_removed = sizes["nRemoved"]
    savings = v2gi["annotationSavings"]
    for task, price in USD_PER_IMAGE.items():
        assert savings[task]["costSavings"] == pytest.approx(n_removed * price)
    da, v2da = report["datasetAnalysis"], v2["datasetAnalysis"]
    emb = v2da["embeddingInformation"]
    assert emb["distanceToCoverInput"] == da["embeddingInformation"]["distanceToCoverInput"]
    pca = emb["scatterPlotData"]["pcaEmbeddingData"]
    old = da["embeddingInformation"]["scatterPlotData"]["pcaEmbeddingData"]
    assert pca["input2dEmbeddings"] == old["input2dEmbeddings"]
    assert (
        pca["selectedExcludingDatapool2dEmbeddings"] == old["selectedExcludingDatapool2dEmbeddings"]
    )
    # Example images: the first picks, in pick order, each with a 2-D location.
    shown = gi["selectedImages"]["shown"]
    examples = pca["exampleImages"]
    assert [e["filename"] for e in examples] == shown[: len(examples)]
    assert len(examples) == 20 and all(len(e["location"]) == 2 for e in examples)
    assert emb["scatterPlotData"]["umapEmbeddingData"]["projection"] == "umap"
    assert v2da["metadataInformation"] == da["metadataInformation"]
    al = v2da["predictionTaskInformation"]["clf"]["activeLearningScoreDistributions"]
    assert al == da["predictionTaskInformation"]["clf"]["activeLearningScoreDistributions"]
    for dist in al.values():
        assert all(k in dist for k in NUMERIC_SET_KEYS)
