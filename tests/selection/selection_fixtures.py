"""Shared data for the selection tests: one small pool with every kind of input."""

from __future__ import annotations

from typing import Any

import numpy as np

from thresher.storage.predictions import TaskPredictions

N = 60
E = {"type": "EMBEDDINGS"}

# One working {input, strategy} pair per registered strategy; the conformance suite checks
# that every registry entry has one.
CASES: dict[str, dict[str, Any]] = {
    "DIVERSITY": {"input": E, "strategy": {"type": "DIVERSITY"}},
    "WEIGHTS": {
        "input": {"type": "SCORES", "task": "cls", "score": "uncertainty_entropy"},
        "strategy": {"type": "WEIGHTS"},
    },
    "THRESHOLD": {
        "input": {"type": "METADATA", "key": "m.num"},
        "strategy": {"type": "THRESHOLD", "threshold": 0.3, "operation": "BIGGER"},
    },
    "BALANCE": {
        "input": {"type": "METADATA", "key": "m.cat"},
        "strategy": {"type": "BALANCE", "target": {"a": 0.5, "b": 0.3}},
    },
    "SIMILARITY": {
        "input": {"type": "EMBEDDINGS", "tag_name": "query-tag"},
        "strategy": {"type": "SIMILARITY"},
    },
    "TYPICALITY": {
        "input": E,
        "strategy": {"type": "TYPICALITY", "num_nearest_neighbors": 5},
    },
    "COVERAGE": {"input": E, "strategy": {"type": "COVERAGE", "kernel_width": 0.3}},
}


def make_predictions(labels: np.ndarray, n_classes: int, seed: int = 0) -> TaskPredictions:
    """Classification predictions whose argmax is ``labels``, with random confidence."""
    rng = np.random.default_rng(seed)
    n = labels.shape[0]
    p = rng.dirichlet(np.ones(n_classes), size=n).astype(np.float32)
    p[np.arange(n), labels] += 1.0
    p /= p.sum(axis=1, keepdims=True)
    counts = np.zeros((n, n_classes), np.int32)
    counts[np.arange(n), labels] = 1
    srt = np.sort(p, axis=1)
    scores = {
        "uncertainty_least_confidence": (1 - srt[:, -1]) / (1 - 1 / n_classes),
        "uncertainty_margin": 1 - (srt[:, -1] - srt[:, -2]),
        "uncertainty_entropy": -(p * np.log(p)).sum(1) / np.log(n_classes),
    }
    return TaskPredictions(
        task="cls",
        task_type="classification",
        category_ids=np.arange(n_classes),
        category_names=[f"c{j}" for j in range(n_classes)],
        class_distribution=p,
        category_counts=counts,
        scores={k: v.astype(np.float32) for k, v in scores.items()},
        has_predictions=np.ones(n, bool),
    )


def make_inputs(n: int = N, d: int = 4, seed: int = 0) -> dict[str, Any]:
    """Keyword arguments for ``select`` covering every input type."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    return {
        "embeddings": x,
        "filenames": [f"img_{i:03d}.png" for i in range(n)],
        "predictions": {"cls": make_predictions(labels, 3, seed)},
        "metadata": {
            "m.num": rng.random(n),
            "m.cat": np.array([["a", "b", "c"][v] for v in labels], dtype=object),
        },
        "queries": {"query-tag": ["img_000.png", "img_001.png"]},
    }
