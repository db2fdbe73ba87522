"""SimCLR training: a real one-epoch run, every lightly_config key reaching it, resuming."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightly.transforms.gaussian_blur import GaussianBlur
from lightly.transforms.rotation import RandomRotate, RandomRotateDegrees
from pydantic import BaseModel
from torch.utils.data import RandomSampler, SequentialSampler

from thresher.config.lightly import LightlyConfig
from thresher.errors import ConfigError, CorruptMediaError, InputError, NotSupportedYetError
from thresher.models import embed_files, zoo
from thresher.models.checkpoint import read_checkpoint
from thresher.models.train import EpochRecorder, TrainingSetup, build_training, train_simclr

TINY = {
    "trainer": {"max_epochs": 1},
    "loader": {"batch_size": 8, "num_workers": 0},
    "collate": {"input_size": 32},
}


def test_one_epoch_yields_a_checkpoint_that_loads_and_embeds(
    trained_checkpoint: tuple[str, Any, list], image_dir: tuple[str, list[str]]
) -> None:
    path, summary, seen = trained_checkpoint
    assert summary.epochs == 1 and summary.device == "cpu" and summary.checkpoint == path
    assert np.isfinite(summary.final_loss) and summary.images_per_s > 0
    assert seen == summary.history and set(seen[0]) == {"epoch", "loss", "images_per_s"}
    ckpt = read_checkpoint(path)
    assert ckpt.meta["model"] == "resnet-18" and ckpt.meta["num_ftrs"] == 32
    root, names = image_dir
    model = zoo.create("resnet-18", checkpoint=path)
    emb = embed_files(model, zoo.spec("resnet-18", num_ftrs=32), root, names, input_size=32)
    assert emb.shape == (32, 32) and np.isfinite(emb).all()


def _view(setup: TrainingSetup) -> list[Any]:
    return setup.transform.transforms[0].transform.transforms


def _find(setup: TrainingSetup, kind: type | str) -> Any:
    # By class name: lightly builds from torchvision.transforms.v2 or v1 depending on version.
    name = kind if isinstance(kind, str) else kind.__name__
    return next(t for t in _view(setup) if type(t).__name__ == name)


def _jitter(setup: TrainingSetup) -> Any:
    return _find(setup, "RandomApply").transforms[0]


def _optimizer(setup: TrainingSetup) -> dict[str, Any]:
    optimizers, _ = setup.module.configure_optimizers()
    return optimizers[0].param_groups[0]


def _first_weight(setup: TrainingSetup) -> torch.Tensor:
    return setup.module.model.backbone.conv1.weight.detach().clone()


def _cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


# For each key: a value other than its default, and how to see it in the built objects.
PROBES: dict[str, tuple[Any, Any]] = {
    "seed": (7, None),  # checked separately below
    "checkpoint_callback.save_last": (False, lambda s: s.recorder.save_last is False),
    "loader.batch_size": (4, lambda s: s.dataloader.batch_size == 4),
    "loader.shuffle": (False, lambda s: isinstance(s.dataloader.sampler, SequentialSampler)),
    "loader.num_workers": (1, lambda s: s.dataloader.num_workers == 1),
    "loader.drop_last": (False, lambda s: s.dataloader.drop_last is False),
    "model.name": ("resnet-34", lambda s: len(s.module.model.backbone.layer1) == 3),
    "model.out_dim": (24, lambda s: s.module.model(torch.randn(2, 3, 32, 32)).shape[1] == 24),
    "model.num_ftrs": (
        12,
        lambda s: s.module.model.backbone(torch.randn(2, 3, 32, 32)).shape[1] == 12,
    ),
    "model.width": (2, None),  # refused, checked separately below
    "trainer.gpus": (
        2,
        lambda s: (
            s.trainer_kwargs["accelerator"] == "gpu"
            and s.trainer_kwargs["devices"] == 2
            and s.device == "cuda"
        ),
    ),
    "trainer.max_epochs": (
        3,
        lambda s: s.trainer_kwargs["max_epochs"] == 3 and s.module.max_epochs == 3,
    ),
    "trainer.precision": (16, lambda s: s.trainer_kwargs["precision"] == "16-mixed"),
    "criterion.temperature": (0.3, lambda s: s.module.criterion.temperature == 0.3),
    "optimizer.lr": (0.25, lambda s: _optimizer(s)["lr"] == 0.25),
    "optimizer.weight_decay": (0.01, lambda s: _optimizer(s)["weight_decay"] == 0.01),
    "collate.input_size": (40, lambda s: _find(s, "RandomResizedCrop").size == (40, 40)),
    "collate.min_scale": (0.4, lambda s: _find(s, "RandomResizedCrop").scale == (0.4, 1.0)),
    "collate.cj_prob": (
        0.3,
        lambda s: _find(s, "RandomApply").p == 0.3,
    ),
    "collate.cj_bright": (0.1, lambda s: _jitter(s).brightness == pytest.approx((0.9, 1.1))),
    "collate.cj_contrast": (0.2, lambda s: _jitter(s).contrast == pytest.approx((0.8, 1.2))),
    "collate.cj_sat": (0.3, lambda s: _jitter(s).saturation == pytest.approx((0.7, 1.3))),
    "collate.cj_hue": (0.1, lambda s: _jitter(s).hue == pytest.approx((-0.1, 0.1))),
    "collate.random_gray_scale": (0.6, lambda s: _find(s, "RandomGrayscale").p == 0.6),
    "collate.gaussian_blur": (0.9, lambda s: _find(s, GaussianBlur).prob == 0.9),
    "collate.sigmas": ((0.5, 1.5), lambda s: tuple(_find(s, GaussianBlur).sigmas) == (0.5, 1.5)),
    "collate.vf_prob": (0.7, lambda s: _find(s, "RandomVerticalFlip").p == 0.7),
    "collate.hf_prob": (0.1, lambda s: _find(s, "RandomHorizontalFlip").p == 0.1),
    "collate.rr_prob": (0.4, lambda s: _find(s, RandomRotate).prob == 0.4),
    "collate.rr_degrees": (
        15.0,
        lambda s: any(
            isinstance(t, RandomRotateDegrees)
            and list(t.transform.transforms[0].degrees) == [-15.0, 15.0]
            for t in _view(s)
        ),
    ),
}
# Lightly deprecated kernel_size in favour of sigmas: accepted, and on purpose unused.
UNUSED = {"collate.kernel_size"}


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= _leaf_keys(ann, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def test_every_key_has_a_probe() -> None:
    # A key added to LightlyConfig without reaching the training fails here.
    assert _leaf_keys(LightlyConfig) == set(PROBES) | UNUSED


def _build(image_dir: tuple[str, list[str]], tmp_path: Path, key: str, value: Any) -> TrainingSetup:
    data: dict[str, Any] = {}
    node = data
    *groups, leaf = key.split(".")
    for g in groups:
        node = node.setdefault(g, {})
    node[leaf] = value
    cfg = LightlyConfig.model_validate(data)
    root, names = image_dir
    return build_training(cfg, root, names, str(tmp_path / "c.ckpt"))


@pytest.mark.parametrize("key", sorted(k for k, (_, probe) in PROBES.items() if probe))
def test_key_reaches_training(
    key: str, image_dir: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value, probe = PROBES[key]
    if key == "trainer.gpus" or key == "trainer.precision":
        _cuda(monkeypatch)
    default = _build(image_dir, tmp_path, "seed", 1)
    changed = _build(image_dir, tmp_path, key, value)
    assert probe(changed), f"{key}={value!r} did not reach the training objects"
    if key != "trainer.gpus":  # on this test's fake 2-GPU machine the default also uses a GPU
        assert not probe(default), f"probe for {key} also holds for the default"


def test_seed_reaches_training(image_dir: tuple[str, list[str]], tmp_path: Path) -> None:
    a = _first_weight(_build(image_dir, tmp_path, "seed", 7))
    b = _first_weight(_build(image_dir, tmp_path, "seed", 7))
    c = _first_weight(_build(image_dir, tmp_path, "seed", 8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_width_is_refused_clearly(image_dir: tuple[str, list[str]], tmp_path: Path) -> None:
    with pytest.raises(NotSupportedYetError, match=r"lightly_config.model.width"):
        _build(image_dir, tmp_path, "model.width", 2)


def test_cpu_fallback_and_bf16(image_dir: tuple[str, list[str]], tmp_path: Path) -> None:
    s = _build(image_dir, tmp_path, "trainer.precision", 16)
    if not torch.cuda.is_available():
        assert s.trainer_kwargs["accelerator"] == "cpu" and s.trainer_kwargs["precision"] == (
            "bf16-mixed"
        )
    s = _build(image_dir, tmp_path, "trainer.gpus", 0)
    assert s.trainer_kwargs["accelerator"] == "cpu" and s.device == "cpu"


def test_num_workers_minus_one_is_all_cores(
    image_dir: tuple[str, list[str]], tmp_path: Path
) -> None:
    from thresher.models.inference import cpu_count

    assert _build(image_dir, tmp_path, "loader.num_workers", -1).dataloader.num_workers == (
        cpu_count()
    )
    assert isinstance(
        _build(image_dir, tmp_path, "loader.shuffle", True).dataloader.sampler, RandomSampler
    )


def test_resume_continues_from_the_checkpoint_weights(
    trained_checkpoint: tuple[str, Any, list], image_dir: tuple[str, list[str]], tmp_path: Path
) -> None:
    path, _, _ = trained_checkpoint
    root, names = image_dir
    cfg = LightlyConfig.model_validate({**TINY, "optimizer": {"lr": 1e-4}, "seed": 5})
    start = read_checkpoint(path)
    setup = build_training(cfg, root, names, str(tmp_path / "x.ckpt"), init_checkpoint=path)
    for k, v in setup.module.model.backbone.state_dict().items():
        assert torch.equal(v, start.backbone[k]), k
    for k, v in setup.module.model.projection_head.state_dict().items():
        assert torch.equal(v, start.projection_head[k]), k
    # One more epoch with a tiny lr stays near the start; a fresh model is far from it.
    out = str(tmp_path / "resumed.ckpt")
    train_simclr(cfg, root, names, out, init_checkpoint=path)
    after = read_checkpoint(out).backbone["layer4.1.conv2.weight"]
    before = start.backbone["layer4.1.conv2.weight"]
    fresh = _first_weight(build_training(cfg, root, names, out))
    assert (after - before).norm() < 0.01 * before.norm()
    assert not torch.equal(fresh, start.backbone["conv1.weight"])


def test_resume_with_other_heads_is_a_clear_error(
    trained_checkpoint: tuple[str, Any, list], image_dir: tuple[str, list[str]], tmp_path: Path
) -> None:
    path, _, _ = trained_checkpoint
    root, names = image_dir
    cfg = LightlyConfig.model_validate({**TINY, "model": {"out_dim": 64}})
    with pytest.raises(ConfigError, match=r"projection head weight shapes differ"):
        build_training(cfg, root, names, str(tmp_path / "x.ckpt"), init_checkpoint=path)
    cfg = LightlyConfig.model_validate({**TINY, "model": {"name": "resnet-50"}})
    with pytest.raises(ConfigError, match=r"Set lightly_config.model.name to 'resnet-18'"):
        build_training(cfg, root, names, str(tmp_path / "x.ckpt"), init_checkpoint=path)


def test_bad_inputs(image_dir: tuple[str, list[str]], tmp_path: Path) -> None:
    root, names = image_dir
    out = str(tmp_path / "x.ckpt")
    with pytest.raises(ConfigError, match=r"cannot be trained"):
        build_training(
            LightlyConfig.model_validate({"model": {"name": "efficientnet-lite0"}}),
            root,
            names,
            out,
        )
    with pytest.raises(InputError, match=r"fewer than lightly_config.loader.batch_size=16"):
        build_training(LightlyConfig.model_validate({}), root, names[:5], out)
    with pytest.raises(InputError, match=r"needs images"):
        build_training(LightlyConfig.model_validate({}), root, [], out)


def test_corrupt_training_image_is_named(tmp_path: Path, image_dir: tuple[str, list[str]]) -> None:
    root, names = image_dir
    bad = Path(root, "broken.png")
    bad.write_bytes(b"broken")
    try:
        cfg = LightlyConfig.model_validate({**TINY, "loader": {"batch_size": 3, "num_workers": 0}})
        with pytest.raises(CorruptMediaError, match=r"broken.png"):
            train_simclr(cfg, root, [*names[:2], "broken.png"], str(tmp_path / "x.ckpt"))
    finally:
        bad.unlink()


class _FakeTrainer:
    def __init__(self, epoch: int, loss: float) -> None:
        self.current_epoch = epoch
        self.callback_metrics = {"loss": torch.tensor(loss)}
        self.global_step = epoch
        self.is_global_zero = True


class _FakeModule:
    def __init__(self) -> None:
        self.model = torch.nn.Module()
        self.model.backbone = torch.nn.Linear(2, 2)
        self.model.projection_head = torch.nn.Linear(2, 2)


@pytest.mark.parametrize(("save_last", "kept"), [(True, 3), (False, 2)])
def test_save_last_chooses_the_weights(save_last: bool, kept: int, tmp_path: Path) -> None:
    # Losses 2.0, 1.0, 1.5: the last epoch is 3, the best is 2.
    out = str(tmp_path / "c.ckpt")
    rec = EpochRecorder(out, save_last=save_last, meta={})
    module = _FakeModule()
    for epoch, loss in enumerate([2.0, 1.0, 1.5]):
        rec.on_train_epoch_start(None, module)  # type: ignore[arg-type]
        rec.on_train_epoch_end(_FakeTrainer(epoch, loss), module)  # type: ignore[arg-type]
    assert torch.load(out, weights_only=True)["epoch"] == kept


def test_diverging_loss_says_what_to_change(tmp_path: Path) -> None:
    rec = EpochRecorder(str(tmp_path / "c.ckpt"), save_last=True, meta={})
    rec.on_train_epoch_start(None, _FakeModule())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"lightly_config.optimizer.lr"):
        rec.on_train_epoch_end(_FakeTrainer(0, float("nan")), _FakeModule())  # type: ignore[arg-type]
