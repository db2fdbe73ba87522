"""Checkpoints in the Lightly layout: round trip, Lightly's loading recipe, clear errors."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest
import torch
import torchvision
from lightly.models.modules import SimCLRProjectionHead

from thresher.errors import ConfigError
from thresher.models import zoo
from thresher.models.checkpoint import read_checkpoint, save_checkpoint


@pytest.fixture
def resnet18_ckpt(tmp_path: Path) -> tuple[str, torch.nn.Module]:
    backbone = zoo.ResNetBackbone("resnet-18", num_ftrs=32)
    head = SimCLRProjectionHead(32, 32, 16)
    path = str(tmp_path / "checkpoint.ckpt")
    save_checkpoint(path, backbone, head, meta={"model": "resnet-18"}, epoch=3, global_step=9)
    return path, backbone


def test_layout_and_lightly_recipe(resnet18_ckpt: tuple[str, torch.nn.Module]) -> None:
    path, backbone = resnet18_ckpt
    raw = torch.load(path, weights_only=True)
    keys = list(raw["state_dict"])
    assert all(k.startswith(("model.backbone.", "model.projection_head.")) for k in keys)
    assert raw["epoch"] == 3 and raw["global_step"] == 9
    # Lightly's documented recipe: take state_dict, drop the projection head, strip the prefix.
    state = {
        k[len("model.backbone.") :]: v
        for k, v in raw["state_dict"].items()
        if k.startswith("model.backbone.")
    }
    tv = torchvision.models.resnet18()
    missing, unexpected = tv.load_state_dict(state, strict=False)
    assert set(missing) == {"fc.weight", "fc.bias"}
    assert set(unexpected) == {"to_num_ftrs.weight", "to_num_ftrs.bias"}
    assert torch.equal(tv.conv1.weight, backbone.conv1.weight)


def test_loads_from_path_and_url(resnet18_ckpt: tuple[str, torch.nn.Module]) -> None:
    path, backbone = resnet18_ckpt
    url = "memory://ckpt-test/checkpoint.ckpt"
    fsspec.filesystem("memory").pipe(url, Path(path).read_bytes())
    x = torch.randn(2, 3, 32, 32)
    backbone.eval()
    with torch.inference_mode():
        for source in (path, url):
            model = zoo.create("resnet-18", checkpoint=source)
            assert torch.allclose(model(x), backbone(x))
    ckpt = read_checkpoint(url)
    assert ckpt.epoch == 3 and ckpt.meta["model"] == "resnet-18" and ckpt.projection_head


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.ckpt: file not found.*worker_config.checkpoint"):
        zoo.create("resnet-18", checkpoint=str(tmp_path / "nope.ckpt"))


def test_wrong_architecture_names_model_name(resnet18_ckpt: tuple[str, torch.nn.Module]) -> None:
    path, _ = resnet18_ckpt
    with pytest.raises(ConfigError, match=r"holds a .resnet-18.*Set lightly_config\.model\.name"):
        zoo.create("resnet-50", checkpoint=path)


def test_wrong_architecture_without_meta(tmp_path: Path) -> None:
    path = str(tmp_path / "c.ckpt")
    save_checkpoint(path, zoo.ResNetBackbone("resnet-18"))
    with pytest.raises(ConfigError, match=r"c\.ckpt: its backbone does not match lightly_config"):
        zoo.create("resnet-50", checkpoint=path)


def test_num_ftrs_mismatch(resnet18_ckpt: tuple[str, torch.nn.Module]) -> None:
    path, _ = resnet18_ckpt
    with pytest.raises(ConfigError, match=r"num_ftrs=32 but lightly_config.model.num_ftrs is 64"):
        zoo.create("resnet-18", checkpoint=path, num_ftrs=64)


def test_shape_mismatch(tmp_path: Path) -> None:
    path = str(tmp_path / "c.ckpt")
    backbone = zoo.ResNetBackbone("resnet-18")
    state = backbone.state_dict()
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save({"state_dict": {f"model.backbone.{k}": v for k, v in state.items()}}, path)
    with pytest.raises(ConfigError, match=r"weight shapes differ.*conv1\.weight"):
        zoo.create("resnet-18", checkpoint=path)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ConfigError, match=r"bad.ckpt: not a PyTorch checkpoint"):
        read_checkpoint(str(bad))
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(1)}}, other)
    with pytest.raises(ConfigError, match=r"no keys start with 'model.backbone.'"):
        read_checkpoint(str(other))


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "obj.ckpt"
    torch.save({"state_dict": {"model.backbone.x": torch.zeros(1)}, "obj": Path("x")}, path)
    with pytest.raises(ConfigError, match=r"holds Python objects"):
        read_checkpoint(str(path))
