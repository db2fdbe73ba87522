"""Does the pick train better models than random, k-center and TypiClust at the same budget?

Three labeled sets, embedded once with thresher's own default embedder (the embed stage's
model when nothing is configured: ImageNet-pretrained EfficientNet-Lite0 at its 224 px, fed
PNG files through ``thresher.models.inference.embed_files``, L2-normalised like a run):

- ``fmnist-train``: 4,000 images of Fashion-MNIST's training split. **The recipe was tuned on
  this set only.**
- ``fmnist-test``: 4,000 images of Fashion-MNIST's test split, held out from all tuning.
- ``lfw``: scikit-image's ``lfw_subset`` (100 faces, 100 non-faces, 25 px), held out.

For each set and each of 20 seeds (``--seeds``), the set is split at random into a pool (75%)
and an evaluation split (25%). Every method picks ``b x classes`` samples from the pool for
budgets ``b`` of 1, 2, 3, 5 and 10 labels per class; a logistic regression trained on the
picked samples only (their true labels) is scored on the evaluation split. Printed: accuracy
mean ± std over seeds, per method and budget, the default's margin over random and over
TypiClust (the mean of the paired per-seed differences ± its standard error: with 5 seeds a
margin of one point is within the noise, which is why the default is 20 seeds),
and the time of the default and the old default at a large synthetic N (1,000,000 x 64, 10,000
picks; ``--scale 200000x1280x2000`` for wide embeddings, several minutes).

    .venv/bin/python benchmarks/selection_quality.py   # all sets, ~30 min on 2 shared cores
    .venv/bin/python benchmarks/selection_quality.py --embed-only   # compute the cache only
    .venv/bin/python benchmarks/selection_quality.py --sets lfw --seeds 3 --skip-scale
    .venv/bin/python benchmarks/selection_quality.py --scale-only
    .venv/bin/python benchmarks/selection_quality.py --vs-random --sets fmnist-test,lfw --seeds 3

``--vs-random`` prints, per set, method and budget, the accuracy gain over random beside the
report's label-free measures of the same pick against random picks of the same size
(``thresher.reports.vs_random``: coverage, redundancy, k-means cluster coverage): the table in
docs/selection.md that shows whether a user can trust those measures without labels.

Embeddings are cached as .npy under ``--cache`` (default /tmp/thresher-quality); computing
them takes 5-15 minutes on 2 CPU cores, loading them a second.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FMNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist

from thresher.selection import select  # noqa: E402

E = {"type": "EMBEDDINGS"}
BUDGETS_PER_CLASS = (1, 2, 3, 5, 10)
SETS = ("fmnist-train", "fmnist-test", "lfw")
N_PER_FMNIST_SET = 4_000

# ------------------------------------------------------------------------------ data


def _read_idx(name: str, offset: int) -> NDArray[np.uint8]:
    """One gzip'd IDX file of Fashion-MNIST as a flat uint8 array."""
    with gzip.open(FMNIST / name) as fh:
        return np.frombuffer(fh.read(), np.uint8, offset=offset)


def raw_images(name: str) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """The images (N, H, W) uint8 and labels (N,) of one labeled set."""
    if name == "lfw":
        from skimage.data import lfw_subset

        x = np.round(lfw_subset() * 255).astype(np.uint8)  # 100 faces, then 100 non-faces
        return x, np.repeat(np.arange(2), 100).astype(np.int64)
    split = "train" if name == "fmnist-train" else "t10k"
    x = _read_idx(f"{split}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    y = _read_idx(f"{split}-labels-idx1-ubyte.gz", 8).astype(np.int64)
    rows = np.sort(np.random.default_rng(12345).choice(len(x), N_PER_FMNIST_SET, replace=False))
    return x[rows], y[rows]


def embed_images(images: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Embed grey images as a default run would: PNG files, the default model, L2-normalised."""
    from PIL import Image

    from thresher.config.lightly import LightlyConfig
    from thresher.models.inference import embed_files, resolve_embedder

    model, spec, _ = resolve_embedder(LightlyConfig(), checkpoint=None, enable_training=False)
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"{i:06d}.png" for i in range(len(images))]
        for name, img in zip(names, images, strict=True):
            Image.fromarray(img).save(Path(tmp) / name)
        done = [0]

        def progress(k: int) -> None:
            done[0] += k
            if done[0] % 512 < k:
                print(f"  embedded {done[0]}/{len(names)}", flush=True)

        return embed_files(model, spec, tmp, names, num_workers=1, progress=progress)


def load_set(name: str, cache: Path) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Embeddings (N, 1280) and labels (N,) of a labeled set, computed once then cached."""
    emb_path, lab_path = cache / f"{name}.embeddings.npy", cache / f"{name}.labels.npy"
    if emb_path.exists() and lab_path.exists():
        return np.load(emb_path), np.load(lab_path)
    cache.mkdir(parents=True, exist_ok=True)
    x, y = raw_images(name)
    t = time.time()
    print(f"embedding {name}: {len(x)} images with the default embedder", flush=True)
    emb = embed_images(x)
    print(f"embedded {name} in {time.time() - t:.0f} s", flush=True)
    np.save(lab_path, y)
    np.save(emb_path, emb)  # last: its presence means the set is complete
    return emb, y


# ----------------------------------------------------------------------------- methods

Method = Callable[[NDArray[np.float32], int, int], NDArray[np.int64]]


def pick_random(x: NDArray[np.float32], n: int, seed: int) -> NDArray[np.int64]:
    """A seeded uniform pick."""
    return np.random.default_rng(1000 + seed).choice(len(x), n, replace=False).astype(np.int64)


def pick_recipe(strategies: list[dict[str, Any]] | None) -> Method:
    """A pick through ``thresher.selection.select``; None means the default recipe."""

    def pick(x: NDArray[np.float32], n: int, seed: int) -> NDArray[np.int64]:
        cfg: dict[str, Any] = {"n_samples": n}
        if strategies is not None:
            cfg["strategies"] = strategies
        return select(cfg, embeddings=x, seed=seed)

    return pick


def pick_typiclust(x: NDArray[np.float32], n: int, seed: int) -> NDArray[np.int64]:
    """TypiClust (Hacohen et al., ICML 2022), written from the paper as the baseline.

    k-means (scikit-learn, as in the paper's code) into ``n`` clusters; from each cluster the
    sample of highest typicality, the inverse mean distance to its ``min(20, size - 1)``
    nearest neighbours inside the cluster.
    """
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=n, n_init=1, random_state=seed).fit_predict(x)
    picks = []
    for c in np.argsort(-np.bincount(labels, minlength=n), kind="stable"):
        rows = np.flatnonzero(labels == c)
        if len(rows) == 0:
            continue
        if len(rows) == 1:
            picks.append(int(rows[0]))
            continue
        sq = (x[rows] ** 2).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x[rows] @ x[rows].T, 0))
        d.sort(axis=1)
        k = min(20, len(rows) - 1)
        picks.append(int(rows[np.argmax(1.0 / (d[:, 1 : k + 1].mean(1) + 1e-12))]))
    return np.array(picks[:n], np.int64)


OLD_DEFAULT: list[dict[str, Any]] = [
    {"input": E, "strategy": {"type": "DIVERSITY"}},
    {"input": E, "strategy": {"type": "TYPICALITY", "strength": 0.5}},
]
METHODS: dict[str, Method] = {
    "random": pick_random,
    "k-center (DIVERSITY)": pick_recipe([{"input": E, "strategy": {"type": "DIVERSITY"}}]),
    "TypiClust": pick_typiclust,
    "old default: DIV x TYP^0.5": pick_recipe(OLD_DEFAULT),
    "default (thresher)": pick_recipe(None),
}
DEFAULT = "default (thresher)"


# --------------------------------------------------------------------------- measuring


def accuracy(
    x: NDArray[np.float32], y: NDArray[Any], xte: NDArray[np.float32], yte: NDArray[Any]
) -> float:
    """Logistic regression trained on (x, y) only, accuracy on the evaluation split."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        return float(np.mean(yte == y[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegression(max_iter=500, C=10.0).fit(x, y)
    return float(clf.score(xte, yte))


def evaluate(
    emb: NDArray[np.float32], y: NDArray[np.int64], seeds: int, methods: dict[str, Method]
) -> dict[str, dict[int, list[float]]]:
    """Accuracy per method, budget and seed (pool 75% / evaluation 25%, split per seed)."""
    n_classes = len(np.unique(y))
    acc: dict[str, dict[int, list[float]]] = {
        m: {b: [] for b in BUDGETS_PER_CLASS} for m in methods
    }
    for seed in range(seeds):
        perm = np.random.default_rng(seed).permutation(len(emb))
        cut = int(0.75 * len(emb))
        xp, yp, xe, ye = emb[perm[:cut]], y[perm[:cut]], emb[perm[cut:]], y[perm[cut:]]
        for b in BUDGETS_PER_CLASS:
            for name, method in methods.items():
                idx = method(xp, b * n_classes, seed)
                acc[name][b].append(accuracy(xp[idx], yp[idx], xe, ye))
    return acc


def print_table(title: str, acc: dict[str, dict[int, list[float]]]) -> None:
    """Accuracy mean ± std, then the default's margins over random and TypiClust."""
    print(f"\n{title}: accuracy, mean ± std over seeds (budget = labels per class)")
    print("method".ljust(30) + "".join(f"{b:>10}/cl" for b in BUDGETS_PER_CLASS))
    for name, per_b in acc.items():
        cells = "".join(f"  {np.mean(v):.3f}±{np.std(v):.3f}" for v in per_b.values())
        print(name.ljust(30) + cells)
    for ref in ("random", "TypiClust"):
        if ref not in acc or DEFAULT not in acc:
            continue
        # Paired: every method sees the same split and seed, so the per-seed differences carry
        # less noise than the two means' stds suggest.
        diffs = [
            100 * (np.array(acc[DEFAULT][b]) - np.array(acc[ref][b])) for b in BUDGETS_PER_CLASS
        ]
        gains = [float(d.mean()) for d in diffs]
        errs = [float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0 for d in diffs]
        verdict = "PASS" if min(gains) >= 0 else "FAIL"
        print(
            f"default - {ref}, points, mean ± standard error of the paired per-seed difference: "
            + ", ".join(f"{g:+.1f}±{e:.1f}" for g, e in zip(gains, errs, strict=True))
            + f"  [{verdict}: at least as good at every budget]"
        )


#: Methods of --vs-random: the default, two others, and TYPICALITY alone, which piles the
#: picks into dense regions (a pick the label-free measures should call worse than random).
VS_RANDOM_METHODS: dict[str, Method] = {
    "default (thresher)": pick_recipe(None),
    "k-center (DIVERSITY)": pick_recipe([{"input": E, "strategy": {"type": "DIVERSITY"}}]),
    "TYPICALITY only": pick_recipe([{"input": E, "strategy": {"type": "TYPICALITY"}}]),
}


def vs_random_table(name: str, emb: NDArray[np.float32], y: NDArray[np.int64], seeds: int) -> None:
    """Accuracy gain over random beside the label-free measures, per method and budget.

    Gain: accuracy of the method minus accuracy of the seeded random pick, in points, mean over
    seeds. Measures: the method's pick against 5 random picks of the same size
    (``selection_vs_random``), as ratio of means (coverage, redundancy) or shares (clusters).
    """
    from thresher.reports.vs_random import selection_vs_random

    n_classes = len(np.unique(y))
    rows: dict[tuple[str, int], list[tuple[float, dict[str, Any]]]] = {}
    for seed in range(seeds):
        perm = np.random.default_rng(seed).permutation(len(emb))
        cut = int(0.75 * len(emb))
        xp, yp, xe, ye = emb[perm[:cut]], y[perm[:cut]], emb[perm[cut:]], y[perm[cut:]]
        for b in BUDGETS_PER_CLASS:
            n = b * n_classes
            ridx = pick_random(xp, n, seed)
            acc_r = accuracy(xp[ridx], yp[ridx], xe, ye)
            for method, pick in VS_RANDOM_METHODS.items():
                idx = pick(xp, n, seed)
                gain = 100 * (accuracy(xp[idx], yp[idx], xe, ye) - acc_r)
                vr = selection_vs_random(xp, idx, seed=seed)
                rows.setdefault((method, b), []).append((gain, vr["measures"]))
    print(f"\n{name}: accuracy gain over random vs the label-free measures ({seeds} seeds)")
    head = (
        "method".ljust(22)
        + "budget".rjust(8)
        + "gain, points".rjust(14)
        + "cover mean sel/rnd".rjust(20)
        + "cover max sel/rnd".rjust(19)
        + "nn pick sel/rnd".rjust(17)
        + "clusters sel | rnd".rjust(20)
        + "  verdict"
    )
    print(head)
    gains, cover = [], []
    for (method, b), per_seed in rows.items():
        g = float(np.mean([p[0] for p in per_seed]))

        def ratio(key: str, per_seed: list[tuple[float, dict[str, Any]]] = per_seed) -> float:
            return float(np.mean([m[key]["selected"] / m[key]["randomMean"] for _, m in per_seed]))

        def share(key: str, which: str, per_seed: list[Any] = per_seed) -> float:
            return 100 * float(np.mean([m[key][which] for _, m in per_seed]))

        status = [
            m["coverageMean"]["status"] + "/" + m["clusterCoverage"]["status"] for _, m in per_seed
        ]
        verdict = max(set(status), key=status.count)
        gains.append(g)
        cover.append(ratio("coverageMean"))
        print(
            method.ljust(22)
            + f"{b * n_classes:>8}"
            + f"{g:>+14.1f}"
            + f"{ratio('coverageMean'):>20.3f}"
            + f"{ratio('coverageMax'):>19.3f}"
            + f"{ratio('nearestPickMean'):>17.3f}"
            + f"{share('clusterCoverage', 'selected'):>11.0f}% | "
            + f"{share('clusterCoverage', 'randomMean'):>3.0f}%"
            + f"  {verdict}"
        )
    r = float(np.corrcoef(cover, gains)[0, 1])
    print(f"correlation of (coverage mean sel/rnd) with the accuracy gain: {r:+.2f}")


def time_at_scale(n_rows: int, dim: int, n_pick: int) -> None:
    """Time the default recipe, and the old one beside it, on clustered synthetic data."""
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((1000, dim), dtype=np.float32)
    x = centers[rng.integers(0, 1000, n_rows)]
    x += 0.3 * rng.standard_normal((n_rows, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for name, strategies in (("default (COVERAGE)", None), ("old default", OLD_DEFAULT)):
        cfg: dict[str, Any] = {"n_samples": n_pick}
        if strategies is not None:
            cfg["strategies"] = strategies
        t = time.time()
        idx = select(cfg, embeddings=x, seed=0)
        print(
            f"{name}, {n_pick:,} of {n_rows:,} x {dim} (1,000 clusters): "
            f"{time.time() - t:.1f} s, {len(np.unique(idx)):,} unique picks",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/thresher-quality"))
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {SETS}")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--embed-only", action="store_true", help="compute the cache and stop")
    ap.add_argument("--skip-scale", action="store_true", help="skip the large-N timing")
    ap.add_argument("--scale-only", action="store_true", help="only the large-N timing")
    ap.add_argument("--scale", default="1000000x64x10000", help="NxDxPICKS,... to time")
    ap.add_argument(
        "--vs-random",
        action="store_true",
        help="only the accuracy gain over random beside the report's label-free measures",
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = [] if args.scale_only else [s for s in args.sets.split(",") if s]
    for name in names:
        if name not in SETS:
            ap.error(f"unknown set {name!r}; choose from {', '.join(SETS)}")
    data = {name: load_set(name, args.cache) for name in names}
    if args.embed_only:
        return
    if names:
        print(
            f"{args.seeds} seeds; pool 75% / evaluation 25% of each set, split per seed; "
            "logistic regression (C=10) on the picked samples' true labels"
        )
    if args.vs_random:
        for name, (emb, y) in data.items():
            vs_random_table(name, emb.astype(np.float32), y, args.seeds)
        return
    for name, (emb, y) in data.items():
        role = "tuned on" if name == "fmnist-train" else "held out"
        acc = evaluate(emb.astype(np.float32), y, args.seeds, METHODS)
        print_table(f"{name} ({len(y)} images, {len(np.unique(y))} classes, {role})", acc)
    if not args.skip_scale:
        print()
        for spec in args.scale.split(","):
            n_rows, dim, n_pick = (int(v) for v in spec.split("x"))
            time_at_scale(n_rows, dim, n_pick)


if __name__ == "__main__":
    main()
