"""Fixtures for the models tests: tiny real image files on disk and in memory://."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
from PIL import Image

# Any hidden hub download must fail at once instead of waiting on a timeout.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_image(i: int, size: tuple[int, int] = (40, 48)) -> Image.Image:
    """A small RGB image: a coloured gradient that differs by ``i``, plus noise."""
    rng = np.random.default_rng(i)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [(x * (i % 5 + 1)) % 256, (y * (i % 3 + 2)) % 256, np.full_like(x, (37 * i) % 256)], -1
    )
    noise = rng.integers(0, 40, (h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """32 PNGs in a local folder (some in a subfolder); returns (root, filenames)."""
    root = tmp_path_factory.mktemp("images")
    names = []
    for i in range(32):
        name = f"sub/img_{i:02d}.png" if i % 4 == 0 else f"img_{i:02d}.png"
        path = Path(root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(make_image(i)))
        names.append(name)
    return str(root), names


@pytest.fixture
def memory_images(image_dir: tuple[str, list[str]]) -> Iterator[tuple[str, list[str]]]:
    """The same 32 images under a fresh memory:// root."""
    root, names = image_dir
    fs = fsspec.filesystem("memory")
    base = f"/imgs-{uuid.uuid4().hex}"
    for name in names:
        fs.pipe(f"{base}/{name}", Path(root, name).read_bytes())
    yield f"memory://{base}", names
    fs.rm(base, recursive=True)


@pytest.fixture(scope="session")
def trained_checkpoint(
    image_dir: tuple[str, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, object, list[dict[str, float]]]:
    """One 1-epoch SimCLR training on the 32 images (32 px, batch 8), shared by tests."""
    from thresher.config.lightly import LightlyConfig
    from thresher.models.train import train_simclr

    root, names = image_dir
    cfg = LightlyConfig.model_validate(
        {
            "trainer": {"max_epochs": 1},
            "loader": {"batch_size": 8, "num_workers": 0},
            "collate": {"input_size": 32},
            "optimizer": {"lr": 0.1},
        }
    )
    out = str(tmp_path_factory.mktemp("ckpt") / "checkpoint.ckpt")
    seen: list[dict[str, float]] = []
    summary = train_simclr(cfg, root, names, out, progress=seen.append)
    return out, summary, seen
