"""Predictions, metadata and built-in metadata inputs in a real run (issue 3 wired into the flow)."""

import json
from pathlib import Path

import numpy as np

from thresher.flows import curate


def _write_lightly_inputs(lightly: Path, dataset) -> None:
    """A classification task whose class is the cluster, and metadata with a number and a category."""
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
                    "name": "temperature",
                    "path": "weather.temp",
                    "defaultValue": 0.0,
                    "valueDataType": "NUMERIC_FLOAT",
                },
                {
                    "name": "scene",
                    "path": "scene",
                    "defaultValue": "unknown",
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
        probs /= probs.sum()
        stem = str(Path(name).with_suffix(""))
        (pred / "clf" / stem).parent.mkdir(parents=True, exist_ok=True)
        (pred / "clf" / f"{stem}.json").write_text(
            json.dumps(
                {
                    "file_name": name,
                    "predictions": [{"category_id": k, "probabilities": probs.tolist()}],
                }
            )
        )
        (meta / stem).parent.mkdir(parents=True, exist_ok=True)
        (meta / f"{stem}.json").write_text(
            json.dumps(
                {
                    "file_name": name,
                    "type": "image",
                    "metadata": {
                        "weather": {"temp": float(k * 10 + rng.uniform(0, 5))},
                        "scene": f"s{k % 2}",
                    },
                }
            )
        )


def test_every_input_kind_in_one_run(prefect_server, example_dataset, tmp_path):
    lightly = tmp_path / "lightly"
    _write_lightly_inputs(lightly, example_dataset)
    strategies = [
        {"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}},
        {
            "input": {"type": "SCORES", "task": "clf", "score": "uncertainty_margin"},
            "strategy": {"type": "WEIGHTS", "strength": 0.5},
        },
        {
            "input": {"type": "PREDICTIONS", "task": "clf", "name": "CLASS_DISTRIBUTION"},
            "strategy": {"type": "BALANCE", "target": {"class_0": 0.5}},
        },
        {
            "input": {"type": "METADATA", "key": "weather.temp"},
            "strategy": {"type": "THRESHOLD", "threshold": 15, "operation": "BIGGER"},
        },
        {
            "input": {"type": "METADATA", "key": "lightly.sharpness"},
            "strategy": {"type": "WEIGHTS"},
        },
    ]
    result = curate(
        input=str(example_dataset.root),
        lightly=str(lightly),
        selection_config={"n_samples": 6, "strategies": strategies},
    )
    run = lightly / ".lightly" / "runs" / result.run_id
    picked = (run / "filenames" / "selected.txt").read_text().split()
    assert len(picked) == 6
    # THRESHOLD first: temp = 10*k + [0,5) > 15 keeps clusters 2, 3 and 4 only.
    assert {example_dataset.clusters[n] for n in picked} <= {2, 3, 4}
    report = json.loads((run / "report.json").read_text())
    blob = json.dumps(report["datasetAnalysis"])
    for name in ("lightly.sharpness", "weather.temp", "uncertainty_margin"):
        assert name in blob, name


def test_similarity_to_a_tag_and_random_input(prefect_server, example_dataset, tmp_path):
    lightly = tmp_path / "lightly"
    (lightly / ".lightly" / "tags").mkdir(parents=True)
    queries = [n for n, k in sorted(example_dataset.clusters.items()) if k == 2][:2]
    (lightly / ".lightly" / "tags" / "cats.txt").write_text("\n".join(queries) + "\n")
    result = curate(
        input=str(example_dataset.root),
        lightly=str(lightly),
        selection_config={
            "n_samples": 5,
            "strategies": [
                {
                    "input": {"type": "EMBEDDINGS", "tag_name": "cats"},
                    "strategy": {"type": "SIMILARITY"},
                },
                {
                    "input": {"type": "RANDOM", "random_seed": 3},
                    "strategy": {"type": "WEIGHTS", "strength": 0.1},
                },
            ],
        },
    )
    picked = (
        (lightly / ".lightly" / "runs" / result.run_id / "filenames" / "selected.txt")
        .read_text()
        .split()
    )
    # cluster 2 has 12 images, all far closer to the two queries than any other cluster.
    assert [example_dataset.clusters[n] for n in picked] == [2] * 5
