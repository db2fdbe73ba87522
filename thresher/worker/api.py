"""The worker's side of the HTTP contract: register, heartbeat, claim, report, add artifacts."""

from __future__ import annotations

from typing import Any

from thresher.client.errors import ApiException
from thresher.client.http import Http
from thresher.wire import (
    ArtifactCreateRequest,
    ClaimedRun,
    CreateDockerWorkerRegistryEntryRequest,
    CreateEntityResponse,
    DockerRunArtifactType,
    DockerRunState,
    DockerWorkerState,
    RunCrops,
    RunSelectionRequest,
    RunStateUpdate,
    WorkerHeartbeat,
)

#: The error code of a state update refused because the user cancelled the run.
ABORT_REQUESTED = "ABORT_REQUESTED"
#: The error code of a state update for a run the server has ended (e.g. marked CRASHED).
RUN_ENDED = "DOCKER_RUN_ENDED"

#: Longest run message sent (the server keeps the last one per run).
MAX_MESSAGE = 2000


class AbortRequested(Exception):
    """The user cancelled the run (the server answered 409 ``ABORT_REQUESTED``)."""


class RunEnded(AbortRequested):
    """The server ended the run already (409 ``DOCKER_RUN_ENDED``, e.g. marked CRASHED)."""


class WorkerApi:
    """Typed calls of the worker routes.

    Args:
        http: The session (server URL and the user's token).
    """

    def __init__(self, http: Http) -> None:
        self.http = http

    def register(self, name: str, labels: list[str]) -> str:
        """Register the worker (or re-use the one with this name); its id."""
        body = CreateDockerWorkerRegistryEntryRequest(name=name, labels=labels, creator="WORKER")
        return CreateEntityResponse.model_validate(
            self.http.send_json("POST", "/v1/docker/worker", body.wire())
        ).id

    def heartbeat(self, worker_id: str, state: DockerWorkerState) -> None:
        """Tell the server the worker is alive, and IDLE or BUSY (OFFLINE when it stops)."""
        body = WorkerHeartbeat(state=state).wire()
        self.http.send_json("POST", f"/v1/docker/worker/{worker_id}/heartbeat", body)

    def claim(self, worker_id: str) -> ClaimedRun | None:
        """Take the next run this worker may do, or None when nothing waits."""
        doc = self.http.send_json("POST", f"/v1/docker/worker/{worker_id}/claim")
        return None if doc is None else ClaimedRun.model_validate(doc)

    def set_state(
        self,
        run_id: str,
        state: DockerRunState | str,
        message: str | None,
        prefect_flow_run_id: str | None = None,
    ) -> None:
        """Report the run's state and message (and its Prefect flow run, once known).

        Raises:
            AbortRequested: The user cancelled the run; stop it and report ABORTED.
        """
        if message is not None and len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        body = RunStateUpdate(
            state=DockerRunState(state), message=message, prefect_flow_run_id=prefect_flow_run_id
        ).wire()
        try:
            self.http.send_json("PUT", f"/v1/docker/runs/{run_id}/state", body)
        except ApiException as e:
            if e.status == 409 and e.code == ABORT_REQUESTED:
                raise AbortRequested(e.error or "the run was cancelled") from e
            if e.status == 409 and e.code == RUN_ENDED:
                raise RunEnded(e.error or "the run has ended") from e
            raise

    def add_artifact(self, run_id: str, artifact_type: str, file_name: str, location: str) -> str:
        """Register a file of the run (``location`` relative to the LIGHTLY root); its id."""
        body = ArtifactCreateRequest(
            type=DockerRunArtifactType(artifact_type),
            file_name=file_name,
            storage_location=location,
        )
        return CreateEntityResponse.model_validate(
            self.http.send_json("POST", f"/v1/docker/runs/{run_id}/artifacts", body.wire())
        ).id

    def add_selection(
        self, run_id: str, filenames: list[str], crops: dict[str, Any] | None = None
    ) -> str:
        """Report a completed run's picks (``selected.txt``); the id of the run's tag.

        ``crops`` (``{"task", "filenames"}``): an object-level run's written crops, for its
        crops dataset.
        """
        body = RunSelectionRequest(
            filenames=filenames,
            crops=RunCrops.model_validate(crops) if crops is not None else None,
        ).wire()
        return CreateEntityResponse.model_validate(
            self.http.send_json("POST", f"/v1/docker/runs/{run_id}/selection", body)
        ).id
