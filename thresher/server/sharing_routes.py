"""Sharing: Lightly's ``/v1/datasets/{d}/collaboration/access`` routes (the owner's only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from thresher.platform import sharing
from thresher.server.lightly_routes import Auth, _created, _json, _p
from thresher.wire import SharedAccessConfigCreateRequest

router = APIRouter(prefix="/v1")


@router.post("/datasets/{dataset_id}/collaboration/access")
def share_dataset(
    request: Request, user: Auth, dataset_id: str, body: SharedAccessConfigCreateRequest
) -> JSONResponse:
    """Share the dataset with exactly ``users`` (e-mails); ``[]`` revokes everyone (201)."""
    config_id = sharing.share_only_with(
        _p(request), user, dataset_id, body.users or [], teams=body.teams
    )
    return _created(config_id)


@router.get("/datasets/{dataset_id}/collaboration/access")
def shared_access(request: Request, user: Auth, dataset_id: str) -> JSONResponse:
    """The dataset's shared-access configs: one ``WRITE`` config, or none."""
    return _json(sharing.access_configs(_p(request), user, dataset_id))
