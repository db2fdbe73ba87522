"""A default int8 run (``embedding_precision: int8`` on the pretrained default model) never
imports PyTorch in the run's process: the calibration and held-out pixels come from the
Pillow decode the embedding uses, NNCF quantizes the converted fp32 file in a child process,
and the run embeds the int8 file from uint8 pixels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli_run import imported_packages
from thresher.examples import make_example_dataset
from thresher.models.backends import vector_instructions

pytest.importorskip("nncf")

INT8 = json.dumps({"embedding_precision": "int8"})


def test_default_int8_run_never_imports_pytorch(tmp_path: Path) -> None:
    images = tmp_path / "images"
    make_example_dataset(images, n_clusters=2, per_cluster=4, n_duplicates=0, size=64)
    env = dict(os.environ, THRESHER_PROGRESS="0", THRESHER_HOME=str(tmp_path / "home"))

    def thresher_run(lightly: str, *flags: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, *flags, "-m", "thresher", "run", str(images), "--lightly"]
        argv += [str(tmp_path / lightly), "--n-samples", "3", "--worker-config", INT8]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)

    # The first run on the machine converts the model through PyTorch (and quantizes it).
    first = thresher_run("first")
    assert first.returncode == 0, first.stderr[-3000:]
    # A run over other data quantizes again (other calibration pixels), in a child process.
    make_example_dataset(images / "more", n_clusters=1, per_cluster=3, n_duplicates=0, seed=1)
    second = thresher_run("second", "-X", "importtime")
    assert second.returncode == 0, second.stderr[-3000:]
    imported = imported_packages(second.stderr)
    assert {"prefect", "openvino", "PIL"} <= imported  # the probe sees imports
    assert not {"torch", "timm", "torchvision", "nncf"} & imported

    home = tmp_path / "home" / "models" / "openvino"
    assert len(list(home.glob("int8-*/model.xml"))) == 2  # quantized again: new calibration
    config = next((tmp_path / "second" / ".lightly" / "runs").glob("*/config.json"))
    said = config.read_text()
    if "VNNI" in vector_instructions():
        assert "int8 (OpenVINO, NNCF post-training quantization): mean cosine" in said
    else:  # int8 may fall under the floor without VNNI: then the fp32 embedding is torch-free too
        assert "int8 (OpenVINO, NNCF" in said or "this CPU has no VNNI instructions" in said
