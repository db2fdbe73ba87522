"""The worker routes (thresher's own): heartbeat, claim, state updates, artifacts, selection.

A worker authenticates with its user's token like any client.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from thresher.platform import crops, runs, workers
from thresher.server import prefect_server
from thresher.server.lightly_routes import Auth, _created, _json, _p
from thresher.wire import (
    ArtifactCreateRequest,
    RunSelectionRequest,
    RunStateUpdate,
    WorkerHeartbeat,
)

router = APIRouter(prefix="/v1")


@router.post("/docker/worker/{worker_id}/heartbeat", status_code=204)
def heartbeat(request: Request, user: Auth, worker_id: str, body: WorkerHeartbeat) -> Response:
    """The worker is alive (IDLE or BUSY)."""
    workers.heartbeat(_p(request), user, worker_id, body.state)
    return Response(status_code=204)


@router.post("/docker/worker/{worker_id}/claim", response_model=None)
def claim(request: Request, user: Auth, worker_id: str) -> JSONResponse | Response:
    """The next run for this worker (200 ``ClaimedRun``), or 204 when nothing fits.

    The answer carries the datasources' secrets; it is never logged.
    """
    claimed = runs.claim(_p(request), user, worker_id)
    if claimed is None:
        return Response(status_code=204)
    if claimed.prefect_api_url is None:  # where the run's flow reports (the Prefect UI)
        claimed.prefect_api_url = prefect_server.public_url()
    return _json(claimed)


@router.put("/docker/runs/{run_id}/state", status_code=204)
def put_state(request: Request, user: Auth, run_id: str, body: RunStateUpdate) -> Response:
    """A state update (409 ``ABORT_REQUESTED`` when the run was cancelled)."""
    runs.update_state(_p(request), user, run_id, body)
    return Response(status_code=204)


@router.post("/docker/runs/{run_id}/artifacts")
def add_artifact(
    request: Request, user: Auth, run_id: str, body: ArtifactCreateRequest
) -> JSONResponse:
    """Record an artifact the run wrote in its LIGHTLY datasource."""
    return _created(runs.add_artifact(_p(request), user, run_id, body))


@router.post("/docker/runs/{run_id}/selection")
def add_selection(
    request: Request, user: Auth, run_id: str, body: RunSelectionRequest
) -> JSONResponse:
    """A completed run's picks: new samples for its dataset, and the run's tag (its id).

    With ``crops`` (an object-level run), the crops go to the run's crops dataset too.
    """
    picks = crops.record_run_picks(_p(request), user, run_id, body.filenames, body.crops)
    return _created(picks)
