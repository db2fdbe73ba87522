"""Models: the zoo of embedders, the embed stage, SimCLR training and checkpoints.

Every name is imported on first use: importing a submodule that needs no PyTorch
(:mod:`thresher.models.backends`, which runs a cached pretrained model on OpenVINO) does not
import PyTorch, timm or PyTorch Lightning through this package.
"""

import importlib
from typing import Any

_LAZY = {
    "Checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "embed_files": "inference",
    "iter_embeddings": "inference",
    "resolve_embedder": "inference",
    "ModelSpec": "zoo",
    "create": "zoo",
    "spec": "zoo",
    "train_simclr": "train",
    "TrainSummary": "train",
    "build_training": "train",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'thresher.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"thresher.models.{module}"), name)


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
