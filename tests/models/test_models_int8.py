"""int8 (``embedding_precision: int8``): quantized on the run's own photos, cached, its fidelity
measured on held-out photos, and a fallback to fp32 under the floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.models.test_models_backends import photo_jpegs
from thresher.config import load_configs
from thresher.errors import ConfigError
from thresher.models import zoo

pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    root = tmp_path_factory.mktemp("int8-photos")
    names = []
    for i, data in enumerate(photo_jpegs(64, seed=3)):
        (root / f"p{i:03d}.jpg").write_bytes(data)
        names.append(f"p{i:03d}.jpg")
    return str(root), names


def test_split_sample_is_disjoint_and_spread() -> None:
    from thresher.models.int8 import split_sample

    cal, held = split_sample(1000)
    assert len(cal) == 300 and len(held) == 200 and not set(cal) & set(held)
    assert cal[0] == 0 and cal[-1] == 999
    cal, held = split_sample(64)
    assert len(cal) == 32 and len(held) == 32 and not set(cal) & set(held)
    assert split_sample(1) == ([0], [0])  # too few to hold any out: said in the note


def test_int8_quantizes_once_states_fidelity_and_falls_back(
    photos: tuple[str, list[str]], tmp_path: Path
) -> None:
    from thresher.models import embed_files
    from thresher.models.int8 import prepare_int8

    root, names = photos
    model, spec = zoo.create("efficientnet-lite0"), zoo.spec("efficientnet-lite0")
    cache = tmp_path / "ov"
    # 32 calibration photos are fewer than a run uses (300), hence the lower floor here.
    plan = prepare_int8(model, spec, root, names, cache_root=cache, floor=0.98)
    assert plan.precision == "int8" and plan.model_xml is not None
    assert (plan.n_calibration, plan.n_held_out) == (32, 32)
    assert 0.98 <= plan.mean_cosine <= 1.0 and 0.5 < plan.overlap10 <= 1.0
    assert f"mean cosine {plan.mean_cosine:.4f}" in plan.note and "32 held-out" in plan.note

    # The int8 model embeds close to fp32, and differs from it (it really is quantized).
    int8 = embed_files(model, spec, root, names, backend="openvino", model_xml=plan.model_xml)
    fp32 = embed_files(model, spec, root, names, backend="openvino")
    cos = (int8 * fp32).sum(axis=1)
    assert cos.mean() >= 0.99 and cos.min() < 0.99999

    # Cached: the same images give the same model file, not quantized again.
    stamp = (plan.model_xml.parent / "model.bin").stat().st_mtime_ns
    again = prepare_int8(model, spec, root, names, cache_root=cache, floor=1.01)
    assert (
        again.model_xml is None
        and (plan.model_xml.parent / "model.bin").stat().st_mtime_ns == stamp
    )
    # Under the floor: fp32, and the note says so with the measured figures.
    assert again.precision == "fp32"
    assert "embedded in fp32" in again.note and "floor of 1.01" in again.note
    assert np.isclose(again.mean_cosine, plan.mean_cosine)


def test_int8_config_is_validated(tmp_path: Path) -> None:
    from PIL import Image

    from thresher.stages.corruption_check import corruption_check
    from thresher.stages.deduplicate import deduplicate
    from thresher.stages.embed import embed
    from thresher.stages.list_input import list_input

    assert load_configs({}, {"n_samples": 1}).worker.embedding_precision == "fp32"
    with pytest.raises(ConfigError, match=r"embedding_precision.*'fp32' or 'int8'"):
        load_configs({"embedding_precision": "int4"}, {"n_samples": 1})
    (tmp_path / "in").mkdir()
    Image.new("RGB", (32, 32), "red").save(tmp_path / "in" / "a.png")
    listing = list_input(str(tmp_path / "in"), str(tmp_path / "out"))
    dedup = deduplicate(corruption_check(listing))
    cfg = load_configs(
        {"embedding_precision": "int8", "embedding_backend": "torch"}, {"n_samples": 1}
    )
    with pytest.raises(
        ConfigError, match=r"'int8' runs on OpenVINO.*embedding_backend to 'openvino'"
    ):
        embed(listing, dedup, cfg.worker, cfg.lightly)
