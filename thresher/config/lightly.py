"""``lightly_config``: self-supervised training and the embedding model.

The keys and defaults are those of the Lightly Worker (reference section 6). Every group is its
own strict model, so a misspelt key anywhere is an error naming the closest valid key.

Example:
    >>> from thresher.config._base import parse_config
    >>> cfg = parse_config(LightlyConfig, {"trainer": {"max_epochs": 5}}, "lightly_config")
    >>> cfg.trainer.max_epochs, cfg.loader.batch_size, cfg.model.name
    (5, 16, 'resnet-18')
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Literal, get_args

from pydantic import Field, Strict, ValidationInfo, field_validator

from thresher.config._base import StrictModel

logger = logging.getLogger("thresher.config")

ModelName = Literal[
    "resnet-18",
    "resnet-34",
    "resnet-50",
    "resnet-101",
    "resnet-152",
    "efficientnet-lite0",
    "efficientnet-lite1",
    "efficientnet-lite2",
]

# The model names, declared once (above); the families are read off the names.
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
RESNET_NAMES: tuple[str, ...] = tuple(n for n in MODEL_NAMES if n.startswith("resnet-"))
EFFICIENTNET_NAMES: tuple[str, ...] = tuple(n for n in MODEL_NAMES if n.startswith("efficientnet-"))


def _probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValueError(f"'{name}' must be a probability in [0, 1], got {value!r}")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class LoaderConfig(StrictModel):
    """``lightly_config.loader``: the training data loader."""

    batch_size: int = Field(16, ge=1, description="Images per training batch (two views each).")
    shuffle: bool = Field(True, description="Shuffle the images every epoch.")
    num_workers: int = Field(
        -1, ge=-1, description="Decoding worker processes; -1 means one per CPU core, 0 none."
    )
    drop_last: bool = Field(True, description="Drop the last incomplete batch of each epoch.")


class ModelConfig(StrictModel):
    """``lightly_config.model``: the backbone and its heads."""

    name: ModelName = Field(
        "resnet-18",
        description="Backbone. ResNets are trained or loaded from a checkpoint; "
        "efficientnet-lite0/1/2 are ImageNet-pretrained and only embed.",
    )
    out_dim: int = Field(128, ge=1, description="Output size of the SimCLR projection head.")
    num_ftrs: int = Field(32, ge=1, description="Embedding size of a trained ResNet.")
    width: float = Field(1, gt=0, description="Width multiplier of the ResNet (1 = standard).")


class TrainerConfig(StrictModel):
    """``lightly_config.trainer``: the PyTorch Lightning trainer."""

    gpus: int = Field(1, ge=0, description="GPUs to use when there are any; 0 forces the CPU.")
    max_epochs: int = Field(100, ge=1, description="Training epochs.")
    precision: int = Field(32, description="Floating point precision: 16 (mixed) or 32.")

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, value: object) -> object:
        if str(value) not in ("16", "32"):
            raise ValueError(f"'precision' must be 16 or 32, got {value!r}")
        return int(str(value))


class CriterionConfig(StrictModel):
    """``lightly_config.criterion``: the NT-Xent (SimCLR) loss."""

    temperature: float = Field(0.5, gt=0, description="NT-Xent temperature.")


class OptimizerConfig(StrictModel):
    """``lightly_config.optimizer``: SGD."""

    lr: float = Field(1, gt=0, description="SGD learning rate.")
    weight_decay: float = Field(1e-5, ge=0, description="SGD weight decay.")


class CollateConfig(StrictModel):
    """``lightly_config.collate``: the SimCLR augmentations (two random views per image)."""

    input_size: int = Field(64, ge=8, description="Side of the square training crops, in pixels.")
    cj_prob: float = Field(0.8, description="Probability of color jitter.")
    cj_bright: float = Field(0.7, ge=0, description="Color jitter brightness strength.")
    cj_contrast: float = Field(0.7, ge=0, description="Color jitter contrast strength.")
    cj_sat: float = Field(0.7, ge=0, description="Color jitter saturation strength.")
    cj_hue: float = Field(0.2, ge=0, le=0.5, description="Color jitter hue strength.")
    min_scale: float = Field(0.15, gt=0, le=1, description="Smallest random-crop area fraction.")
    random_gray_scale: float = Field(0.2, description="Probability of converting to grayscale.")
    gaussian_blur: float = Field(0.5, description="Probability of a Gaussian blur.")
    kernel_size: float | None = Field(
        None, description="Deprecated by Lightly in favour of 'sigmas'; accepted and ignored."
    )
    sigmas: tuple[float, float] = Field(
        (0.2, 2),
        strict=False,  # JSON and YAML have no tuples: [min, max] is a list
        description="Range of the Gaussian blur's sigma, [min, max].",
    )
    vf_prob: float = Field(0, description="Probability of a vertical flip.")
    hf_prob: float = Field(0.5, description="Probability of a horizontal flip.")
    rr_prob: float = Field(0, description="Probability of a random rotation.")
    rr_degrees: float | Annotated[tuple[float, float], Strict(False)] | None = Field(
        None,
        description="Rotation range: null = multiples of 90 degrees, x = [-x, x], [a, b] = [a, b].",
    )

    @field_validator(
        "cj_prob", "random_gray_scale", "gaussian_blur", "vf_prob", "hf_prob", "rr_prob"
    )
    @classmethod
    def _probabilities(cls, value: float, info: ValidationInfo) -> float:
        return _probability(info.field_name or "value", value)

    @field_validator("sigmas", "rr_degrees", mode="before")
    @classmethod
    def _pair(cls, value: object, info: ValidationInfo) -> object:
        # Say what a pair is, rather than pydantic's "sigmas[1]: Field required".
        if isinstance(value, (list, tuple)) and (
            len(value) != 2 or not all(_is_number(v) for v in value)
        ):
            raise ValueError(f"'{info.field_name}' must be [min, max], two numbers")
        return value

    @field_validator("sigmas")
    @classmethod
    def _sigmas(cls, value: tuple[float, float]) -> tuple[float, float]:
        lo, hi = value
        if not 0 < lo <= hi:
            raise ValueError(
                f"'sigmas' must be [min, max] with 0 < min <= max, got {list(value)!r}"
            )
        return value

    @field_validator("kernel_size")
    @classmethod
    def _kernel_size(cls, value: float | None) -> float | None:
        if value is not None:
            logger.warning(
                "lightly_config.collate.kernel_size is deprecated and ignored; "
                "set lightly_config.collate.sigmas instead."
            )
        return value


class CheckpointCallbackConfig(StrictModel):
    """``lightly_config.checkpoint_callback``: which weights go into ``checkpoint.ckpt``."""

    save_last: bool = Field(
        True,
        description="true: the weights after the last epoch; false: those of the epoch with "
        "the lowest loss.",
    )


class LightlyConfig(StrictModel):
    """``lightly_config``: SimCLR training and the embedding model (reference section 6)."""

    loader: LoaderConfig = Field(default_factory=LoaderConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    criterion: CriterionConfig = Field(default_factory=CriterionConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    collate: CollateConfig = Field(default_factory=CollateConfig)
    checkpoint_callback: CheckpointCallbackConfig = Field(default_factory=CheckpointCallbackConfig)
    seed: int = Field(1, ge=0, description="Seed for the augmentations, shuffling and init.")


__all__ = [
    "EFFICIENTNET_NAMES",
    "MODEL_NAMES",
    "RESNET_NAMES",
    "CheckpointCallbackConfig",
    "CollateConfig",
    "CriterionConfig",
    "LightlyConfig",
    "LoaderConfig",
    "ModelConfig",
    "ModelName",
    "OptimizerConfig",
    "TrainerConfig",
]
