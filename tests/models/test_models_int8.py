"""int8 (``embedding_precision: int8``): quantized on the run's own photos, cached, its fidelity
measured on held-out photos, and a fallback to fp32 under the floor."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.models.test_models_backends import photo_jpegs
from thresher.config import load_configs
from thresher.errors import ConfigError
from thresher.models import zoo
from thresher.models.backends import vector_instructions

pytest.importorskip("nncf")

#: int8 keeps its fidelity with VNNI; without it (AVX2 only) the figures are lower (README,
#: "On a CPU without AVX-512"): the floors below are this CPU's.
VNNI = "VNNI" in vector_instructions()


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
    """Torch-free int8: the converted fp32 file is quantized on uint8 pixels, embeds close to
    fp32 through the pixel path, and a second run takes model and measurement from the cache."""
    from thresher.models.backends import remember_pretrained
    from thresher.models.int8 import prepare_int8, quantize_and_measure, split_sample
    from thresher.models.openvino_embed import decode_files, iter_pretrained_embeddings

    root, names = photos
    name = "efficientnet-lite0"
    spec, cache = zoo.spec(name), tmp_path / "ov"
    fp32 = remember_pretrained(
        name, zoo.create(name), spec.input_size, spec.mean, spec.std, spec.dim, cache
    )
    # 32 calibration photos are fewer than a run uses (300), hence the lower floor here.
    floor = 0.98 if VNNI else 0.95
    plan = prepare_int8(fp32, root, names, cache_root=cache, floor=floor)
    assert plan.precision == "int8" and plan.model_xml is not None and not plan.cached
    assert (plan.n_calibration, plan.n_held_out) == (32, 32)
    assert floor <= plan.mean_cosine <= 1.0 and 0.5 < plan.overlap10 <= 1.0
    assert f"mean cosine {plan.mean_cosine:.4f}" in plan.note and "32 held-out" in plan.note
    assert "cached" not in plan.note

    # The int8 model embeds close to fp32 on the run's pixel path, and differs from it (it
    # really is quantized).
    def rows(xml: Path) -> np.ndarray:
        found = replace(fp32, xml=xml)
        return np.concatenate(list(iter_pretrained_embeddings(found, root, names, num_workers=0)))

    int8, ref = rows(plan.model_xml), rows(fp32.xml)
    cos = (int8 * ref).sum(axis=1)
    assert cos.mean() >= (0.99 if VNNI else 0.97) and cos.min() < 0.99999

    # Cached: the same images give the same model file and the same measurement, neither
    # quantized nor measured again (no file rewritten), and the note says so.
    folder = plan.model_xml.parent
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert len([n for n in stamps if n.startswith("fidelity-")]) == 1
    again = prepare_int8(fp32, root, names, cache_root=cache, floor=1.01)
    assert again.cached and {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    assert "the measurement cached with the int8 model" in again.note
    # Under the floor: fp32, and the note says so with the measured figures.
    assert again.precision == "fp32" and again.model_xml is None
    assert "embedded in fp32" in again.note and "floor of 1.01" in again.note
    assert ("this CPU has no VNNI" in again.note) is not VNNI
    assert again.mean_cosine == plan.mean_cosine

    # Other held-out images: the cached model, measured again (its own cached figure).
    pixels, _ = decode_files(root, names, spec.input_size, num_workers=0)
    cal, held = split_sample(len(names))
    other = quantize_and_measure(fp32, pixels[cal], pixels[held][:16], cache)
    assert other.model_xml == plan.model_xml and not other.cached
    assert (folder / "model.bin").stat().st_mtime_ns == stamps["model.bin"]
    assert len(list(folder.glob("fidelity-*.json"))) == 2


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
