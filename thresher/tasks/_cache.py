"""How a stage's summary becomes a Prefect state.

Caching is decided by the stages themselves (``thresher.caching``: content-addressed outputs in
the LIGHTLY location), so tasks have no Prefect cache policy. A stage served from its stored
output finishes in a Completed state named ``Cached``, so the Prefect UI shows it as before.
"""

from __future__ import annotations

from typing import Any, Protocol

from prefect.states import Completed, State


class StageSummary(Protocol):
    """What every stage returns: at least its cache status."""

    @property
    def cached(self) -> str:
        """``"cached"`` when served whole from the stored output, else what was reused."""
        ...


def stage_state(summary: Any) -> State[Any]:
    """The task's final state for ``summary``: ``Cached`` when nothing was computed anew."""
    cached = getattr(summary, "cached", "")
    if cached == "cached":
        return Completed(data=summary, name="Cached", message="stored output reused")
    return Completed(data=summary, message=cached or None)
