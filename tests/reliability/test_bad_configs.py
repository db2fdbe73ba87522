"""Every config key, given a wrong type or an out-of-range value, and impossible combinations.

The keys are read off the pydantic models themselves (``model_fields``, recursively, every
member of the strategy and input unions), so a key added tomorrow is attacked tomorrow without
touching this file. Each bad config must give ONE message that names the key by its full dotted
path and says what to do; the real ``thresher run`` must exit 2 with that paragraph and no
traceback, and write nothing: no LIGHTLY folder (so no cache either), INPUT untouched.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

import annotated_types as at
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from thresher.cli import main
from thresher.config import LightlyConfig, SelectionConfig, WorkerConfig, load_configs
from thresher.config.selection import (
    AutoTask,
    SelectionInput,
    SelectionStrategy,
    StrategyEntry,
)
from thresher.errors import ConfigError
from thresher.examples import make_example_dataset

ROOTS: dict[str, type[BaseModel]] = {
    "worker_config": WorkerConfig,
    "selection_config": SelectionConfig,
    "lightly_config": LightlyConfig,
}

# A valid config around each member of the tagged unions, so that its keys can be attacked.
# Adding an input, strategy or auto task type without a row here fails
# test_every_tagged_type_has_a_baseline.
_EMB = {"type": "EMBEDDINGS"}
_RANDOM = {"type": "RANDOM"}
INPUT_BASELINES: dict[str, dict[str, Any]] = {
    "EMBEDDINGS": {"input": _EMB, "strategy": {"type": "DIVERSITY"}},
    "SCORES": {
        "input": {"type": "SCORES", "task": "cls", "score": "uncertainty_margin"},
        "strategy": {"type": "WEIGHTS"},
    },
    "PREDICTIONS": {
        "input": {"type": "PREDICTIONS", "task": "det", "name": "CATEGORY_COUNT"},
        "strategy": {"type": "WEIGHTS"},
    },
    "METADATA": {"input": {"type": "METADATA", "key": "weather"}, "strategy": {"type": "WEIGHTS"}},
    "RANDOM": {"input": _RANDOM, "strategy": {"type": "WEIGHTS"}},
}
STRATEGY_BASELINES: dict[str, dict[str, Any]] = {
    "DIVERSITY": {"input": _EMB, "strategy": {"type": "DIVERSITY"}},
    "WEIGHTS": {"input": _RANDOM, "strategy": {"type": "WEIGHTS"}},
    "THRESHOLD": {
        "input": _RANDOM,
        "strategy": {"type": "THRESHOLD", "threshold": 0.5, "operation": "BIGGER"},
    },
    "BALANCE": {
        "input": {"type": "METADATA", "key": "weather"},
        "strategy": {"type": "BALANCE", "target": {"rain": 0.5}},
    },
    "SIMILARITY": {
        "input": {"type": "EMBEDDINGS", "tag_name": "night"},
        "strategy": {"type": "SIMILARITY"},
    },
    "TYPICALITY": {"input": _EMB, "strategy": {"type": "TYPICALITY"}},
    "COVERAGE": {"input": _EMB, "strategy": {"type": "COVERAGE"}},
}
AUTO_TASK_BASELINES: dict[str, dict[str, Any]] = {
    "TILING": {"type": "TILING", "name": "tiles", "num_rows": 2, "num_cols": 2},
    "CROP": {"type": "CROP", "name": "crops", "bboxs": [[0.1, 0.1, 0.5, 0.5]]},
}

# Values the field types cannot say: rules written in validators. Each is out of range for
# its key; the key must still be named and the message must say what is accepted.
VALIDATOR_RULES: dict[str, list[Any]] = {
    "worker_config.n_example_images": [3],
    "worker_config.output_image_format": ["gif"],
    "worker_config.run_directory": ["../elsewhere", "a/b"],
    "worker_config.stopping_condition.n_samples": [0, 2.5],
    "selection_config.n_samples": [0, -2],
    "selection_config.proportion_samples": [0, 1.5, -0.1],
    "selection_config.strategies[0].input.categories": [[], ["car", "car"]],
    "selection_config.strategies[0].input.key": ["lightly.nonsense"],
    "selection_config.strategies[0].strategy.threshold": [math.inf],
    "selection_config.strategies[0].strategy.target": [{"a": 0.7, "b": 0.7}],
    "lightly_config.trainer.precision": [8, "64"],
    "lightly_config.collate.cj_prob": [1.5],
    "lightly_config.collate.random_gray_scale": [-0.1],
    "lightly_config.collate.gaussian_blur": [2],
    "lightly_config.collate.vf_prob": [1.01],
    "lightly_config.collate.hf_prob": [-1],
    "lightly_config.collate.rr_prob": [7],
    "lightly_config.collate.sigmas": [[2, 1], [0, 1], [1]],
    "lightly_config.collate.rr_degrees": [[1, 2, 3]],
}

FIX = re.compile(
    r"\bmust\b|\bset\b|\badd\b|\bremove\b|\buse\b|\bkeep\b|\bdrop\b|one of|Did you mean|"
    r"Valid keys|not supported yet: \S+ \(",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Case:
    """One bad config: the three dicts, and what the message must name."""

    id: str
    configs: dict[str, Any]
    names: tuple[str, ...]  # every one must appear in the message
    cli_names: tuple[str, ...] = ()  # where the command names it otherwise (a flag)

    def args(self) -> list[str]:
        """The configs as ``thresher run`` flags."""
        out: list[str] = []
        for root, flag in (
            ("worker_config", "--worker-config"),
            ("selection_config", "--selection-config"),
            ("lightly_config", "--lightly-config"),
        ):
            if self.configs.get(root) is not None:
                out += [flag, json.dumps(self.configs[root])]
        return out


# ---------------------------------------------------------------------- walking the models


def _unwrap(annotation: Any) -> Any:
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
            annotation = args[0]
            continue
        return annotation


def _constraints(field: FieldInfo) -> list[Any]:
    """The annotated_types constraints of a field, also those inside ``Annotated[...] | None``."""
    found = list(field.metadata)
    stack = [field.annotation]
    while stack:
        a = stack.pop()
        if get_origin(a) is Annotated:
            found += list(get_args(a)[1:])
            stack.append(get_args(a)[0])
        elif get_origin(a) in (Union, UnionType):
            stack += [x for x in get_args(a) if x is not type(None)]
    return found


def _is_model(a: Any) -> bool:
    return isinstance(a, type) and issubclass(a, BaseModel)


def _tagged(a: Any) -> bool:
    return _is_model(a) and "type" in a.model_fields


def _tag(cls: type[BaseModel]) -> str:
    return str(get_args(cls.model_fields["type"].annotation)[0])


def walk(model: type[BaseModel], path: str) -> Iterator[tuple[str, FieldInfo]]:
    """``(dotted path, field)`` for every key of ``model`` and of the models below it.

    Members of tagged unions are not entered here: :func:`all_keys` walks each one inside its
    own baseline config.
    """
    for name, field in model.model_fields.items():
        key = f"{path}.{name}"
        yield key, field
        inner = _unwrap(field.annotation)
        if get_origin(inner) is list:
            item = _unwrap(get_args(inner)[0])
            if _is_model(item) and not _tagged(item):
                yield from walk(item, f"{key}[0]")
        elif _is_model(inner) and not _tagged(inner):
            yield from walk(inner, key)


def _members(union: Any) -> list[type[BaseModel]]:
    return [m for m in get_args(get_args(union)[0]) if _is_model(m)]


def all_keys() -> Iterator[tuple[str, FieldInfo, dict[str, Any]]]:
    """Every key of the three configs with a valid config to set it in."""
    base: dict[str, Any] = {"selection_config": {"n_samples": 5}}
    for root, model in ROOTS.items():
        for key, field in walk(model, root):
            if key == "selection_config.strategies[0].input" or key.startswith(
                "selection_config.strategies[0].strategy"
            ):
                continue  # the union members come below, each in its baseline
            yield key, field, base
    for unions, baselines, slot in (
        (SelectionInput, INPUT_BASELINES, "input"),
        (SelectionStrategy, STRATEGY_BASELINES, "strategy"),
    ):
        for cls in _members(unions):
            cfg = {"selection_config": {"n_samples": 5, "strategies": [baselines[_tag(cls)]]}}
            for key, field in walk(cls, f"selection_config.strategies[0].{slot}"):
                yield key, field, cfg
    for cls in _members(AutoTask):
        cfg = {"selection_config": {"n_samples": 5, "auto_tasks": [AUTO_TASK_BASELINES[_tag(cls)]]}}
        for key, field in walk(cls, "selection_config.auto_tasks[0]"):
            yield key, field, cfg


def wrong_types(field: FieldInfo) -> list[Any]:
    """Values of the wrong type for ``field`` (none for ``Any``)."""
    a = _unwrap(field.annotation)
    members = [_unwrap(m) for m in get_args(a)] if get_origin(a) in (Union, UnionType) else [a]
    if Any in members:
        return []
    if a is bool:
        return ["maybe", 2]
    if a in (int, float):
        return ["seven", True]  # true is not the count 1
    if a is str:
        return [12345]
    if get_origin(a) is Literal:
        return [12345]
    if _is_model(a):
        return [7]
    if get_origin(a) in (list, dict, tuple):
        return ["x"]
    if str not in members:
        return ["x"]
    return [{"a": 1}]


def out_of_range(key: str, field: FieldInfo) -> list[Any]:
    """Values of the right type outside the declared range (bounds, choices, lengths)."""
    out: list[Any] = list(VALIDATOR_RULES.get(key, []))
    a = _unwrap(field.annotation)
    if get_origin(a) is Literal and key.rsplit(".", 1)[-1] != "type":
        out.append("NOT_A_CHOICE")
    for c in _constraints(field):
        if isinstance(c, at.Ge):
            out.append(cast(Any, c.ge) - 1)
        elif isinstance(c, at.Gt):
            out.append(c.gt)
        elif isinstance(c, at.Le):
            out.append(cast(Any, c.le) + 1)
        elif isinstance(c, at.Lt):
            out.append(c.lt)
        elif isinstance(c, at.MinLen) and c.min_length > 0:
            out.append([] if get_origin(a) is list else "x" * (c.min_length - 1))
    return out


def _set(configs: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``configs`` with ``key`` (``a.b[0].c``) set to ``value``."""
    out: dict[str, Any] = json.loads(json.dumps(configs))
    parts = [p for p in re.split(r"\.|(\[\d+\])", key) if p]
    node: Any = out
    for part, nxt in itertools.pairwise(parts):
        if part.startswith("["):
            node = node[int(part[1:-1])]
        else:
            if node.get(part) is None:
                node[part] = [{}] if nxt.startswith("[") else {}
            node = node[part]
    node[parts[-1]] = value
    return out


def _cases() -> list[Case]:
    cases: list[Case] = []
    for key, field, base in all_keys():
        parent, name = key.rsplit(".", 1)
        # A wrong 'type' is reported on the object it selects the class of.
        names = (parent, "'type'") if name == "type" else (key,)
        for kind, values in (
            ("type", wrong_types(field)),
            ("range", out_of_range(key, field)),
        ):
            for i, value in enumerate(values):
                cases.append(Case(f"{key}-{kind}{i}", _set(base, key, value), names))
    return cases


CASES = _cases()

# Keys and types the rest of the config may not contradict.
_SEL = "selection_config"
COMBINATIONS: list[Case] = [
    Case(
        "n_samples-and-proportion",
        {_SEL: {"n_samples": 5, "proportion_samples": 0.5}},
        ("n_samples", "proportion_samples"),
    ),
    Case("no-size", {_SEL: {"strategies": [INPUT_BASELINES["RANDOM"]]}}, ("n_samples",)),
    Case("no-selection-config", {}, ("selection_config",)),
    Case(
        "threshold-on-diversity",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {"input": _EMB, "strategy": {"type": "DIVERSITY", "threshold": 0.5}}
                ],
            }
        },
        ("selection_config.strategies[0].strategy", "'threshold'", "DIVERSITY"),
    ),
    Case(
        "similarity-without-query",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [{"input": _EMB, "strategy": {"type": "SIMILARITY"}}],
            }
        },
        ("selection_config.strategies[0]", "SIMILARITY", "tag_name"),
    ),
    Case(
        "tag-and-query-file",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {
                        "input": {
                            "type": "EMBEDDINGS",
                            "tag_name": "night",
                            "query_embeddings": "q.csv",
                        },
                        "strategy": {"type": "SIMILARITY"},
                    }
                ],
            }
        },
        ("selection_config.strategies[0].input", "tag_name", "query_embeddings"),
    ),
    Case(
        "predictions-without-task",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {
                        "input": {"type": "PREDICTIONS", "name": "CATEGORY_COUNT"},
                        "strategy": {"type": "WEIGHTS"},
                    }
                ],
            }
        },
        ("selection_config.strategies[0].input.task", "PREDICTIONS"),
    ),
    Case(
        "scores-without-score",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {"input": {"type": "SCORES", "task": "t"}, "strategy": {"type": "WEIGHTS"}}
                ],
            }
        },
        ("selection_config.strategies[0].input.score",),
    ),
    Case(
        "threshold-without-threshold",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {"input": _RANDOM, "strategy": {"type": "THRESHOLD", "operation": "BIGGER"}}
                ],
            }
        },
        ("selection_config.strategies[0].strategy.threshold",),
    ),
    Case(
        "diversity-on-scores",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {"input": INPUT_BASELINES["SCORES"]["input"], "strategy": {"type": "DIVERSITY"}}
                ],
            }
        },
        ("selection_config.strategies[0]", "DIVERSITY", "WEIGHTS"),
    ),
    Case(
        "weights-on-embeddings",
        {_SEL: {"n_samples": 5, "strategies": [{"input": _EMB, "strategy": {"type": "WEIGHTS"}}]}},
        ("selection_config.strategies[0]", "WEIGHTS", "DIVERSITY"),
    ),
    Case(
        "balance-on-random",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {"input": _RANDOM, "strategy": {"type": "BALANCE", "distribution": "UNIFORM"}}
                ],
            }
        },
        ("selection_config.strategies[0]", "BALANCE"),
    ),
    Case(
        "balance-on-category-count",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {
                        "input": INPUT_BASELINES["PREDICTIONS"]["input"],
                        "strategy": {"type": "BALANCE", "distribution": "UNIFORM"},
                    }
                ],
            }
        },
        ("selection_config.strategies[0]", "CATEGORY_COUNT"),
    ),
    Case(
        "weights-on-class-distribution",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {
                        "input": {
                            "type": "PREDICTIONS",
                            "task": "det",
                            "name": "CLASS_DISTRIBUTION",
                        },
                        "strategy": {"type": "WEIGHTS"},
                    }
                ],
            }
        },
        ("selection_config.strategies[0]", "CLASS_DISTRIBUTION", "BALANCE"),
    ),
    Case(
        "balance-target-without-target",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {"input": {"type": "METADATA", "key": "w"}, "strategy": {"type": "BALANCE"}}
                ],
            }
        },
        ("selection_config.strategies[0].strategy", "target"),
    ),
    Case(
        "balance-uniform-with-target",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {
                        "input": {"type": "METADATA", "key": "w"},
                        "strategy": {
                            "type": "BALANCE",
                            "distribution": "UNIFORM",
                            "target": {"a": 1},
                        },
                    }
                ],
            }
        },
        ("selection_config.strategies[0].strategy", "target", "UNIFORM"),
    ),
    Case(
        "target-range-empty",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {"input": _RANDOM, "strategy": {"type": "WEIGHTS", "target_range": {}}}
                ],
            }
        },
        ("selection_config.strategies[0].strategy.target_range", "min_sum"),
    ),
    Case(
        "target-range-reversed",
        {
            _SEL: {
                "n_samples": 5,
                "strategies": [
                    {
                        "input": _RANDOM,
                        "strategy": {
                            "type": "WEIGHTS",
                            "target_range": {"min_sum": 5, "max_sum": 1},
                        },
                    }
                ],
            }
        },
        ("selection_config.strategies[0].strategy.target_range", "min_sum", "max_sum"),
    ),
    Case(
        "object-level-training",
        {"worker_config": {"training": {"task_name": "det"}}, _SEL: {"n_samples": 5}},
        ("worker_config.training.task_name",),
    ),
    Case(
        "training-with-embeddings",
        {"worker_config": {"enable_training": True, "embeddings": "e.csv"}, _SEL: {"n_samples": 5}},
        ("worker_config.enable_training", "worker_config.embeddings"),
    ),
    Case(
        "checkpoint-and-run-id",
        {
            "worker_config": {"checkpoint": "a.ckpt", "checkpoint_run_id": "r1"},
            _SEL: {"n_samples": 5},
        },
        ("worker_config.checkpoint", "worker_config.checkpoint_run_id"),
    ),
    Case(
        "embeddings-and-checkpoint",
        {"worker_config": {"embeddings": "e.csv", "checkpoint": "a.ckpt"}, _SEL: {"n_samples": 5}},
        ("worker_config.embeddings", "worker_config.checkpoint"),
    ),
    Case(
        "training-a-pretrained-model",
        {
            "worker_config": {"enable_training": True},
            "lightly_config": {"model": {"name": "efficientnet-lite0"}},
            _SEL: {"n_samples": 5},
        },
        ("lightly_config.model.name", "worker_config.enable_training"),
    ),
    Case(
        "legacy-and-selection",
        {"worker_config": {"stopping_condition": {"n_samples": 5}}, _SEL: {"n_samples": 5}},
        ("worker_config.stopping_condition", "selection_config"),
    ),
    Case(
        "legacy-without-count",
        {"worker_config": {"method": "coreset"}},
        ("worker_config.stopping_condition.n_samples",),
    ),
    Case(
        "not-supported-yet",
        {"worker_config": {"append_weak_labels": True}, _SEL: {"n_samples": 5}},
        ("worker_config.append_weak_labels",),
    ),
    Case(
        "config-not-a-mapping",
        {"lightly_config": [1, 2], _SEL: {"n_samples": 5}},
        ("lightly_config",),
        ("--lightly-config",),
    ),
]


def _check_message(message: str, case: Case, names: tuple[str, ...] = ()) -> None:
    for name in names or case.names:
        assert name in message, f"{case.id}: {name!r} not named in: {message}"
    assert FIX.search(message), f"{case.id}: no fix in: {message}"
    assert "Traceback" not in message and "pydantic" not in message.lower(), message
    assert "errors.pydantic.dev" not in message, message


def test_the_walk_reaches_every_kind_of_key() -> None:
    """The walk enters nested models, list items and every union member (spot checks)."""
    keys = {k for k, _, _ in all_keys()}
    for key in (
        "worker_config.corruptness_check.corruption_threshold",
        "worker_config.datasource.input_expiration.handling_strategy",
        "worker_config.stopping_condition.min_distance",
        "selection_config.strategies[0].input.tag_name",
        "selection_config.strategies[0].strategy.target_range.max_sum",
        "selection_config.strategies[0].strategy.kernel_width",
        "selection_config.auto_tasks[0].bboxs",
        "lightly_config.collate.sigmas",
        "lightly_config.checkpoint_callback.save_last",
    ):
        assert key in keys, key
    assert len(CASES) > 250


def test_every_tagged_type_has_a_baseline() -> None:
    """A new input, strategy or auto task type must be attacked too: it needs a baseline."""
    for union, table in (
        (SelectionInput, INPUT_BASELINES),
        (SelectionStrategy, STRATEGY_BASELINES),
        (AutoTask, AUTO_TASK_BASELINES),
    ):
        assert {_tag(c) for c in _members(union)} == set(table)
    for entry in [*INPUT_BASELINES.values(), *STRATEGY_BASELINES.values()]:
        StrategyEntry.model_validate(entry)  # each baseline is itself valid


def test_every_validator_rule_names_a_real_key() -> None:
    keys = {k for k, _, _ in all_keys()}
    assert set(VALIDATOR_RULES) <= keys, set(VALIDATOR_RULES) - keys


@pytest.mark.parametrize("case", CASES + COMBINATIONS, ids=lambda c: c.id)
def test_bad_config_gives_one_message_naming_the_key_and_the_fix(case: Case) -> None:
    with pytest.raises(ConfigError) as info:
        load_configs(**case.configs)
    message = str(info.value)
    assert "\n" not in message, f"{case.id}: more than one message:\n{message}"
    _check_message(message, case)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-configs") / "images"
    make_example_dataset(root, n_clusters=1, per_cluster=3, n_duplicates=0)
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder below ``root`` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("case", CASES + COMBINATIONS, ids=lambda c: c.id)
def test_thresher_run_exits_2_and_writes_nothing(
    case: Case, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(images)
    lightly = tmp_path / "out"
    code = main(["run", str(images), "--lightly", str(lightly), *case.args()])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("thresher: error:") and err.count("thresher: error:") == 1, err
    _check_message(" ".join(err.split()), case, case.cli_names)
    assert not lightly.exists(), "a bad config created the LIGHTLY location"
    assert not (images.parent / "images-lightly").exists()
    assert snapshot(images) == before, "INPUT changed"


@pytest.mark.parametrize("case", CASES[::10] + COMBINATIONS[:-1], ids=lambda c: c.id)
def test_the_same_configs_from_a_config_file(
    case: Case, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--config FILE``: the same key is named (JSON is YAML, so the file is the dict)."""
    config = tmp_path / "thresher.yaml"
    config.write_text(json.dumps(case.configs).replace("Infinity", ".inf"))
    lightly = tmp_path / "out"
    code = main(["run", str(images), "--lightly", str(lightly), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2, err
    _check_message(" ".join(err.split()), case)
    assert not lightly.exists()


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in CASES + COMBINATIONS
        if c.id
        in {
            "selection_config.n_samples-type1",  # n_samples: true
            "selection_config.strategies[0].strategy.threshold-range0",  # Infinity
            "threshold-on-diversity",
        }
    ],
    ids=lambda c: c.id,
)
def test_the_real_command_in_a_fresh_process(case: Case, images: Path, tmp_path: Path) -> None:
    """The installed entry point: exit status 2, one paragraph on stderr, nothing written."""
    before = snapshot(images)
    lightly = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "thresher",
            "run",
            str(images),
            "--lightly",
            str(lightly),
            *case.args(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, THRESHER_PROGRESS="0"),
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("thresher: error:"), proc.stderr
    assert proc.stderr.count("thresher: error:") == 1, proc.stderr
    _check_message(" ".join(proc.stderr.split()), case)
    assert proc.stdout == ""
    assert not lightly.exists()
    assert snapshot(images) == before
