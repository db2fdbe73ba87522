"""``ComputeWorkerRunInfo``: a run's state and message, as Lightly's client reports them."""

from __future__ import annotations

import dataclasses

#: The state of a scheduled run that was cancelled before pickup, or never existed.
STATE_SCHEDULED_ID_NOT_FOUND = "CANCELED_OR_NOT_EXISTING"

_END_STATES = ("COMPLETED", "ABORTED", "FAILED", "CRASHED", STATE_SCHEDULED_ID_NOT_FOUND)


@dataclasses.dataclass
class ComputeWorkerRunInfo:
    """What a scheduled run is doing now.

    Attributes:
        state: A ``DockerRunState`` name (``EMBEDDING``, ``COMPLETED``...), ``"OPEN"`` while no
            worker has taken the run, or ``"CANCELED_OR_NOT_EXISTING"``.
        message: The last message of the run (may be None).

    Example:
        >>> info = ComputeWorkerRunInfo(state="COMPLETED", message="done")
        >>> info.in_end_state(), info.ended_successfully()
        (True, True)
    """

    state: str
    message: str | None

    def in_end_state(self) -> bool:
        """Whether the run has ended (completed, aborted, failed, crashed, or cancelled)."""
        return self.state in _END_STATES

    def ended_successfully(self) -> bool:
        """Whether the run ended with COMPLETED.

        Raises:
            ValueError: The run is still in progress.
        """
        if not self.in_end_state():
            raise ValueError("Lightly Worker run is still in progress.")
        return self.state == "COMPLETED"
