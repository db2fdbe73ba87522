"""Models: the zoo of embedders, the embed stage, SimCLR training and checkpoints.

``train_simclr`` and ``TrainSummary`` are imported on first use, so the embed stage does not
pay for importing PyTorch Lightning.
"""

from typing import Any

from thresher.models.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from thresher.models.inference import embed_files, iter_embeddings, resolve_embedder
from thresher.models.zoo import ModelSpec, create, spec

_LAZY = {"train_simclr", "TrainSummary", "build_training"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from thresher.models import train

        return getattr(train, name)
    raise AttributeError(f"module 'thresher.models' has no attribute {name!r}")


__all__ = [
    "Checkpoint",
    "ModelSpec",
    "TrainSummary",
    "build_training",
    "create",
    "embed_files",
    "iter_embeddings",
    "read_checkpoint",
    "resolve_embedder",
    "save_checkpoint",
    "spec",
    "train_simclr",
]
