"""Lightly's ``/v1`` routes (the subset its ``ApiWorkflowClient`` uses), over the platform.

Paths and query parameters as in Lightly's generated client (``lightly<1.6``,
``openapi_generated/swagger_client/api/*.py``). Each route authenticates, calls one service
function and answers its wire model.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from thresher.platform import configs, datasets, datasources, listing, runs, tags, workers
from thresher.platform.core import Platform
from thresher.platform.errors import Invalid
from thresher.platform.models import User
from thresher.server.auth import current_user
from thresher.wire import (
    CreateDockerWorkerRegistryEntryRequest,
    CreateEntityResponse,
    DatasetCreateRequest,
    DatasourceConfig,
    DatasourceProcessedUntilTimestampRequest,
    DatasourcePurpose,
    DockerRunScheduledCreateRequest,
    DockerRunScheduledState,
    DockerWorkerConfigV3Create,
    TagCreateRequest,
    WireModel,
)

router = APIRouter(prefix="/v1")
Auth = Annotated[User, Depends(current_user)]

#: What ``GET /v1/versions/pip/minimum`` answers: every ``lightly<1.6`` client is accepted.
MINIMUM_PIP_VERSION = "1.0.0"


def _p(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _json(model: WireModel | list[Any], status: int = 200) -> JSONResponse:
    if isinstance(model, list):
        return JSONResponse([m.wire() for m in model], status_code=status)
    return JSONResponse(model.wire(), status_code=status)


def _created(entity_id: str) -> JSONResponse:
    return _json(CreateEntityResponse(id=entity_id), 201)


# --- versions ------------------------------------------------------------------------------


@router.get("/versions/pip/minimum")
def pip_minimum() -> JSONResponse:
    """The oldest client version accepted (no token needed)."""
    return JSONResponse(MINIMUM_PIP_VERSION)


@router.get("/versions/pip/latest")
def pip_latest(
    current_version: Annotated[str | None, Query(alias="currentVersion")] = None,
) -> JSONResponse:
    """The "latest" version: the caller's own, so Lightly's client never nags to upgrade."""
    return JSONResponse(current_version or MINIMUM_PIP_VERSION)


# --- datasets ------------------------------------------------------------------------------


@router.post("/datasets")
def create_dataset(request: Request, user: Auth, body: DatasetCreateRequest) -> JSONResponse:
    """Create a dataset."""
    return _created(datasets.create(_p(request), user, body))


class _ListQuery:
    """Lightly's dataset list parameters.

    No ``shared`` (or false): own datasets; true: those shared with the caller;
    ``getAssetsOfTeam``: team datasets (thresher has no teams: none).
    """

    def __init__(
        self,
        shared: bool = False,
        get_assets_of_team: Annotated[bool | None, Query(alias="getAssetsOfTeam")] = None,
        inclusive_self: Annotated[bool | None, Query(alias="getAssetsOfTeamInclusiveSelf")] = None,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_offset: Annotated[int, Query(alias="pageOffset")] = 0,
    ) -> None:
        self.shared = shared
        self.team = bool(get_assets_of_team) and not inclusive_self
        self.page_size = page_size
        self.page_offset = page_offset


@router.get("/datasets")
def list_datasets(
    request: Request, user: Auth, q: Annotated[_ListQuery, Depends()]
) -> JSONResponse:
    """The user's datasets, or (``shared=true``) those shared with the user."""
    return _json(
        datasets.list_datasets(
            _p(request),
            user,
            shared=q.shared,
            team=q.team,
            page_size=q.page_size,
            page_offset=q.page_offset,
        )
    )


@router.get("/datasets/query/name/{name}")
def datasets_by_name(
    request: Request,
    user: Auth,
    name: str,
    q: Annotated[_ListQuery, Depends()],
    exact: bool = False,
) -> JSONResponse:
    """Datasets with this name (``exact``) or name prefix."""
    return _json(
        datasets.list_datasets(
            _p(request),
            user,
            shared=q.shared,
            team=q.team,
            name=name,
            exact=exact,
            page_size=q.page_size,
            page_offset=q.page_offset,
        )
    )


@router.get("/datasets/{dataset_id}")
def get_dataset(request: Request, user: Auth, dataset_id: str) -> JSONResponse:
    """One dataset."""
    return _json(datasets.get(_p(request), user, dataset_id))


@router.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(request: Request, user: Auth, dataset_id: str) -> Response:
    """Delete a dataset, its datasources; its waiting runs are canceled."""
    datasets.delete(_p(request), user, dataset_id)
    return Response(status_code=204)


# --- datasources ---------------------------------------------------------------------------


#: The datasource types thresher serves (Lightly also has ``OBS`` and ``LIGHTLY``).
DATASOURCE_TYPES = ("LOCAL", "S3", "S3DelegatedAccess", "GCS", "AZURE")


def _datasource_config(body: dict[str, Any]) -> DatasourceConfig:
    """The body as a datasource config; an unknown type is named as such, not as 5 errors."""
    kind = body.get("type")
    if kind not in DATASOURCE_TYPES:
        raise Invalid(
            f"Datasource type {kind!r} is not supported by thresher; use one of "
            f"{', '.join(DATASOURCE_TYPES)} (set_local_config, set_s3_config, "
            "set_s3_delegated_access_config, set_gcs_config, set_azure_config).",
            "DATASET_DATASOURCE_ACTION_NOT_IMPLEMENTED",
        )
    try:
        return datasources.CONFIG.validate_python(body)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc'][1:]) or 'body'}: {err['msg']}"
            for err in e.errors()[:5]
        )
        raise Invalid(f"The {kind} datasource config is not valid: {problems}") from e


@router.put("/datasets/{dataset_id}/datasource", status_code=204)
def put_datasource(
    request: Request,
    user: Auth,
    dataset_id: str,
    body: Annotated[dict[str, Any], Body()],
) -> Response:
    """Set the dataset's datasource for the config's purpose (secrets encrypted at rest)."""
    datasources.put(_p(request), user, dataset_id, _datasource_config(body))
    return Response(status_code=204)


@router.get("/datasets/{dataset_id}/datasource")
def get_datasource(
    request: Request, user: Auth, dataset_id: str, purpose: DatasourcePurpose | None = None
) -> JSONResponse:
    """A datasource config; secret fields come back masked."""
    cfg = datasources.get(_p(request), user, dataset_id, str(purpose) if purpose else None)
    return _json(cfg)


@router.get("/datasets/{dataset_id}/datasource/verify")
def verify_datasource(
    request: Request, user: Auth, dataset_id: str, purpose: DatasourcePurpose | None = None
) -> JSONResponse:
    """Check list/read/write/overwrite at the datasources."""
    perms = datasources.verify(_p(request), user, dataset_id, str(purpose) if purpose else None)
    return _json(perms)


# --- datasource listing (datasources_api.py: list, list/dnc, processedUntilTimestamp) ------

_From = Annotated[int | None, Query(alias="from")]
_To = Annotated[int | None, Query()]
_Relevant = Annotated[str | None, Query(alias="relevantFilenamesFileName")]
_RunId = Annotated[str | None, Query(alias="relevantFilenamesRunId")]
_ArtifactId = Annotated[str | None, Query(alias="relevantFilenamesArtifactId")]
_Redirected = Annotated[bool, Query(alias="useRedirectedReadUrl")]
_Shards = Annotated[int, Query(alias="dncShards")]
_Task = Annotated[str, Query(alias="taskName")]


def _no_artifact_relevant(run_id: str | None, artifact_id: str | None) -> None:
    """Lightly's relevant filenames from a run's artifact: not supported by thresher."""
    if run_id or artifact_id:
        raise Invalid(
            "relevantFilenamesRunId/relevantFilenamesArtifactId (relevant filenames from a "
            "run's artifact) are not supported by thresher; upload the file to the LIGHTLY "
            "datasource and pass relevant_filenames_file_name instead."
        )


def _page(
    request: Request,
    user: User,
    dataset_id: str,
    kind: listing.Kind,
    cursor: str | None,
    from_: int | None,
    to: int | None,
    relevant: str | None,
    task: str | None = None,
) -> JSONResponse:
    page = listing.list_page(
        _p(request),
        user,
        dataset_id,
        kind,
        str(request.base_url),
        cursor=cursor,
        from_=from_,
        to=to,
        relevant_filenames_file_name=relevant,
        task_name=task,
    )
    return _json(page)


def _dnc(
    request: Request,
    user: User,
    dataset_id: str,
    kind: listing.Kind,
    shards: int,
    from_: int | None,
    to: int | None,
    relevant: str | None,
    task: str | None = None,
) -> JSONResponse:
    cursors = listing.divide_and_conquer(
        _p(request),
        user,
        dataset_id,
        kind,
        dnc_shards=shards,
        from_=from_,
        to=to,
        relevant_filenames_file_name=relevant,
        task_name=task,
    )
    return _json(cursors)


@router.get("/datasets/{dataset_id}/datasource/list")
def list_raw_samples(
    request: Request,
    user: Auth,
    dataset_id: str,
    from_: _From = None,
    to: _To = None,
    cursor: str | None = None,
    use_redirected_read_url: _Redirected = False,
    relevant: _Relevant = None,
) -> JSONResponse:
    """One page of the INPUT datasource's files (``{hasMore, cursor, data}``)."""
    return _page(request, user, dataset_id, "samples", cursor, from_, to, relevant)


@router.get("/datasets/{dataset_id}/datasource/list/dnc")
def list_raw_samples_dnc(
    request: Request,
    user: Auth,
    dataset_id: str,
    dnc_shards: _Shards,
    from_: _From = None,
    to: _To = None,
    relevant: _Relevant = None,
) -> JSONResponse:
    """The first cursor of each shard of the INPUT listing (``{cursors}``)."""
    return _dnc(request, user, dataset_id, "samples", dnc_shards, from_, to, relevant)


@router.get("/datasets/{dataset_id}/datasource/metadata/list")
def list_raw_metadata(
    request: Request,
    user: Auth,
    dataset_id: str,
    from_: _From = None,
    to: _To = None,
    cursor: str | None = None,
    use_redirected_read_url: _Redirected = False,
    relevant: _Relevant = None,
    run_id: _RunId = None,
    artifact_id: _ArtifactId = None,
) -> JSONResponse:
    """One page of the files below ``.lightly/metadata/`` of LIGHTLY."""
    _no_artifact_relevant(run_id, artifact_id)
    return _page(request, user, dataset_id, "metadata", cursor, from_, to, relevant)


@router.get("/datasets/{dataset_id}/datasource/metadata/list/dnc")
def list_raw_metadata_dnc(
    request: Request,
    user: Auth,
    dataset_id: str,
    dnc_shards: _Shards,
    from_: _From = None,
    to: _To = None,
    relevant: _Relevant = None,
    run_id: _RunId = None,
    artifact_id: _ArtifactId = None,
) -> JSONResponse:
    """The first cursor of each shard of the metadata listing."""
    _no_artifact_relevant(run_id, artifact_id)
    return _dnc(request, user, dataset_id, "metadata", dnc_shards, from_, to, relevant)


@router.get("/datasets/{dataset_id}/datasource/predictions/list")
def list_raw_predictions(
    request: Request,
    user: Auth,
    dataset_id: str,
    task_name: _Task,
    from_: _From = None,
    to: _To = None,
    cursor: str | None = None,
    use_redirected_read_url: _Redirected = False,
    relevant: _Relevant = None,
    run_id: _RunId = None,
    artifact_id: _ArtifactId = None,
) -> JSONResponse:
    """One page of the files below ``.lightly/predictions/<taskName>/`` of LIGHTLY."""
    _no_artifact_relevant(run_id, artifact_id)
    return _page(request, user, dataset_id, "predictions", cursor, from_, to, relevant, task_name)


@router.get("/datasets/{dataset_id}/datasource/predictions/list/dnc")
def list_raw_predictions_dnc(
    request: Request,
    user: Auth,
    dataset_id: str,
    task_name: _Task,
    dnc_shards: _Shards,
    from_: _From = None,
    to: _To = None,
    relevant: _Relevant = None,
    run_id: _RunId = None,
    artifact_id: _ArtifactId = None,
) -> JSONResponse:
    """The first cursor of each shard of a task's predictions listing."""
    _no_artifact_relevant(run_id, artifact_id)
    return _dnc(
        request, user, dataset_id, "predictions", dnc_shards, from_, to, relevant, task_name
    )


@router.get("/datasets/{dataset_id}/datasource/readurlRedirect")
def datasource_file(
    request: Request,
    dataset_id: str,
    path: str = "",
    purpose: str = "",
    public_token: Annotated[str, Query(alias="publicToken")] = "",
) -> StreamingResponse:
    """A listed file's bytes, unchanged (no API token: the signed ``publicToken``)."""
    name, size, chunks = listing.open_file(_p(request), dataset_id, purpose, path, public_token)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {"Content-Disposition": f"inline; filename*=UTF-8''{quote(name, safe='')}"}
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


@router.get("/datasets/{dataset_id}/datasource/processedUntilTimestamp")
def get_processed_until(request: Request, user: Auth, dataset_id: str) -> JSONResponse:
    """Until when the datasource was processed (``{processedUntilTimestamp}``, Unix s)."""
    return _json(listing.processed_until_response(_p(request), user, dataset_id))


@router.put("/datasets/{dataset_id}/datasource/processedUntilTimestamp", status_code=204)
def put_processed_until(
    request: Request,
    user: Auth,
    dataset_id: str,
    body: DatasourceProcessedUntilTimestampRequest,
) -> Response:
    """Set until when the datasource was processed (owner and collaborators)."""
    listing.set_processed_until(_p(request), user, dataset_id, body.processed_until_timestamp)
    return Response(status_code=204)


# --- samples and tags ----------------------------------------------------------------------


@router.get("/datasets/{dataset_id}/mappings")
def sample_mappings(
    request: Request,
    user: Auth,
    dataset_id: str,
    field: str,
    page_size: Annotated[int | None, Query(alias="pageSize")] = None,
    page_offset: Annotated[int, Query(alias="pageOffset")] = 0,
) -> JSONResponse:
    """The samples' file names (``field=fileName``) or ids (``_id``) in sample order, paged."""
    return JSONResponse(tags.mappings(_p(request), user, dataset_id, field, page_size, page_offset))


@router.get("/datasets/{dataset_id}/tags")
def list_tags(request: Request, user: Auth, dataset_id: str) -> JSONResponse:
    """The dataset's tags, newest first."""
    return _json(tags.list_tags(_p(request), user, dataset_id))


@router.post("/datasets/{dataset_id}/tags")
def create_tag(
    request: Request, user: Auth, dataset_id: str, body: TagCreateRequest
) -> JSONResponse:
    """Create a tag from a bitmask over the dataset's samples (409 when the name is taken)."""
    return _created(tags.create_tag(_p(request), user, dataset_id, body))


@router.get("/datasets/{dataset_id}/tags/{tag_id}")
def get_tag(request: Request, user: Auth, dataset_id: str, tag_id: str) -> JSONResponse:
    """One tag."""
    return _json(tags.get_tag(_p(request), user, dataset_id, tag_id))


@router.delete("/datasets/{dataset_id}/tags/{tag_id}", status_code=204)
def delete_tag(request: Request, user: Auth, dataset_id: str, tag_id: str) -> Response:
    """Delete a tag (its samples stay)."""
    tags.delete_tag(_p(request), user, dataset_id, tag_id)
    return Response(status_code=204)


# --- workers and configs -------------------------------------------------------------------


@router.post("/docker/worker")
def register_worker(
    request: Request, user: Auth, body: CreateDockerWorkerRegistryEntryRequest
) -> JSONResponse:
    """Register a worker (a known name returns its id)."""
    return _created(workers.register(_p(request), user, body))


@router.get("/docker/worker")
def list_workers(request: Request, user: Auth) -> JSONResponse:
    """The user's workers."""
    return _json(workers.list_workers(_p(request), user))


@router.delete("/docker/worker/{worker_id}", status_code=204)
def delete_worker(request: Request, user: Auth, worker_id: str) -> Response:
    """Delete a worker registration."""
    workers.delete(_p(request), user, worker_id)
    return Response(status_code=204)


def _configs_of(body: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The three configs from either accepted body shape (see ``thresher.platform.configs``)."""
    if "version" in body:  # Lightly's DockerWorkerConfigOmniVXCreateRequest
        config = body.get("config")
        if not isinstance(config, dict):
            raise Invalid("The body's 'config' must be an object (DockerWorkerConfigV4).")
        return configs.from_lightly(config)
    try:
        ours = DockerWorkerConfigV3Create.model_validate(body)
    except ValidationError as e:
        raise Invalid(
            "The body must be {'config': {'worker_config': {...}, 'lightly_config': {...}}, "
            f"'selectionConfig': {{...}}}} or Lightly's {{'version': 'V4', 'config': ...}}: {e}"
        ) from e
    return (
        ours.config.get("worker_config"),
        ours.config.get("lightly_config"),
        ours.selection_config,
    )


@router.post("/docker/worker/config/v3")
@router.post("/docker/worker/config/vX")
def create_config(
    request: Request, user: Auth, body: Annotated[dict[str, Any], Body()]
) -> JSONResponse:
    """Store a run's configs after validating them (400 ``BAD_REQUEST`` names the bad key)."""
    worker_config, lightly_config, selection_config = _configs_of(body)
    return _created(
        configs.create(_p(request), user, worker_config, lightly_config, selection_config)
    )


# --- scheduled runs ------------------------------------------------------------------------


@router.post("/datasets/{dataset_id}/docker/worker/schedule")
def schedule_run(
    request: Request, user: Auth, dataset_id: str, body: DockerRunScheduledCreateRequest
) -> JSONResponse:
    """Schedule a run (422 when a datasource or a permission is missing)."""
    return _created(runs.schedule(_p(request), user, dataset_id, body))


@router.get("/datasets/{dataset_id}/docker/worker/schedule")
def list_scheduled(
    request: Request, user: Auth, dataset_id: str, state: DockerRunScheduledState | None = None
) -> JSONResponse:
    """The dataset's scheduled runs (no state: those not DONE/CANCELED)."""
    return _json(runs.list_scheduled(_p(request), user, dataset_id, str(state) if state else None))


@router.put("/datasets/{dataset_id}/docker/worker/schedule/{scheduled_id}", status_code=204)
def cancel_open_run(request: Request, user: Auth, dataset_id: str, scheduled_id: str) -> Response:
    """Lightly's cancel: only an OPEN scheduled run (409 otherwise)."""
    runs.cancel_open(_p(request), user, dataset_id, scheduled_id)
    return Response(status_code=204)


@router.post("/datasets/{dataset_id}/docker/worker/schedule/{scheduled_id}/cancel")
def cancel_run(request: Request, user: Auth, dataset_id: str, scheduled_id: str) -> JSONResponse:
    """Ours: cancel OPEN, or ask the worker of a LOCKED run to abort it.

    Answers ``{"result": "CANCELED" | "ABORT_REQUESTED" | "ENDED"}``.
    """
    return JSONResponse({"result": runs.cancel(_p(request), user, dataset_id, scheduled_id)})


# --- runs and artifacts --------------------------------------------------------------------


@router.get("/docker/runs")
def list_runs(
    request: Request,
    user: Auth,
    page_size: Annotated[int | None, Query(alias="pageSize")] = None,
    page_offset: Annotated[int, Query(alias="pageOffset")] = 0,
) -> JSONResponse:
    """The user's runs, oldest first."""
    return _json(runs.list_runs(_p(request), user, page_size=page_size, page_offset=page_offset))


@router.get("/docker/runs/query/datasetId/{dataset_id}")
def list_dataset_runs(
    request: Request,
    user: Auth,
    dataset_id: str,
    page_size: Annotated[int | None, Query(alias="pageSize")] = None,
    page_offset: Annotated[int, Query(alias="pageOffset")] = 0,
) -> JSONResponse:
    """The runs of one dataset, oldest first."""
    return _json(
        runs.list_runs(_p(request), user, dataset_id, page_size=page_size, page_offset=page_offset)
    )


@router.get("/docker/runs/schedule/{scheduled_id}")
def run_of_scheduled(request: Request, user: Auth, scheduled_id: str) -> JSONResponse:
    """The run of a scheduled run (404 ``DOCKER_RUN_UNKNOWN`` until a worker took it)."""
    return _json(runs.get_run_by_scheduled(_p(request), user, scheduled_id))


@router.get("/docker/runs/{run_id}")
def get_run(request: Request, user: Auth, run_id: str) -> JSONResponse:
    """One run, with its artifacts."""
    return _json(runs.get_run(_p(request), user, run_id))


@router.get("/docker/runs/{run_id}/tags")
def run_tags(request: Request, user: Auth, run_id: str) -> JSONResponse:
    """The tags a run made, newest first."""
    return _json(tags.run_tags(_p(request), user, run_id))


@router.get("/docker/runs/{run_id}/artifacts/{artifact_id}/readurl")
def artifact_read_url(request: Request, user: Auth, run_id: str, artifact_id: str) -> JSONResponse:
    """An expiring signed URL (a JSON string) that downloads the artifact without a token."""
    base = str(request.base_url)
    return JSONResponse(runs.read_url(_p(request), user, run_id, artifact_id, base))


@router.get("/artifacts/{artifact_id}")
def download_artifact(
    request: Request, artifact_id: str, expires: int | None = None, signature: str | None = None
) -> StreamingResponse:
    """Stream an artifact from the LIGHTLY datasource (signed URL; no token).

    A missing, wrong or expired signature is 403.
    """
    name, size, chunks = runs.open_artifact(_p(request), artifact_id, expires, signature)
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}"}
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)
