"""The zoo: offline pretrained EfficientNet-Lite, ResNets, specs and errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from thresher.errors import ConfigError, NotSupportedYetError
from thresher.models import zoo
from thresher.models.inference import eval_transform


@pytest.mark.parametrize(
    ("name", "size", "dim", "pretrained"),
    [
        ("efficientnet-lite0", 224, 1280, True),
        ("efficientnet-lite1", 240, 1280, True),
        ("efficientnet-lite2", 260, 1280, True),
        ("resnet-18", 224, 512, False),
        ("resnet-34", 224, 512, False),
        ("resnet-50", 224, 2048, False),
        ("resnet-101", 224, 2048, False),
        ("resnet-152", 224, 2048, False),
    ],
)
def test_spec(name: str, size: int, dim: int, pretrained: bool) -> None:
    s = zoo.spec(name)
    assert (s.name, s.input_size, s.dim, s.pretrained) == (name, size, dim, pretrained)
    assert s.mean == (0.485, 0.456, 0.406) and s.std == (0.229, 0.224, 0.225)
    assert zoo.spec(name, num_ftrs=32).dim == (1280 if pretrained else 32)


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"])
def test_efficientnet_loads_offline_and_embeds(name: str) -> None:
    model = zoo.create(name)
    assert not model.training
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 1280)


def _photo_features(model: torch.nn.Module) -> np.ndarray:
    """Two crops of the cat photo and one of the coffee photo (scikit-image, CC0)."""
    import skimage.data

    cat, coffee = Image.fromarray(skimage.data.chelsea()), Image.fromarray(skimage.data.coffee())
    crops = [cat.crop((0, 0, 300, 300)), cat.crop((150, 0, 450, 300)), coffee]
    t = eval_transform(128, zoo.IMAGENET_MEAN, zoo.IMAGENET_STD)
    with torch.inference_mode():
        f = model(torch.stack([t(c) for c in crops]))
    return torch.nn.functional.normalize(f, dim=1).numpy()


def test_pretrained_weights_are_really_loaded() -> None:
    # Pretrained features put two crops of the same cat closer together than the cat is to
    # a coffee cup; the lite0 weights give cos ~0.8 vs ~0.2.
    f = _photo_features(zoo.create("efficientnet-lite0"))
    assert f[0] @ f[1] > 0.6
    assert f[0] @ f[1] > f[0] @ f[2] + 0.3


def test_resnet_without_checkpoint_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="thresher.models"):
        model = zoo.create("resnet-18", num_ftrs=16)
    assert "random weights" in caplog.text
    assert not model.training
    with torch.inference_mode():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 16)
        assert zoo.create("resnet-18")(torch.randn(1, 3, 32, 32)).shape == (1, 512)


def test_resnet_keys_are_torchvision_keys() -> None:
    import torchvision

    own = set(zoo.create("resnet-18", num_ftrs=8).state_dict())
    tv = set(torchvision.models.resnet18().state_dict())
    assert own - tv == {"to_num_ftrs.weight", "to_num_ftrs.bias"}
    assert tv - own == {"fc.weight", "fc.bias"}


def test_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'vit-b'.*Accepted: resnet-18"):
        zoo.create("vit-b")
    with pytest.raises(NotSupportedYetError, match=r"lightly_config.model.width"):
        zoo.create("resnet-18", width=2)
    with pytest.raises(ConfigError, match=r"cannot load checkpoints"):
        zoo.create("efficientnet-lite0", checkpoint="x.ckpt")
