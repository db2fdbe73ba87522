"""Worker configs: the three config dicts of a run, validated when they arrive.

Two request shapes are accepted: ours (``DockerWorkerConfigV3Create``, snake_case keys) and
the one Lightly's client posts to ``/v1/docker/worker/config/vX`` (``{"version": "V4",
"config": {"workerType", "docker", "lightly", "selection"}}`` with camelCase keys, which are
turned back into the snake_case keys the configs use).
"""

from __future__ import annotations

import re
from typing import Any

from thresher.errors import ConfigError
from thresher.platform.access import require_owner
from thresher.platform.core import Platform
from thresher.platform.errors import Invalid
from thresher.platform.models import User, WorkerConfig
from thresher.wire import new_id, now_ms

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
#: Dicts whose keys are the user's data (class names...), not config keys: kept as they are.
_VERBATIM = frozenset({"target"})


def snake_keys(value: Any) -> Any:
    """``value`` with every dict key turned from camelCase into snake_case (recursively)."""
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, v in value.items():
        name = _CAMEL.sub(r"_\1", key).lower() if isinstance(key, str) else key
        out[name] = v if name in _VERBATIM else snake_keys(v)
    return out


def from_lightly(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(worker_config, lightly_config, selection_config)`` from Lightly's V4 ``config``."""
    return (
        snake_keys(config.get("docker") or {}),
        snake_keys(config.get("lightly") or {}),
        snake_keys(config.get("selection") or {}),
    )


def create(
    p: Platform,
    user: User,
    worker_config: dict[str, Any] | None,
    lightly_config: dict[str, Any] | None,
    selection_config: dict[str, Any] | None,
) -> str:
    """Validate the configs (``thresher.config.load_configs``) and store them.

    Raises:
        Invalid: the ConfigError's message (it names the key and what would be accepted).
    """
    from thresher.config import load_configs

    try:
        load_configs(worker_config or None, selection_config or None, lightly_config or None)
    except ConfigError as e:
        raise Invalid(str(e)) from e
    with p.session() as s:
        row = WorkerConfig(
            id=new_id(),
            user_id=user.id,
            worker_config=worker_config or {},
            lightly_config=lightly_config or {},
            selection_config=selection_config or {},
            created_at=now_ms(),
        )
        s.add(row)
    return row.id


def get(p: Platform, user: User, config_id: str) -> WorkerConfig:
    """A stored config (NotFound ``DOCKER_WORKER_CONFIG_UNKNOWN`` / Forbidden)."""
    with p.session() as s:
        return require_owner(
            s.get(WorkerConfig, config_id),
            user.id,
            "worker config",
            "DOCKER_WORKER_CONFIG_UNKNOWN",
            config_id,
        )
