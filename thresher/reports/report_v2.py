"""report_v2.json: the run's numbers in the key structure of Lightly's ``ReportV2``.

report.json stays thresher's own report (every number the PDF shows); report_v2.json holds the
same numbers where Lightly's ReportV2 model puts them (camelCase on the wire), for tools that
read Lightly's file. The key paths are the reference's (``REPORT_V2_KEY_PATHS`` in
tests/reports/test_report_v2.py lists them):

- ``generalInformation``: ``workerInformation{buildTime, buildVersion}``,
  ``runInformation{startTimestamp, endTimestamp, totalProcessingTimeS, runId, runUrl}``,
  ``datasetInformation{datasetSizes{nInput, nCorrupt, nDuplicate, nRemoved, nSelected,
  nPreselectedDatapool, nSelectedWithDatapool}, datasetId, datasetUrl, datasetName}``,
  ``annotationSavings{imageClassification, objectDetection, semanticSegmentation:
  {costSavings, co2Savings}}``, ``selectedAndRemovedImageExamples[{selectedImage,
  removedImage, distance}]``;
- ``datasetAnalysis``: ``embeddingInformation{distanceToNearestNeighborInSet,
  distanceToCoverInput, scatterPlotData{pcaEmbeddingData, umapEmbeddingData}}`` (each
  ``{input2dEmbeddings, datapool2dEmbeddings, selectedExcludingDatapool2dEmbeddings,
  exampleImages[{location, filename}]}``), ``metadataInformation{lightlyNumeric,
  customNumeric, customCategorical}`` and ``predictionTaskInformation{<task>: {taskType,
  categoryIdToName, activeLearningScoreDistributions, categoryDistribution,
  categoryToCountsPerSample}}``.

Where thresher has no value, the key is there with ``null`` (or an empty list/map) rather than
missing: runs are not attached to a platform dataset here (``datasetId``, ``runUrl``...),
``datapool2dEmbeddings`` is empty (the map shows this run's files; ``nPreselectedDatapool``
counts the datapool's earlier picks, docs/datapool.md), and ``co2Savings`` is not estimated.
``umapEmbeddingData`` is the k = 15 UMAP map of report.json (``projection`` ``"umap"``,
``nNeighbors`` 15; a seeded sample of at most 5,000 rows); when umap-learn cannot be imported
it holds the PCA map and ``projection`` says ``"pca"``. ``annotationSavings`` comes from
report.json (:mod:`thresher.reports.cost`), without thresher's extra keys.

Example:
    >>> v2 = report_v2(report, filenames, xy, selected)  # doctest: +SKIP
    >>> sorted(v2)  # doctest: +SKIP
    ['datasetAnalysis', 'generalInformation']
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.reports.stats import subsample

#: Example images marked on the 2-D maps: the first selected samples, in pick order.
N_EXAMPLE_IMAGES = 20

#: Most input / selected points stored per map (as in report.json).
MAX_SCATTER_POINTS = 5000


def _map_data(
    xy: NDArray[np.float64],
    selected: NDArray[np.int64],
    filenames: list[str],
    seed: int,
) -> dict[str, Any]:
    shown_in = subsample(len(xy), MAX_SCATTER_POINTS, seed)
    shown_sel = selected[subsample(len(selected), MAX_SCATTER_POINTS, seed + 1)]
    return {
        "input2dEmbeddings": np.round(xy[shown_in], 5).tolist(),
        "datapool2dEmbeddings": [],
        "selectedExcludingDatapool2dEmbeddings": np.round(xy[shown_sel], 5).tolist(),
        "exampleImages": [
            {"location": np.round(xy[i], 5).tolist(), "filename": filenames[int(i)]}
            for i in selected[:N_EXAMPLE_IMAGES]
        ],
    }


def _umap_data(emb: dict[str, Any], pca: dict[str, Any]) -> dict[str, Any]:
    """The k = 15 UMAP map of report.json (else another k), or the PCA map marked as such."""
    umap = emb["scatterPlotData"].get("umapEmbeddingData") or {}
    maps = umap.get("maps") or {}
    if not maps:
        out = copy.deepcopy(pca)
        out["projection"] = "pca"
        out["note"] = "umap-learn is not installed: this is the PCA map"
        return out
    k = "15" if "15" in maps else next(iter(maps))
    m = maps[k]
    return {
        "input2dEmbeddings": m["input2dEmbeddings"],
        "datapool2dEmbeddings": [],
        "selectedExcludingDatapool2dEmbeddings": m["selectedExcludingDatapool2dEmbeddings"],
        "exampleImages": m["exampleImages"],
        "projection": "umap",
        "nNeighbors": int(k),
        "inputSubsampled": umap.get("inputSubsampled"),
    }


def report_v2(
    report: dict[str, Any],
    filenames: list[str],
    xy: NDArray[np.float64],
    selected: NDArray[np.int64],
) -> dict[str, Any]:
    """The ReportV2 dict of a run, from its report.json dict and its 2-D map.

    Args:
        report: The report.json dict (:func:`thresher.reports.build.build_report`), with its
            timing already added.
        filenames: The embedded files, row order.
        xy: (len(filenames), 2) PCA coordinates of every row.
        selected: Selected row indices, pick order.

    Returns:
        A JSON-safe dict with ``generalInformation`` and ``datasetAnalysis``.
    """
    gi, da = report["generalInformation"], report["datasetAnalysis"]
    run, sizes = gi["runInformation"], gi["datasetInformation"]["datasetSizes"]
    seed = int(report.get("seed", 0))
    emb = da["embeddingInformation"]
    examples = [
        {k: e[k] for k in ("selectedImage", "removedImage", "distance")}
        for e in gi["selectedAndRemovedImageExamples"]
    ]
    maps: dict[str, Any] = {}
    if len(xy):
        pca = _map_data(xy, selected, filenames, seed)
        pca["explainedVarianceRatio"] = emb["scatterPlotData"]["pcaEmbeddingData"][
            "explainedVarianceRatio"
        ]
        maps = {"pcaEmbeddingData": pca, "umapEmbeddingData": _umap_data(emb, pca)}
    else:
        maps = {"pcaEmbeddingData": None, "umapEmbeddingData": None}
    tasks = {
        task: {
            "taskType": info.get("taskType"),
            "categoryIdToName": info.get("categoryIdToName", {}),
            "activeLearningScoreDistributions": info.get("activeLearningScoreDistributions", {}),
            "categoryDistribution": info.get("categoryDistribution"),
            "categoryToCountsPerSample": info.get("categoryToCountsPerSample", {}),
        }
        for task, info in da.get("predictionTaskInformation", {}).items()
    }
    return {
        "generalInformation": {
            "workerInformation": {
                "buildTime": None,
                "buildVersion": gi["workerInformation"].get("buildVersion"),
            },
            "runInformation": {
                "startTimestamp": run["startTimestamp"],
                "endTimestamp": run.get("endTimestamp"),
                "totalProcessingTimeS": run.get("totalProcessingTimeS"),
                "runId": run["runId"],
                "runUrl": None,
            },
            "datasetInformation": {
                "datasetSizes": {
                    "nInput": sizes["nInput"],
                    "nCorrupt": sizes["nCorrupt"],
                    "nDuplicate": sizes["nDuplicate"],
                    "nRemoved": sizes["nRemoved"],
                    "nSelected": sizes["nSelected"],
                    "nPreselectedDatapool": sizes.get("nPreselectedDatapool", 0),
                    "nSelectedWithDatapool": sizes.get("nSelectedWithDatapool", sizes["nSelected"]),
                    "nFiltered": sizes["nFiltered"],  # thresher: relevant_filenames_file
                },
                "datasetId": None,
                "datasetUrl": None,
                "datasetName": None,
            },
            "annotationSavings": {
                task: {k: v[k] for k in ("costSavings", "co2Savings")}
                for task, v in gi["annotationSavings"].items()
            },
            "selectedAndRemovedImageExamples": examples,
        },
        "datasetAnalysis": {
            "embeddingInformation": {
                "distanceToNearestNeighborInSet": copy.deepcopy(
                    emb["distanceToNearestNeighborInSet"]
                ),
                "distanceToCoverInput": copy.deepcopy(emb["distanceToCoverInput"]),
                "scatterPlotData": maps,
            },
            "metadataInformation": copy.deepcopy(da["metadataInformation"]),
            "predictionTaskInformation": tasks,
        },
    }
