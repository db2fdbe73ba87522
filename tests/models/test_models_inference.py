"""The embed stage: fsspec input (local and memory://), order, normalisation, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch
from PIL import Image

from thresher.config.lightly import LightlyConfig
from thresher.errors import ConfigError, CorruptMediaError
from thresher.models import embed_files, resolve_embedder, zoo


@pytest.fixture(scope="module")
def small_model() -> tuple[torch.nn.Module, zoo.ModelSpec]:
    torch.manual_seed(0)
    return zoo.create("resnet-18", num_ftrs=16), zoo.spec("resnet-18", num_ftrs=16)


def test_local_and_memory_agree_in_order(
    small_model: tuple[torch.nn.Module, zoo.ModelSpec],
    image_dir: tuple[str, list[str]],
    memory_images: tuple[str, list[str]],
) -> None:
    model, spec = small_model
    root, names = image_dir
    seen: list[int] = []
    local = embed_files(
        model, spec, root, names, batch_size=10, num_workers=2, input_size=32, progress=seen.append
    )
    assert local.shape == (32, 16) and local.dtype == np.float32
    assert seen == [10, 10, 10, 2]
    np.testing.assert_allclose(np.linalg.norm(local, axis=1), 1, atol=1e-5)
    mem_root, _ = memory_images
    reordered = names[::-1]
    mem = embed_files(model, spec, mem_root, reordered, batch_size=7, num_workers=0, input_size=32)
    np.testing.assert_allclose(mem, local[::-1], atol=1e-5)


def test_rows_match_a_direct_forward(
    small_model: tuple[torch.nn.Module, zoo.ModelSpec], image_dir: tuple[str, list[str]]
) -> None:
    # The stage must equal: RGB, resize short side, center crop, normalise, forward.
    model, spec = small_model
    root, names = image_dir
    from thresher.models.inference import eval_transform

    t = eval_transform(32, spec.mean, spec.std)
    x = torch.stack([t(Image.open(Path(root, n)).convert("RGB")) for n in names[:3]])
    with torch.inference_mode():
        direct = model(x).numpy()
    got = embed_files(model, spec, root, names[:3], input_size=32, normalize=False)
    np.testing.assert_allclose(got, direct, rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.linalg.norm(got, axis=1), 1)


def test_modes_sizes_and_empty(
    small_model: tuple[torch.nn.Module, zoo.ModelSpec], tmp_path: Path
) -> None:
    model, spec = small_model
    Image.new("L", (20, 60), 128).save(tmp_path / "gray.png")
    Image.new("RGBA", (90, 30), (1, 2, 3, 4)).save(tmp_path / "rgba.png")
    Image.new("P", (33, 33)).save(tmp_path / "pal.gif")
    Image.new("RGB", (300, 200), (200, 10, 10)).save(tmp_path / "big.jpg", quality=90)
    names = ["gray.png", "rgba.png", "pal.gif", "big.jpg"]
    out = embed_files(model, spec, str(tmp_path), names, input_size=32, num_workers=0)
    assert out.shape == (4, 16) and np.isfinite(out).all()
    assert embed_files(model, spec, str(tmp_path), [], input_size=32).shape == (0, 16)


def test_corrupt_file_is_named(
    small_model: tuple[torch.nn.Module, zoo.ModelSpec], image_dir: tuple[str, list[str]]
) -> None:
    model, spec = small_model
    root, names = image_dir
    url = "memory://embed-corrupt"
    fs = fsspec.filesystem("memory")
    for n in names[:5]:
        fs.pipe(f"{url}/{n}", Path(root, n).read_bytes())
    fs.pipe(f"{url}/broken.png", b"\x89PNG not really")
    with pytest.raises(CorruptMediaError, match=r"broken.png: cannot decode"):
        embed_files(model, spec, url, [*names[:5], "broken.png"], batch_size=2, input_size=32)
    with pytest.raises(ValueError, match=r"batch_size"):
        embed_files(model, spec, url, names[:1], batch_size=0)


def test_resolve_default_is_pretrained_lite0() -> None:
    _model, spec, name = resolve_embedder(
        LightlyConfig.model_validate({}), checkpoint=None, enable_training=False
    )
    assert name == "efficientnet-lite0" and spec.pretrained and spec.dim == 1280


def test_resolve_explicit_resnet_warns(caplog: pytest.LogCaptureFixture) -> None:
    cfg = LightlyConfig.model_validate({"model": {"name": "resnet-18", "num_ftrs": 8}})
    with caplog.at_level(logging.WARNING, logger="thresher.models"):
        _model, spec, name = resolve_embedder(cfg, checkpoint=None, enable_training=False)
    assert name == "resnet-18" and spec.dim == 8 and "random weights" in caplog.text


def test_resolve_checkpoint(trained_checkpoint: tuple[str, object, list]) -> None:
    path, _, _ = trained_checkpoint
    cfg = LightlyConfig.model_validate({"collate": {"input_size": 48}})
    _model, spec, name = resolve_embedder(cfg, checkpoint=path, enable_training=True)
    assert (name, spec.dim, spec.input_size, spec.pretrained) == ("resnet-18", 32, 48, False)
    bad = LightlyConfig.model_validate({"model": {"name": "efficientnet-lite1"}})
    with pytest.raises(ConfigError, match=r"training and checkpoints use a ResNet"):
        resolve_embedder(bad, checkpoint=path, enable_training=False)
    with pytest.raises(ValueError, match=r"train first"):
        resolve_embedder(cfg, checkpoint=None, enable_training=True)
