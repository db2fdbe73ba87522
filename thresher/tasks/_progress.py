"""Progress for tasks: a tqdm bar in the terminal and a progress artifact in the Prefect UI."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from thresher.progress import Advance, tqdm_progress

log = logging.getLogger("thresher.tasks")


@contextlib.contextmanager
def task_progress(desc: str, total: int, unit: str = "img") -> Iterator[Advance]:
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    artifact_id: Any = None
    try:
        artifact_id = create_progress_artifact(progress=0.0, description=f"{desc} ({total} {unit})")
    except Exception as e:  # the UI is a nicety: never fail a run because it is unreachable
        log.debug("no progress artifact: %s", e)
        artifact_id = None
    state = {"done": 0, "last": time.monotonic()}
    t0 = time.monotonic()

    def _update(pct: float) -> None:
        if artifact_id is None:
            return
        try:
            update_progress_artifact(artifact_id=artifact_id, progress=pct)
        except Exception as e:
            log.debug("progress artifact update failed: %s", e)

    with tqdm_progress(desc, total, unit) as bar:

        def advance(n: int) -> None:
            bar(n)
            state["done"] += n
            now = time.monotonic()
            if now - state["last"] > 2.0 and total:
                state["last"] = now
                _update(min(100.0, 100.0 * state["done"] / total))

        yield advance
    _update(100.0)
    dt = time.monotonic() - t0
    if total and dt > 0 and unit == "img":
        log.info(
            "%s: %d %s in %.1f s (%.1f %s/s)",
            desc,
            state["done"],
            unit,
            dt,
            state["done"] / dt,
            unit,
        )
