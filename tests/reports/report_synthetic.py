"""Synthetic run data for the report tests: clustered embeddings, generated images, and the
selection inputs' distributions made by the real producer (``report_distributions``)."""

from __future__ import annotations

import datetime as dt
import pathlib
import zlib

import numpy as np
from PIL import Image

from thresher.reports import ReportInputs
from thresher.selection import report_distributions
from thresher.storage.predictions import TaskPredictions

#: Strategies whose inputs cover every distribution kind and every report_v2 place.
STRATEGIES = [
    {"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}},
    {"input": {"type": "METADATA", "key": "lightly.sharpness"}, "strategy": {"type": "WEIGHTS"}},
    {
        "input": {"type": "METADATA", "key": "weather"},
        "strategy": {"type": "BALANCE", "distribution": "UNIFORM"},
    },
    {"input": {"type": "METADATA", "key": "temp"}, "strategy": {"type": "WEIGHTS"}},
    {
        "input": {"type": "SCORES", "task": "clf", "score": "uncertainty_margin"},
        "strategy": {"type": "WEIGHTS"},
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
            "categories": ["cat"],
        },
        "strategy": {"type": "WEIGHTS"},
    },
]


def clustered_embeddings(n: int, dim: int = 8, k: int = 4, seed: int = 0) -> np.ndarray:
    """``n`` L2-normalised points around ``k`` centres, one cluster much denser than the rest."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    # Half the points sit in cluster 0 with a small spread: a dense region a selection thins out.
    labels = np.where(np.arange(n) < n // 2, 0, rng.integers(1, k, size=n))
    spread = np.where(labels == 0, 0.05, 0.4)[:, None]
    x = centres[labels] + spread * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def memmap_embeddings(path: pathlib.Path, n: int, dim: int, seed: int = 0) -> np.memmap:
    """``n`` unit vectors around 8 centres (half in one dense cluster), written chunk by chunk
    to a ``.npy`` file and opened read-only as a memmap, as the pipeline hands them over.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, dim)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    chunk = 50_000
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        labels = np.where(rng.random(m) < 0.5, 0, rng.integers(1, 8, size=m))
        spread = np.where(labels == 0, 0.05, 0.4).astype(np.float32)[:, None]
        x = centres[labels] + spread * rng.standard_normal((m, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[i : i + m] = x
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def farthest_point_selection(x: np.ndarray, n: int) -> np.ndarray:
    """Greedy k-center pick (a stand-in for the selection engine)."""
    picked = [0]
    d = np.linalg.norm(x - x[0], axis=1)
    for _ in range(n - 1):
        j = int(np.argmax(d))
        picked.append(j)
        d = np.minimum(d, np.linalg.norm(x - x[j], axis=1))
    return np.array(picked, dtype=np.int64)


def make_image(name: str) -> Image.Image:
    """A small image whose colour depends on the name; names containing 'broken' fail."""
    if "broken" in name:
        raise OSError(f"cannot identify image file {name!r}")
    h = zlib.crc32(name.encode()) % 255
    img = Image.new("RGB", (64, 48), (h, 255 - h, (h * 7) % 255))
    for i in range(0, 48, 6):
        img.paste((255, 255, 255), (0, i, 64, i + 2))
    return img


def selection_inputs(x: np.ndarray, filenames: list[str], seed: int = 0) -> dict:
    """What ``gather_inputs`` would hand ``select()``: metadata, scores and predictions."""
    n = len(x)
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 3, size=(n, 2)).astype(np.int32)  # cats and dogs per image
    probs = rng.dirichlet([1.0, 1.0], size=n).astype(np.float32)
    preds = TaskPredictions(
        task="clf",
        task_type="object-detection",
        category_ids=np.array([0, 1]),
        category_names=["cat", "dog"],
        class_distribution=probs,
        category_counts=counts,
        scores={"uncertainty_margin": (1 - np.abs(probs[:, 0] - probs[:, 1])).astype(np.float32)},
        has_predictions=np.ones(n, bool),
    )
    weather = np.array(["sunny", "rainy", "snowy"], dtype=object)[rng.integers(0, 3, size=n)]
    return {
        "embeddings": x,
        "filenames": filenames,
        "scores": {},
        "predictions": {"clf": preds},
        "metadata": {
            "lightly.sharpness": rng.gamma(2.0, 1.0, size=n),
            "weather": weather,
            "temp": rng.normal(15.0, 5.0, size=n),
        },
        "queries": {},
    }


def synthetic_inputs(n: int = 300, n_selected: int = 40, seed: int = 0) -> ReportInputs:
    """A complete, consistent ReportInputs for a run over ``n`` embedded images."""
    x = clustered_embeddings(n, seed=seed)
    sel = farthest_point_selection(x, n_selected)
    filenames = [f"images/cluster_ä/img_{i:04d}.jpg" for i in range(n)]
    filenames[1] = "images/broken_ünïcødé_名前.jpg"
    config = {"n_samples": n_selected, "strategies": STRATEGIES}
    distributions = report_distributions(config, selection_inputs(x, filenames, seed), sel, seed)
    corrupt = {f"bad/file_{i}.png": "image file is truncated" for i in range(3)}
    duplicates = {f"dup/copy_{i}.jpg": filenames[i] for i in range(5)}
    start = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
    return ReportInputs(
        run_id="run-0001",
        started_at=start,
        ended_at=start + dt.timedelta(seconds=95.5),
        stage_seconds={
            "startup": 4.0,
            "list_input": 0.1,
            "corruption_check": 3.2,
            "deduplicate": 0.1,
            "embed": 40.0,
            "select": 0.3,
        },
        versions={"thresher": "0.1.0", "torch": "2.14.1", "model": "efficientnet-lite0"},
        config={
            "worker_config": {"enable_corruptness_check": True, "remove_exact_duplicates": True},
            "selection_config": config,
            "lightly_config": {"seed": 0, "loader": {"batch_size": 16}},
        },
        input_url="file:///data/input",
        sizes={
            "n_input": n + 3 + 5 + 2,
            "n_filtered": 2,
            "n_corrupt": 3,
            "n_duplicate": 5,
            "n_removed": n - n_selected,
            "n_selected": n_selected,
        },
        filenames=filenames,
        embeddings=x,
        selected=sel,
        corrupt=corrupt,
        duplicates=duplicates,
        load_image=make_image,
        distributions=distributions,
        strategies=STRATEGIES,
        device="CPU: Test CPU 9000 (2 cores)",
        command_line="thresher run /data/input --n-samples 40",
        notes=["Asked for 500 samples but only 300 images were usable: all 300 are selected."],
        model_description="efficientnet-lite0 (ImageNet-pretrained; no checkpoint or training set)",
    )
