"""Does self-supervised training on the user's data help? kNN accuracy and training speed.

On Fashion-MNIST (real labeled images, from the Debian package ``dataset-fashion-mnist``) it
embeds a labeled test split with three models and classifies each test image by its 5 nearest
labeled training images (cosine):

1. ResNet-18 from random init (what a ResNet is without training),
2. the same ResNet-18 after a short SimCLR training on the unlabeled training images,
3. the ImageNet-pretrained EfficientNet-Lite0.

It also prints training throughput (images/s at input_size 64) and embedding throughput.
Everything goes through thresher's own code path: PNG files on disk, ``train_simclr``,
``embed_files``.

Run:
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/training.py            # ~6 min on 2 cores
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/training.py --quick    # ~1 min
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.neighbors import KNeighborsClassifier

from thresher.config.lightly import LightlyConfig
from thresher.models import embed_files, zoo
from thresher.models.train import train_simclr

FASHION = Path("/usr/share/datasets/fashion-mnist")


def read_fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,)) of ``train`` or ``t10k``."""

    def rd(name: str, offset: int) -> np.ndarray:
        with gzip.open(FASHION / name) as fh:
            return np.frombuffer(fh.read(), np.uint8, offset=offset)

    x = rd(f"{split}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    y = rd(f"{split}-labels-idx1-ubyte.gz", 8)
    return x, y


def write_pngs(root: Path, images: np.ndarray, prefix: str) -> list[str]:
    """One PNG per image; returns the names relative to ``root``."""
    names = []
    for i, img in enumerate(images):
        name = f"{prefix}/{i:05d}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / name)
        names.append(name)
    return names


def knn_accuracy(
    train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray
) -> float:
    """Accuracy of a 5-NN cosine classifier."""
    knn = KNeighborsClassifier(n_neighbors=5, metric="cosine").fit(train, y_train)
    return float((knn.predict(test) == y_test).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    n_train = args.n_train or (512 if args.quick else 2000)
    n_test = args.n_test or (256 if args.quick else 1000)
    epochs = args.epochs or (2 if args.quick else 10)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    print(f"command: benchmarks/training.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    torch.manual_seed(0)

    x_train, y_train = read_fashion_mnist("train")
    x_test, y_test = read_fashion_mnist("t10k")
    x_train, y_train = x_train[:n_train], y_train[:n_train]
    x_test, y_test = x_test[:n_test], y_test[:n_test]

    cfg = LightlyConfig.model_validate(
        {
            "trainer": {"max_epochs": epochs},
            "loader": {"batch_size": args.batch_size},
            "optimizer": {"lr": args.lr},
            "collate": {"input_size": 64},
            "seed": 1,
        }
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"cuda {torch.cuda.is_available()}"
    )
    print(
        f"data: Fashion-MNIST, {n_train} unlabeled training images for SimCLR and as kNN "
        f"references, {n_test} test images; input_size 64; SimCLR {epochs} epochs, batch "
        f"{args.batch_size}, lr {args.lr}, other lightly_config keys at their defaults"
    )
    with tempfile.TemporaryDirectory(prefix="thresher-bench-") as tmp:
        root = Path(tmp, "images")
        train_names = write_pngs(root, x_train, "train")
        test_names = write_pngs(root, x_test, "test")
        all_names = train_names + test_names

        def evaluate(label: str, model: torch.nn.Module, spec: zoo.ModelSpec) -> None:
            start = time.perf_counter()
            emb = embed_files(model, spec, str(root), all_names, input_size=64)
            seconds = time.perf_counter() - start
            acc = knn_accuracy(emb[:n_train], y_train, emb[n_train:], y_test)
            speed = len(all_names) / seconds
            print(f"{label:<44} kNN-5 accuracy {acc:.3f}   embed {speed:6.0f} img/s")

        torch.manual_seed(1)
        random_init = zoo.ResNetBackbone("resnet-18", num_ftrs=32).eval()
        evaluate("resnet-18, random init", random_init, zoo.spec("resnet-18", num_ftrs=32))

        ckpt = str(Path(tmp, "checkpoint.ckpt"))
        start = time.perf_counter()
        summary = train_simclr(cfg, str(root), train_names, ckpt)
        train_seconds = time.perf_counter() - start
        trained = zoo.create("resnet-18", checkpoint=ckpt)
        evaluate(
            f"resnet-18, SimCLR {epochs} epochs (loss {summary.final_loss:.2f})",
            trained,
            zoo.spec("resnet-18", num_ftrs=32),
        )
        evaluate(
            "efficientnet-lite0, ImageNet-pretrained",
            zoo.create("efficientnet-lite0"),
            zoo.spec("efficientnet-lite0"),
        )
        per_epoch = ", ".join(f"{h['images_per_s']:.0f}" for h in summary.history)
        print(
            f"training: {summary.images_per_s:.0f} images/s at input_size 64, batch "
            f"{args.batch_size}, device {summary.device} (per epoch: {per_epoch}); "
            f"{train_seconds:.0f} s in all"
        )


if __name__ == "__main__":
    main()
