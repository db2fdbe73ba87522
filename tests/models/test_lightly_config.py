"""lightly_config: keys, defaults (reference section 6) and messages."""

from __future__ import annotations

import logging

import pytest

from thresher.config._base import parse_config
from thresher.config.lightly import LightlyConfig
from thresher.errors import ConfigError

# Reference section 6, row by row.
DEFAULTS = {
    "seed": 1,
    "checkpoint_callback": {"save_last": True},
    "loader": {"batch_size": 16, "shuffle": True, "num_workers": -1, "drop_last": True},
    "model": {"name": "resnet-18", "out_dim": 128, "num_ftrs": 32, "width": 1},
    "trainer": {"gpus": 1, "max_epochs": 100, "precision": 32},
    "criterion": {"temperature": 0.5},
    "optimizer": {"lr": 1, "weight_decay": 1e-5},
    "collate": {
        "input_size": 64,
        "cj_prob": 0.8,
        "cj_bright": 0.7,
        "cj_contrast": 0.7,
        "cj_sat": 0.7,
        "cj_hue": 0.2,
        "min_scale": 0.15,
        "random_gray_scale": 0.2,
        "gaussian_blur": 0.5,
        "kernel_size": None,
        "sigmas": (0.2, 2),
        "vf_prob": 0,
        "hf_prob": 0.5,
        "rr_prob": 0,
        "rr_degrees": None,
    },
}


def parse(data: object) -> LightlyConfig:
    return parse_config(LightlyConfig, data, "lightly_config")


def test_defaults_are_the_reference_table() -> None:
    assert parse(None).model_dump() == DEFAULTS


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"loader": {"batchsize": 8}}, "lightly_config.loader: Unknown key 'batchsize'. Did you"),
        ({"colate": {}}, "Did you mean 'collate'?"),
        ({"model": {"name": "resnet-19"}}, "'resnet-18', 'resnet-34'"),
        ({"collate": {"hf_prob": 1.5}}, "lightly_config.collate.hf_prob: 'hf_prob' must be a"),
        ({"collate": {"sigmas": [2, 1]}}, "0 < min <= max"),
        ({"trainer": {"precision": 8}}, "must be 16 or 32"),
        ({"loader": {"num_workers": -2}}, "lightly_config.loader.num_workers"),
        ({"model": {"width": 0}}, "greater than 0"),
        ({"collate": {"input_size": 2}}, "greater than or equal to 8"),
    ],
)
def test_bad_values_name_the_key_and_what_is_accepted(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse(data)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "name",
    [f"resnet-{d}" for d in (18, 34, 50, 101, 152)] + [f"efficientnet-lite{i}" for i in range(3)],
)
def test_every_model_name_is_accepted(name: str) -> None:
    assert parse({"model": {"name": name}}).model.name == name


def test_kernel_size_is_accepted_as_deprecated(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="thresher.config"):
        cfg = parse({"collate": {"kernel_size": 0.1}})
    assert cfg.collate.kernel_size == 0.1
    assert "deprecated" in caplog.text


def test_explicit_keys_are_visible_in_fields_set() -> None:
    assert "name" not in parse({}).model.model_fields_set
    assert "name" in parse({"model": {"name": "resnet-18"}}).model.model_fields_set


def test_precision_as_string_and_rotation_forms() -> None:
    cfg = parse({"trainer": {"precision": "16"}, "collate": {"rr_degrees": [-10, 10]}})
    assert cfg.trainer.precision == 16
    assert cfg.collate.rr_degrees == (-10, 10)
    assert parse({"collate": {"rr_degrees": 15}}).collate.rr_degrees == 15
