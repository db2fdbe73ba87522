"""Cache keys for stage tasks: the stage's name, the code version and its (small) parameters.

Parameters are the upstream stages' summaries (which carry their content keys) and configs, so
the key is content-based. Prefect's INPUTS policy alone would collide across tasks (two stages
with equal inputs share a key); this key always starts with the stage name.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pydantic import BaseModel

from thresher.caching import code_version, digest


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return str(obj)


def stage_cache_key(stage: str) -> Any:
    """A ``cache_key_fn`` for the task of ``stage``."""

    def key_fn(context: Any, parameters: dict[str, Any]) -> str:
        blob = json.loads(json.dumps(parameters, default=_jsonable, sort_keys=True))
        return f"thresher-{stage}-{digest(code_version(), blob)}"

    return key_fn
