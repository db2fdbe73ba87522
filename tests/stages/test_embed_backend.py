"""The embed stage's cache key holds the backend and precision: switching the backend never
serves the other backend's embeddings, and both backends give the same rows."""

import numpy as np

from thresher.config import load_configs
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.embed import embed
from thresher.stages.list_input import list_input


def test_switching_the_backend_recomputes_with_the_same_rows(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("THRESHER_HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(1)
    inp = tmp_path / "input"
    inp.mkdir()
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(inp / f"{i}.png")
    listing = list_input(str(inp), str(tmp_path / "lightly"))
    dedup = deduplicate(corruption_check(listing))

    def run(backend):
        cfg = load_configs({"num_processes": 0, "embedding_backend": backend}, {"n_samples": 2})
        return embed(listing, dedup, cfg.worker, cfg.lightly)

    on_torch, on_ov = run("torch"), run("openvino")
    assert on_torch.key != on_ov.key and not on_ov.cached
    # The default model on OpenVINO ran from its noted converted file (without PyTorch: see
    # tests/models/test_models_backends.py), Pillow's pixels and OpenVINO's normalisation.
    note = tmp_path / "home" / "models" / "openvino" / "pretrained" / "efficientnet-lite0.json"
    assert note.is_file()
    assert "OpenVINO" in on_ov.description and "PyTorch" in on_torch.description
    assert run("auto").key == on_ov.key  # no GPU here: auto is OpenVINO, served from cache
    assert run("auto").cached == "cached"
    cos = (on_torch.embeddings() * on_ov.embeddings()).sum(axis=1)
    assert cos.min() >= 0.9999


def test_int8_has_its_own_key_and_states_its_fidelity(tmp_path, monkeypatch):
    import pytest
    from PIL import Image

    pytest.importorskip("nncf")
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path / "home"))
    inp = tmp_path / "input"
    inp.mkdir()
    for i in range(12):
        hue = Image.new("HSV", (48, 48), (i * 21, 200, 120 + 8 * i)).convert("RGB")
        hue.save(inp / f"{i}.jpg")
    listing = list_input(str(inp), str(tmp_path / "lightly"))
    dedup = deduplicate(corruption_check(listing))

    def run(precision):
        cfg = load_configs({"num_processes": 0, "embedding_precision": precision}, {"n_samples": 2})
        return embed(listing, dedup, cfg.worker, cfg.lightly)

    fp32, int8 = run("fp32"), run("int8")
    assert fp32.key != int8.key
    # The sentence names the measured fidelity, whether int8 was kept or fell back to fp32.
    assert "mean cosine" in int8.description and "10-NN overlap" in int8.description
    again = run("int8")
    assert again.cached == "cached" and again.description == int8.description
