"""The three configs a run takes, validated once at the edge (CLI, flow parameter, client).

>>> cfg = load_configs(selection_config={"n_samples": 50})
>>> cfg.selection.n_samples
50
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thresher.config._base import closest, parse_config
from thresher.config.lightly import RESNET_NAMES, LightlyConfig
from thresher.config.not_yet import check_supported
from thresher.config.selection import SelectionConfig
from thresher.config.worker import WorkerConfig
from thresher.errors import ConfigError

__all__ = [
    "LightlyConfig",
    "RunConfig",
    "SelectionConfig",
    "WorkerConfig",
    "load_config_file",
    "load_configs",
]

CONFIG_KEYS = ("worker_config", "selection_config", "lightly_config")


@dataclass(frozen=True)
class RunConfig:
    """The validated configs of one run."""

    worker: WorkerConfig
    selection: SelectionConfig
    lightly: LightlyConfig

    def to_dict(self) -> dict[str, Any]:
        """The effective configs (defaults filled in), JSON-safe, as report.json shows them."""
        return {
            "worker_config": self.worker.model_dump(mode="json", exclude_none=True),
            "selection_config": self.selection.model_dump(mode="json", exclude_none=True),
            "lightly_config": self.lightly.model_dump(mode="json", exclude_none=True),
        }

    def user_dict(self) -> dict[str, Any]:
        """Only what the user set: the form to pass back in to reproduce a run."""
        return {
            "worker_config": self.worker.model_dump(mode="json", exclude_unset=True),
            "selection_config": self.selection.model_dump(mode="json", exclude_unset=True),
            "lightly_config": self.lightly.model_dump(mode="json", exclude_unset=True),
        }


def _legacy_selection(worker: WorkerConfig) -> dict[str, Any] | None:
    """Translate the 2022 keys ``method`` and ``stopping_condition`` into a selection_config."""
    if worker.stopping_condition is None and worker.method is None:
        return None
    stop = worker.stopping_condition
    n = stop.n_samples if stop else -1
    sel: dict[str, Any] = {}
    if n is None or n <= 0:
        raise ConfigError(
            "worker_config.stopping_condition.n_samples: set a count (e.g. 50) or a fraction "
            "(e.g. 0.1), or use selection_config={'n_samples': 50} instead."
        )
    if 0 < n < 1:
        sel["proportion_samples"] = float(n)
    else:
        if n != int(n):
            raise ConfigError(
                f"worker_config.stopping_condition.n_samples: {n} is neither a whole count "
                "nor a fraction in [0, 1]: use a count such as 50 or a fraction such as 0.1."
            )
        sel["n_samples"] = int(n)
    if worker.method == "random":
        sel["strategies"] = [
            {"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS"}},
        ]
    else:
        strategy: dict[str, Any] = {"type": "DIVERSITY"}
        if stop and stop.min_distance > 0:
            strategy["stopping_condition_minimum_distance"] = stop.min_distance
        sel["strategies"] = [{"input": {"type": "EMBEDDINGS"}, "strategy": strategy}]
    return sel


def _check_combinations(worker: WorkerConfig, lightly: LightlyConfig) -> None:
    """Refuse keys that are valid alone but contradict each other across configs."""
    if worker.enable_training and worker.embeddings:
        raise ConfigError(
            "worker_config.enable_training and worker_config.embeddings cannot be combined: "
            "precomputed embeddings replace the model. Drop one of them."
        )
    if worker.checkpoint and worker.checkpoint_run_id:
        raise ConfigError(
            "worker_config.checkpoint and worker_config.checkpoint_run_id are both set: keep one."
        )
    for key in ("checkpoint", "checkpoint_run_id"):
        if worker.embeddings and getattr(worker, key):
            raise ConfigError(
                f"worker_config.embeddings and worker_config.{key} cannot be combined: "
                "precomputed embeddings replace the model, so the checkpoint would be unused. "
                "Drop one of them."
            )
    if worker.enable_training and lightly.model.name not in RESNET_NAMES:
        raise ConfigError(
            f"lightly_config.model.name is '{lightly.model.name}', which is pretrained and "
            "cannot be trained (worker_config.enable_training is true). Training uses a ResNet: "
            f"{', '.join(RESNET_NAMES)}; or set enable_training to false."
        )


def check_sequence_length(n_samples: int | None, length: int) -> None:
    """Refuse an ``n_samples`` that is not a whole number of sequences of ``length`` frames.

    Raises:
        ConfigError: naming ``selection_config.n_samples`` and
            ``worker_config.selected_sequence_length`` and the nearest valid counts.
    """
    if length > 1 and n_samples is not None and n_samples != -1 and n_samples % length:
        lo, hi = (n_samples // length) * length, (n_samples // length + 1) * length
        valid = f"{lo} or {hi}" if lo else f"{hi}"
        raise ConfigError(
            f"selection_config.n_samples is {n_samples}, which is not a multiple of "
            f"worker_config.selected_sequence_length ({length}): a run selects whole "
            f"sequences. Set n_samples to a multiple of {length} (e.g. {valid})."
        )


def load_configs(
    worker_config: Any = None,
    selection_config: Any = None,
    lightly_config: Any = None,
) -> RunConfig:
    """Validate the three configs, as dicts or models.

    Args:
        worker_config: The ``worker_config`` dict (None = all defaults).
        selection_config: The ``selection_config`` dict. Required, unless the 2022 keys
            ``worker_config.stopping_condition``/``method`` say what to select.
        lightly_config: The ``lightly_config`` dict (None = all defaults).

    Raises:
        ConfigError: naming the wrong key and what would be accepted.
        NotSupportedYetError: a key thresher does not implement yet is set
            (:data:`thresher.config.not_yet.NOT_YET`).
    """
    worker = parse_config(WorkerConfig, worker_config, "worker_config")
    legacy = _legacy_selection(worker)
    if legacy is not None and selection_config:
        raise ConfigError(
            "worker_config.stopping_condition/method (2022 keys) and selection_config are both "
            "set. Keep only selection_config."
        )
    sel_data = selection_config if selection_config is not None else legacy
    if sel_data is None:
        raise ConfigError(
            "selection_config is required: set how many samples to select, e.g. "
            "{'n_samples': 50} or {'proportion_samples': 0.1} (CLI: --n-samples 50)."
        )
    selection = parse_config(SelectionConfig, sel_data, "selection_config")
    lightly = parse_config(LightlyConfig, lightly_config, "lightly_config")
    _check_combinations(worker, lightly)
    check_sequence_length(selection.n_samples, worker.selected_sequence_length)
    check_supported(worker, selection, lightly)
    return RunConfig(worker, selection, lightly)


def _parse_config_text(text: str, path: Path) -> Any:
    """Parse JSON (``.json``) or YAML; a syntax error names the file, line and column."""
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"{path}, line {e.lineno}, column {e.colno}: not valid JSON: {e.msg}. "
                "Fix the file there (a missing or extra comma, or a missing quote, is the "
                "usual cause)."
            ) from e
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "syntax error"
        raise ConfigError(
            f"{path}{where}: not valid YAML: {problem}. Fix the file there (indentation, a "
            "missing ':' or an unquoted special character is the usual cause)."
        ) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}.") from e


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file with the keys worker_config, selection_config, lightly_config.

    Args:
        path: A ``.json`` file, or YAML (any other suffix).

    Returns:
        The top-level mapping, to pass as ``load_configs(**data)``.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML/JSON (naming the line and
            column), or has an unknown top-level key.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"Cannot read the config file {p}: {e.strerror or e}.") from e
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{p}: not a text file (byte {e.start} is not UTF-8). Save the config as UTF-8."
        ) from e
    data = _parse_config_text(text, p)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{p}: the top level must be a mapping with keys {', '.join(CONFIG_KEYS)}."
        )
    for key in data:
        if key not in CONFIG_KEYS:
            guess = closest(str(key), list(CONFIG_KEYS))
            hint = f" Did you mean '{guess}'?" if guess else ""
            raise ConfigError(
                f"{p}: unknown top-level key '{key}'.{hint} Valid keys: {', '.join(CONFIG_KEYS)}."
            )
    return data
