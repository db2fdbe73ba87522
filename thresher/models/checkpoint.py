"""Checkpoints in the Lightly layout.

A checkpoint is a ``torch.save``-d dict whose ``state_dict`` holds the backbone under the
prefix ``model.backbone.`` and the SimCLR projection head under ``model.projection_head.``,
as the Lightly Worker writes it (reference section 5). Loading keeps the backbone, drops the
projection head and strips the prefix, so a thresher checkpoint also loads the way Lightly's
documentation shows.

Checkpoints are read with ``torch.load(weights_only=True)``: a checkpoint given by URL is
data, never code.

Example:
    >>> ckpt = read_checkpoint("runs/abc/checkpoint.ckpt")  # doctest: +SKIP
    >>> backbone_state = ckpt.backbone  # keys like "conv1.weight", "layer1.0.bn1.bias"
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from thresher.errors import ConfigError, StorageError
from thresher.storage.location import Location

BACKBONE_PREFIX = "model.backbone."
HEAD_PREFIX = "model.projection_head."


@dataclass
class Checkpoint:
    """The parts of a checkpoint that thresher uses.

    Attributes:
        source: Where it was read from (for messages).
        backbone: Backbone state_dict, prefix stripped.
        projection_head: Projection head state_dict, prefix stripped (may be empty).
        meta: What thresher recorded at training time (model name, num_ftrs, ...), or {}.
        epoch: The epoch the weights come from, or None.
    """

    source: str
    backbone: dict[str, torch.Tensor]
    projection_head: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None


def save_checkpoint(
    path: str,
    backbone: nn.Module,
    projection_head: nn.Module | None = None,
    *,
    meta: Mapping[str, Any] | None = None,
    epoch: int | None = None,
    global_step: int | None = None,
) -> str:
    """Write a Lightly-layout checkpoint to a local path, atomically.

    Args:
        path: Local file to write (its folder must exist).
        backbone: The backbone; its keys get the prefix ``model.backbone.``.
        projection_head: The SimCLR projection head, saved under ``model.projection_head.``.
        meta: Plain data (str, numbers, lists, dicts) recorded under the key ``thresher``.
        epoch: The epoch these weights come from.
        global_step: The optimizer step these weights come from.

    Returns:
        ``path``.
    """
    state: dict[str, torch.Tensor] = {}
    for key, value in backbone.state_dict().items():
        state[BACKBONE_PREFIX + key] = value.detach().cpu()
    if projection_head is not None:
        for key, value in projection_head.state_dict().items():
            state[HEAD_PREFIX + key] = value.detach().cpu()
    payload: dict[str, Any] = {
        "state_dict": state,
        "epoch": epoch,
        "global_step": global_step,
        "thresher": dict(meta or {}),
    }
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def read_checkpoint(url: str, storage_options: Mapping[str, Any] | None = None) -> Checkpoint:
    """Read a checkpoint from a local path or an fsspec URL.

    Args:
        url: Local path or URL (``s3://...``, ``memory://...``).
        storage_options: Passed to fsspec (credentials, endpoint).

    Returns:
        The backbone and projection-head state_dicts, prefixes stripped.

    Raises:
        ConfigError: The file is missing, is not a torch checkpoint, holds Python objects
            beyond tensors and plain data, or has no ``model.backbone.*`` keys.
    """
    parent, _, name = url.rstrip("/").rpartition("/")
    try:
        data = Location(parent or ".", dict(storage_options or {})).read_bytes(name)
    except StorageError as e:
        missing = "file not found" if "not found" in str(e) else f"cannot be read ({e})"
        raise ConfigError(
            f"checkpoint {url}: {missing}. worker_config.checkpoint must be a path "
            "relative to the shared directory or a URL of a checkpoint.ckpt written by a "
            "training run."
        ) from e
    try:
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ConfigError(
            f"checkpoint {url}: holds Python objects besides tensors, so it is not loaded "
            "(loading would run code from the file). If you trust it, re-save only its "
            "weights: torch.save({'state_dict': torch.load(p, weights_only=False)"
            "['state_dict']}, p)."
        ) from e
    except (RuntimeError, EOFError, ValueError, IndexError, KeyError, TypeError) as e:
        # Arbitrary bytes fail inside torch's unpickler in any of these ways.
        raise ConfigError(f"checkpoint {url}: not a PyTorch checkpoint ({e}).") from e
    return _split(url, raw)


def _split(url: str, raw: Any) -> Checkpoint:
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        state = raw["state_dict"]
    elif isinstance(raw, Mapping) and all(isinstance(v, torch.Tensor) for v in raw.values()):
        state = raw
    else:
        raise ConfigError(
            f"checkpoint {url}: expected a dict with a 'state_dict' of tensors "
            "(the Lightly checkpoint layout)."
        )
    backbone = {
        k[len(BACKBONE_PREFIX) :]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)
    }
    head = {k[len(HEAD_PREFIX) :]: v for k, v in state.items() if k.startswith(HEAD_PREFIX)}
    if not backbone:
        sample = ", ".join(list(state)[:3]) or "none"
        raise ConfigError(
            f"checkpoint {url}: no keys start with '{BACKBONE_PREFIX}' (found e.g. {sample}). "
            "Use a checkpoint.ckpt written by a thresher or Lightly training run."
        )
    meta = raw.get("thresher") if isinstance(raw, Mapping) else None
    epoch = raw.get("epoch") if isinstance(raw, Mapping) else None
    return Checkpoint(
        source=url,
        backbone=backbone,
        projection_head=head,
        meta=dict(meta) if isinstance(meta, Mapping) else {},
        epoch=epoch if isinstance(epoch, int) else None,
    )


def load_into(
    module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str, name: str, part: str
) -> None:
    """Load ``state`` into ``module`` strictly, with an error that says how to fix a mismatch.

    Args:
        module: The freshly built module.
        state: Its state_dict from a checkpoint, prefix stripped.
        source: The checkpoint's location, for the message.
        name: The ``lightly_config.model.name`` the module was built for.
        part: "backbone" or "projection head", for the message.

    Raises:
        ConfigError: Keys are missing or unexpected, or shapes differ.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise ConfigError(
            f"checkpoint {source}: its {part} does not match lightly_config.model.name="
            f"'{name}': keys {'; '.join(detail)}. Set lightly_config.model.name to the "
            "architecture the checkpoint was trained with."
        )
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if tuple(state[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise ConfigError(
            f"checkpoint {source}: {len(wrong)} {part} weight shapes differ from "
            f"lightly_config.model.name='{name}' (checkpoint vs model: {'; '.join(wrong[:3])}). "
            "Check lightly_config.model.num_ftrs, out_dim and width against the checkpoint."
        )
    module.load_state_dict(dict(state), strict=True)


__all__ = [
    "BACKBONE_PREFIX",
    "HEAD_PREFIX",
    "Checkpoint",
    "load_into",
    "read_checkpoint",
    "save_checkpoint",
]
