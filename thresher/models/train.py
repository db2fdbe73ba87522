"""Self-supervised SimCLR training on the user's own images.

The pieces come from ``lightly`` (the two-view SimCLR transform, ``NTXentLoss``,
``SimCLRProjectionHead``) around a torchvision ResNet, trained by a PyTorch Lightning
``Trainer`` with SGD. Every ``lightly_config`` key reaches one of the objects that
:func:`build_training` returns; :func:`train_simclr` runs them and writes ``checkpoint.ckpt``.

Example:
    >>> from thresher.config.lightly import LightlyConfig
    >>> cfg = LightlyConfig.model_validate({"trainer": {"max_epochs": 1}})
    >>> summary = train_simclr(cfg, "/data/images", names, "/tmp/ckpt.ckpt")  # doctest: +SKIP
    >>> summary.final_loss, summary.images_per_s  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from lightly.transforms import SimCLRTransform
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from thresher.config.lightly import RESNET_NAMES, CollateConfig, LightlyConfig
from thresher.errors import ConfigError, CorruptMediaError, InputError, StorageError
from thresher.models.checkpoint import load_into, read_checkpoint, save_checkpoint
from thresher.models.inference import FileImages, cpu_count
from thresher.models.zoo import IMAGENET_MEAN, IMAGENET_STD, ResNetBackbone, resnet_from_checkpoint
from thresher.tempdirs import TempDir

logger = logging.getLogger("thresher.models")


@dataclass
class TrainSummary:
    """What a training run did.

    Attributes:
        epochs: Epochs trained.
        final_loss: Mean loss of the last epoch.
        images_per_s: Training throughput over all epochs (images, each seen as two views).
        device: ``"cpu"`` or ``"cuda"``.
        checkpoint: Local path of the checkpoint written.
        history: One ``{"epoch", "loss", "images_per_s"}`` per epoch.
    """

    epochs: int
    final_loss: float
    images_per_s: float
    device: str
    checkpoint: str
    history: list[dict[str, float]] = field(default_factory=list)


class SimCLRModel(nn.Module):
    """Backbone plus projection head; its state_dict is the Lightly layout under ``model.``."""

    def __init__(self, backbone: ResNetBackbone, projection_head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection_head = projection_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Projected features ``(B, out_dim)``."""
        z: torch.Tensor = self.projection_head(self.backbone(x))
        return z


class SimCLRModule(pl.LightningModule):
    """The Lightning module: NT-Xent on two views, SGD with cosine decay.

    Args:
        model: Backbone and projection head.
        temperature: ``criterion.temperature``.
        lr: ``optimizer.lr``.
        weight_decay: ``optimizer.weight_decay``.
        max_epochs: Length of the cosine schedule.
        filenames: The training files, to name a file that fails to decode.
    """

    def __init__(
        self,
        model: SimCLRModel,
        *,
        temperature: float,
        lr: float,
        weight_decay: float,
        max_epochs: int,
        filenames: Sequence[str],
    ) -> None:
        super().__init__()
        self.model = model
        self.criterion = NTXentLoss(temperature=temperature)
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.filenames = list(filenames)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """One SimCLR step; both views go through one forward so BatchNorm sees 2B samples."""
        views, index, ok, reasons = batch
        if not bool(ok.all()):
            i = int((~ok).nonzero()[0])
            name = self.filenames[int(index[i])]
            raise CorruptMediaError(name, reasons[i])
        z0, z1 = self.model(torch.cat([views[0], views[1]])).chunk(2)
        loss: torch.Tensor = self.criterion(z0, z1)
        self.log("loss", loss, on_step=False, on_epoch=True, batch_size=len(index))
        return loss

    def configure_optimizers(self) -> Any:
        """SGD with momentum 0.9 and a cosine learning-rate decay over ``max_epochs``."""
        optimizer = torch.optim.SGD(
            self.model.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
        return [optimizer], [scheduler]


class TrainImages(FileImages):
    """Training images as ``(views, index, ok, reason)``."""

    def __getitem__(self, index: int) -> tuple[Any, int, bool, str]:  # type: ignore[override]
        try:
            return self.transform(self.load(index)), index, True, ""
        except (CorruptMediaError, StorageError) as e:
            return self.transform(Image.new("RGB", (8, 8))), index, False, str(e)


class EpochRecorder(pl.Callback):
    """Per epoch: measures loss and images/s, reports them, writes the checkpoint.

    Args:
        checkpoint_out: Local path of ``checkpoint.ckpt``.
        save_last: ``checkpoint_callback.save_last``: True writes every epoch (the file ends
            with the last epoch's weights); False writes only when the loss improves.
        meta: Plain data stored in the checkpoint.
        progress: Called with ``{"epoch", "loss", "images_per_s"}`` after each epoch.
    """

    def __init__(
        self,
        checkpoint_out: str,
        *,
        save_last: bool,
        meta: Mapping[str, Any],
        progress: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        self.checkpoint_out = checkpoint_out
        self.save_last = save_last
        self.meta = dict(meta)
        self.progress = progress
        self.history: list[dict[str, float]] = []
        self.best_loss = math.inf
        self.total_images = 0
        self.total_seconds = 0.0
        self._start = 0.0
        self._images = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the epoch's clock."""
        self._start = time.perf_counter()
        self._images = 0

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Count the batch's images."""
        self._images += len(batch[1])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record, report and checkpoint."""
        seconds = time.perf_counter() - self._start
        loss = float(trainer.callback_metrics.get("loss", torch.tensor(math.nan)))
        epoch = trainer.current_epoch + 1
        if not math.isfinite(loss):
            raise ConfigError(
                f"training diverged at epoch {epoch} (loss {loss}). Lower "
                "lightly_config.optimizer.lr or use a larger lightly_config.loader.batch_size."
            )
        ips = self._images / seconds if seconds > 0 else 0.0
        self.total_images += self._images
        self.total_seconds += seconds
        record = {"epoch": epoch, "loss": loss, "images_per_s": ips}
        self.history.append(record)
        logger.info("training epoch %d: loss %.4f, %.1f images/s", epoch, loss, ips)
        if self.progress is not None:
            self.progress(dict(record))
        if trainer.is_global_zero and (self.save_last or loss < self.best_loss):
            model: SimCLRModel = pl_module.model  # type: ignore[assignment]
            save_checkpoint(
                self.checkpoint_out,
                model.backbone,
                model.projection_head,
                meta={**self.meta, "loss": loss},
                epoch=epoch,
                global_step=trainer.global_step,
            )
        self.best_loss = min(self.best_loss, loss)


@dataclass
class TrainingSetup:
    """Every object a training run is made of, built from the configs, before it runs.

    Attributes:
        module: The Lightning module (model, criterion, optimizer settings).
        dataloader: The training data loader.
        transform: The lightly SimCLR two-view transform.
        trainer_kwargs: Arguments of ``pytorch_lightning.Trainer``.
        recorder: The callback that reports epochs and writes the checkpoint.
        device: ``"cpu"`` or ``"cuda"``.
        seed: The seed everything was built with.
    """

    module: SimCLRModule
    dataloader: DataLoader
    transform: SimCLRTransform
    trainer_kwargs: dict[str, Any]
    recorder: EpochRecorder
    device: str
    seed: int


def simclr_transform(collate: CollateConfig) -> SimCLRTransform:
    """The lightly SimCLR transform from ``lightly_config.collate`` (``kernel_size`` is ignored)."""
    return SimCLRTransform(
        input_size=collate.input_size,
        cj_prob=collate.cj_prob,
        cj_strength=1.0,
        cj_bright=collate.cj_bright,
        cj_contrast=collate.cj_contrast,
        cj_sat=collate.cj_sat,
        cj_hue=collate.cj_hue,
        min_scale=collate.min_scale,
        random_gray_scale=collate.random_gray_scale,
        gaussian_blur=collate.gaussian_blur,
        sigmas=(collate.sigmas[0], collate.sigmas[1]),
        vf_prob=collate.vf_prob,
        hf_prob=collate.hf_prob,
        rr_prob=collate.rr_prob,
        rr_degrees=collate.rr_degrees,
        normalize={"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
    )


def trainer_device(gpus: int, precision: int) -> tuple[dict[str, Any], str]:
    """Lightning's accelerator, devices and precision for ``trainer.gpus`` and ``.precision``.

    The GPU when there is one and ``gpus`` >= 1, else the CPU. fp16 autocast does not run on
    the CPU, so precision 16 becomes bfloat16 mixed precision there.
    """
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus >= 1 and available:
        if gpus > available:
            logger.warning(
                "lightly_config.trainer.gpus is %d but %d GPU(s) are visible; using %d.",
                gpus,
                available,
                available,
            )
        return {
            "accelerator": "gpu",
            "devices": min(gpus, available),
            "precision": "16-mixed" if precision == 16 else "32-true",
        }, "cuda"
    if gpus >= 1:
        logger.info("No GPU visible: training on the CPU.")
    if precision == 16:
        logger.info("precision 16 on the CPU runs as bfloat16 mixed precision.")
    return {
        "accelerator": "cpu",
        "devices": 1,
        "precision": "bf16-mixed" if precision == 16 else "32-true",
    }, "cpu"


def _build_model(
    cfg: LightlyConfig, init_checkpoint: str | None, storage_options: Any
) -> SimCLRModel:
    mcfg = cfg.model
    if mcfg.name not in RESNET_NAMES:
        raise ConfigError(
            f"lightly_config.model.name is '{mcfg.name}', which is pretrained and cannot be "
            f"trained. Training uses a ResNet: {', '.join(RESNET_NAMES)}."
        )
    if init_checkpoint is None:
        backbone = ResNetBackbone(mcfg.name, num_ftrs=mcfg.num_ftrs, width=mcfg.width)
        head = SimCLRProjectionHead(backbone.dim, backbone.dim, mcfg.out_dim)
        return SimCLRModel(backbone, head)
    ckpt = read_checkpoint(init_checkpoint, storage_options)
    num_ftrs = mcfg.num_ftrs if "num_ftrs" in mcfg.model_fields_set else None
    backbone = resnet_from_checkpoint(mcfg.name, ckpt, num_ftrs=num_ftrs, width=mcfg.width)
    head = SimCLRProjectionHead(backbone.dim, backbone.dim, mcfg.out_dim)
    if ckpt.projection_head:
        load_into(
            head, ckpt.projection_head, source=ckpt.source, name=mcfg.name, part="projection head"
        )
    else:
        logger.warning(
            "checkpoint %s has no projection head; training continues with a new one.",
            init_checkpoint,
        )
    logger.info("training continues from checkpoint %s", init_checkpoint)
    return SimCLRModel(backbone, head)


def build_training(
    lightly_config: LightlyConfig,
    input_url: str,
    filenames: Sequence[str],
    checkpoint_out: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    init_checkpoint: str | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> TrainingSetup:
    """Build, but do not run, everything :func:`train_simclr` runs.

    Args: as for :func:`train_simclr`.

    Returns:
        The objects that carry every ``lightly_config`` key.

    Raises:
        ConfigError: A model that cannot be trained or a checkpoint that does not fit.
        NotSupportedYetError: ``model.width`` other than 1.
        InputError: No images, or fewer than one batch with ``drop_last``.
    """
    cfg = lightly_config
    n = len(filenames)
    if n == 0:
        raise InputError("training needs images, but the input has none left to train on.")
    if cfg.loader.drop_last and n < cfg.loader.batch_size:
        raise InputError(
            f"training has {n} images, fewer than lightly_config.loader.batch_size="
            f"{cfg.loader.batch_size}, and drop_last is true, so no batch is left. Lower "
            "lightly_config.loader.batch_size or set lightly_config.loader.drop_last to false."
        )
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model = _build_model(cfg, init_checkpoint, storage_options)
    module = SimCLRModule(
        model,
        temperature=cfg.criterion.temperature,
        lr=cfg.optimizer.lr,
        weight_decay=cfg.optimizer.weight_decay,
        max_epochs=cfg.trainer.max_epochs,
        filenames=filenames,
    )
    transform = simclr_transform(cfg.collate)
    dataset = TrainImages(input_url, filenames, transform, storage_options)
    workers = cpu_count() if cfg.loader.num_workers == -1 else cfg.loader.num_workers
    device_kwargs, device = trainer_device(cfg.trainer.gpus, cfg.trainer.precision)
    dataloader = DataLoader(
        dataset,
        batch_size=cfg.loader.batch_size,
        shuffle=cfg.loader.shuffle,
        num_workers=workers,
        drop_last=cfg.loader.drop_last,
        persistent_workers=workers > 0 and cfg.trainer.max_epochs > 1,
        pin_memory=device == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    meta = {
        "model": cfg.model.name,
        "num_ftrs": model.backbone.dim,
        "out_dim": cfg.model.out_dim,
        "width": cfg.model.width,
        "input_size": cfg.collate.input_size,
        "lightly_config": cfg.model_dump(mode="json"),
    }
    recorder = EpochRecorder(
        checkpoint_out,
        save_last=cfg.checkpoint_callback.save_last,
        meta=meta,
        progress=progress,
    )
    trainer_kwargs: dict[str, Any] = {
        **device_kwargs,
        "max_epochs": cfg.trainer.max_epochs,
        "callbacks": [recorder],
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 1,
    }
    return TrainingSetup(
        module=module,
        dataloader=dataloader,
        transform=transform,
        trainer_kwargs=trainer_kwargs,
        recorder=recorder,
        device=device,
        seed=cfg.seed,
    )


def train_simclr(
    lightly_config: LightlyConfig,
    input_url: str,
    filenames: Sequence[str],
    checkpoint_out: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    init_checkpoint: str | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> TrainSummary:
    """Train SimCLR on the input images and write a Lightly-layout checkpoint.

    Args:
        lightly_config: The validated ``lightly_config``; every key is used.
        input_url: Root path or fsspec URL of the images.
        filenames: Images to train on, relative to ``input_url``.
        checkpoint_out: Local path the checkpoint is written to (atomically, after each epoch
            with ``save_last``, else whenever the loss improves).
        storage_options: fsspec options for the images and ``init_checkpoint``.
        init_checkpoint: Continue from this checkpoint's weights (``worker_config.checkpoint``
            with ``enable_training``).
        progress: Called after each epoch with ``{"epoch", "loss", "images_per_s"}``.

    Returns:
        The summary: epochs, final loss, images/s, device and checkpoint path.

    Raises:
        ConfigError: A model that cannot be trained, a checkpoint that does not fit, or a
            diverging loss.
        InputError: Too few images.
        CorruptMediaError: An image cannot be decoded.
    """
    setup = build_training(
        lightly_config,
        input_url,
        filenames,
        checkpoint_out,
        storage_options=storage_options,
        init_checkpoint=init_checkpoint,
        progress=progress,
    )
    with TempDir("train") as root:
        trainer = pl.Trainer(default_root_dir=root, **setup.trainer_kwargs)
        trainer.fit(setup.module, train_dataloaders=setup.dataloader)
    rec = setup.recorder
    if not rec.history:
        raise InputError("training ran no epoch; check lightly_config.trainer.max_epochs.")
    return TrainSummary(
        epochs=len(rec.history),
        final_loss=rec.history[-1]["loss"],
        images_per_s=rec.total_images / rec.total_seconds if rec.total_seconds else 0.0,
        device=setup.device,
        checkpoint=checkpoint_out,
        history=list(rec.history),
    )


__all__ = [
    "SimCLRModel",
    "SimCLRModule",
    "TrainSummary",
    "TrainingSetup",
    "build_training",
    "simclr_transform",
    "train_simclr",
    "trainer_device",
]
