"""Inference: images in, one (L2-normalised) feature row per file out.

Images are read through fsspec and decoded in DataLoader worker processes while the main
process runs the model, so throughput stays close to the model's forward speed. The forward
pass runs on a backend (:mod:`thresher.models.backends`): OpenVINO on the CPU, PyTorch on a GPU.

Example:
    >>> from thresher.models import zoo
    >>> model, spec = zoo.create("efficientnet-lite0"), zoo.spec("efficientnet-lite0")
    >>> emb = embed_files(model, spec, "/data/images", ["a.jpg", "b/c.png"])  # doctest: +SKIP
    >>> emb.shape  # doctest: +SKIP
    (2, 1280)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2 as T

from thresher.config.lightly import RESNET_NAMES, LightlyConfig
from thresher.errors import ConfigError, CorruptMediaError, StorageError
from thresher.models import zoo
from thresher.models.backends import (
    PRETRAINED_DEFAULT,
    cpu_count,
    cpu_description,
    make_runner,
    plan_cpu,
    resolve_backend,
)
from thresher.storage.crops import Box, CropReader
from thresher.storage.location import Location
from thresher.storage.pixels import decode_image
from thresher.storage.video import FrameReader

logger = logging.getLogger("thresher.models")


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` is the GPU when there is one, else the CPU; anything else is passed on."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class FileImages(Dataset):
    """Images under an INPUT location, as ``(tensor, ok, reason)``.

    Decode errors come back as data rather than exceptions, because a DataLoader worker
    cannot re-raise an exception that takes more than a message.

    Args:
        input_url: Root URL or path the filenames are relative to.
        filenames: Files to read, relative to the root.
        transform: PIL image -> tensor.
        storage_options: fsspec options.
        min_size: Smallest short side the transform needs (lets JPEGs decode at reduced
            scale); None decodes at full size.
        frames: The filenames are video frame names (a video run): each is decoded from its
            video by a per-process :class:`thresher.storage.video.FrameReader`.
        crops: Object level: crop name -> ``(image name, box)``; each filename is a crop,
            cut from its image by a per-process :class:`thresher.storage.crops.CropReader`.
    """

    def __init__(
        self,
        input_url: str,
        filenames: Sequence[str],
        transform: Callable[[Image.Image], Any],
        storage_options: Mapping[str, Any] | None = None,
        min_size: int | None = None,
        frames: bool = False,
        crops: Mapping[str, tuple[str, Box]] | None = None,
    ) -> None:
        self.frames = frames
        self.crops = crops
        self._crop_reader: CropReader | None = None
        self._reader: FrameReader | None = None
        self.min_size = min_size
        self.input_url = input_url
        self.storage_options = dict(storage_options or {})
        self._location: Location | None = None
        self._pid = os.getpid()
        self.filenames = list(filenames)
        self.transform = transform

    @property
    def location(self) -> Location:
        """The INPUT location, opened anew in each worker process.

        Async filesystems (s3fs, gcsfs, adlfs) are not fork-safe, and fsspec's instance cache
        resets per process.
        """
        if self._location is None or self._pid != os.getpid():
            self._location = Location(self.input_url, self.storage_options)
            self._pid = os.getpid()
        return self._location

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_location"] = None  # reopened on first use in the receiving process
        state["_reader"] = None
        state["_crop_reader"] = None
        return state

    def __len__(self) -> int:
        return len(self.filenames)

    def load(self, index: int) -> Image.Image:
        """Decode file ``index``; raises CorruptMediaError or StorageError."""
        name = self.filenames[index]
        if self.frames:  # streams each video forward: frames come in order within a worker
            if self._reader is None or self._reader.location is not self.location:
                self._reader = FrameReader(self.location)
            return self._reader.read_frame(name)
        if self.crops is not None:  # object level: the crops of an image come together
            if self._crop_reader is None or self._crop_reader.location is not self.location:
                self._crop_reader = CropReader(self.location, self.crops)
            return self._crop_reader.read_crop(name)
        return decode_image(self.location.read_bytes(name), name, self.min_size)

    def __getitem__(self, index: int) -> tuple[Any, bool, str]:
        try:
            return self.transform(self.load(index)), True, ""
        except CorruptMediaError as e:
            return self._placeholder(), False, e.reason
        except StorageError as e:  # e.g. gone since the corruption check: its whole message
            return self._placeholder(), False, str(e)

    def _placeholder(self) -> Any:
        return self.transform(Image.new("RGB", (8, 8)))


def eval_transform(
    input_size: int, mean: Sequence[float], std: Sequence[float]
) -> Callable[[Image.Image], torch.Tensor]:
    """Resize the short side to ``input_size``, center-crop a square, normalise."""
    transform: Callable[[Image.Image], torch.Tensor] = T.Compose(
        [
            T.PILToTensor(),
            T.Resize(input_size, antialias=True),
            T.CenterCrop(input_size),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(mean=list(mean), std=list(std)),
        ]
    )
    return transform


def _ignore_sigint(_worker_id: int) -> None:
    """Decode workers leave Ctrl-C to the main process, which stops them (no tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def iter_embeddings(
    model: nn.Module,
    spec: zoo.ModelSpec,
    input_url: str,
    filenames: Sequence[str],
    *,
    storage_options: dict[str, Any] | None = None,
    batch_size: int = 64,
    num_workers: int = -1,
    device: str = "auto",
    input_size: int | None = None,
    normalize: bool = True,
    backend: str = "auto",
    frames: bool = False,
    on_broken: Callable[[int, str], None] | None = None,
    crops: Mapping[str, tuple[str, Box]] | None = None,
) -> Iterator[np.ndarray]:
    """Embed image files with ``model``, yielding one ``(B, D)`` float32 array per batch.

    Batches come in the order of ``filenames``, so a caller can commit them as they come and,
    after an interruption, resume with the files not yet embedded.

    Args:
        model: A zoo model (``(B, 3, H, W)`` -> ``(B, D)``); it is moved to ``device``.
        spec: Its spec (input size and normalisation).
        input_url: Root path or fsspec URL the filenames are relative to.
        filenames: Files to embed.
        storage_options: fsspec options (credentials, endpoint).
        batch_size: Images per forward pass.
        num_workers: Decoding worker processes; -1 = sized with the inference threads for
            the cores this process may use (:func:`thresher.models.backends.plan_cpu`),
            0 = decode in this process.
        device: ``"auto"`` (the GPU when there is one), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
            (for the ``torch`` backend; OpenVINO runs on the CPU).
        input_size: Overrides ``spec.input_size``.
        normalize: L2-normalise each row (``worker_config.normalize_embeddings``).
        backend: ``"auto"``, ``"torch"`` or ``"openvino"``
            (``worker_config.embedding_backend``).
        frames: ``filenames`` are video frame names (``<video>-<frame>-<ext>.png``), decoded
            from their videos (:class:`FileImages`).
        on_broken: Called with ``(index into filenames, reason)`` for a file that cannot be
            read or decoded (it changed or vanished since the corruption check); its row is
            NaN. Without it such a file raises.
        crops: Object level: ``filenames`` are crop names, mapped to ``(image name, box)``
            (:mod:`thresher.storage.crops`).

    Yields:
        ``(B, D)`` float32 embeddings of the next ``B`` files.

    Raises:
        CorruptMediaError: A file cannot be decoded and ``on_broken`` is not given (the
            corruptness check should have removed it).
        ValueError: ``batch_size`` < 1 or ``num_workers`` < -1.
        ConfigError: ``backend`` is unknown, or ``openvino`` without the package.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if num_workers < -1:
        raise ValueError(f"num_workers must be -1 (all cores), 0 or more, got {num_workers}")
    size = input_size or spec.input_size
    dataset = FileImages(
        input_url,
        filenames,
        eval_transform(size, spec.mean, spec.std),
        storage_options,
        min_size=size,
        frames=frames,
        crops=crops,
    )
    if len(dataset) == 0:
        return
    n_batches = math.ceil(len(dataset) / batch_size)
    chosen = resolve_backend(backend, device)
    planned, threads = plan_cpu(cpu_count(), chosen, n_batches)
    workers = planned if num_workers == -1 else min(num_workers, n_batches)
    dev = resolve_device(device) if chosen == "torch" else torch.device("cpu")
    # Built before the decode workers fork: they only decode, which is safe after OpenVINO
    # ran here (running OpenVINO itself in a forked child hangs).
    run = make_runner(model, size, chosen, device=dev, threads=threads)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=dev.type == "cuda",
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_ignore_sigint if workers > 0 else None,
    )
    done = 0
    for images, ok, reasons in loader:
        bad = [int(i) for i in (~ok).nonzero().flatten()]
        if bad and on_broken is None:
            raise CorruptMediaError(dataset.filenames[done + bad[0]], reasons[bad[0]])
        feats = run(images)
        if normalize:
            feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        feats = feats.astype(np.float32, copy=False)
        for i in bad:
            feats[i] = np.nan
            if on_broken is not None:
                on_broken(done + i, reasons[i])
        done += len(images)
        yield feats


def embed_files(
    model: nn.Module,
    spec: zoo.ModelSpec,
    input_url: str,
    filenames: Sequence[str],
    *,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> np.ndarray:
    """Embed image files with ``model`` into one ``(N, D)`` float32 array.

    Args:
        model: A zoo model, as for :func:`iter_embeddings`.
        spec: Its spec.
        input_url: Root path or fsspec URL the filenames are relative to.
        filenames: Files to embed.
        progress: Called with the number of images finished after each batch.
        **options: The keyword options of :func:`iter_embeddings`.

    Returns:
        ``(N, D)`` float32 embeddings in the order of ``filenames``.
    """
    out: list[np.ndarray] = []
    for batch in iter_embeddings(model, spec, input_url, filenames, **options):
        out.append(batch)
        if progress is not None:
            progress(len(batch))
    if not out:
        return np.zeros((0, spec.dim), dtype=np.float32)
    return np.concatenate(out)


def device_description(device: str = "auto") -> str:
    """What computes the embeddings, for the report: the GPU's name or the CPU model and cores."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(dev)}"
    return cpu_description()


def resolve_embedder(
    lightly_config: LightlyConfig,
    *,
    checkpoint: str | None,
    enable_training: bool,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, zoo.ModelSpec, str]:
    """Pick the embed stage's model from the configs.

    The rule:
    - no training, no checkpoint, ``lightly_config.model.name`` not set by the user:
      the pretrained ``efficientnet-lite0``;
    - a checkpoint (the user's, an earlier run's, or the one training just wrote): the ResNet
      named by ``lightly_config.model.name``, loaded from it, embedding at
      ``lightly_config.collate.input_size``;
    - otherwise the explicitly named zoo model (a ResNet then starts from random weights,
      with a warning).

    Args:
        lightly_config: The validated ``lightly_config``.
        checkpoint: Path or URL of the checkpoint to embed with; with ``enable_training``
            this is the checkpoint the training wrote.
        enable_training: ``worker_config.enable_training``.
        storage_options: fsspec options for reading the checkpoint.

    Returns:
        The model (eval mode, CPU), its spec, and its zoo name.

    Raises:
        ConfigError: Training or a checkpoint with a model that is not a ResNet.
        ValueError: ``enable_training`` without the checkpoint the training wrote.
    """
    cfg = lightly_config.model
    explicit = "name" in cfg.model_fields_set
    if checkpoint is None and enable_training:
        raise ValueError(
            "enable_training is set but no checkpoint was given: train first and pass the "
            "checkpoint the training wrote"
        )
    if checkpoint is None and not explicit:
        name = PRETRAINED_DEFAULT
        return zoo.create(name), zoo.spec(name), name
    if (checkpoint is not None or enable_training) and cfg.name not in RESNET_NAMES:
        raise ConfigError(
            f"lightly_config.model.name is '{cfg.name}', but training and checkpoints use a "
            f"ResNet ({', '.join(RESNET_NAMES)}). Set lightly_config.model.name to one of "
            "them, or remove worker_config.checkpoint and enable_training."
        )
    num_ftrs = cfg.num_ftrs if ("num_ftrs" in cfg.model_fields_set or checkpoint is None) else None
    model = zoo.create(
        cfg.name,
        checkpoint=checkpoint,
        num_ftrs=num_ftrs,
        width=cfg.width,
        storage_options=storage_options,
    )
    spec = zoo.spec(cfg.name, num_ftrs=getattr(model, "dim", None))
    if cfg.name in RESNET_NAMES:
        spec = dataclasses.replace(spec, input_size=lightly_config.collate.input_size)
    return model, spec, cfg.name


__all__ = [
    "FileImages",
    "cpu_count",
    "decode_image",
    "device_description",
    "embed_files",
    "eval_transform",
    "iter_embeddings",
    "resolve_device",
    "resolve_embedder",
]
