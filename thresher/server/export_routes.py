"""Exports, sample read URLs and embeddings: Lightly's ``/v1`` routes for a tag's samples.

Paths and query parameters as in Lightly's generated client (``tags_api.py``,
``samples_api.py``, ``embeddings_api.py``). Each route authenticates, calls one service function
(``thresher.platform.exports``, ``.samples``, ``.embeddings``) and answers. The two routes that
serve bytes take no API token: the signed ``publicToken`` in their URL is the permission.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from thresher.platform import embeddings, exports, samples
from thresher.platform.core import Platform
from thresher.platform.errors import Invalid
from thresher.platform.models import User
from thresher.server.auth import current_user
from thresher.wire import WireModel

router = APIRouter(prefix="/v1")
Auth = Annotated[User, Depends(current_user)]
ExpiresIn = Annotated[int | None, Query(alias="expiresIn")]
PageSize = Annotated[int | None, Query(alias="pageSize")]
PageOffset = Annotated[int, Query(alias="pageOffset")]
#: Accepted and ignored (Lightly's client never sends them).
AccessControl = Annotated[str | None, Query(alias="accessControl")]
IncludeMetaData = Annotated[bool | None, Query(alias="includeMetaData")]
PreviewExample = Annotated[bool | None, Query(alias="previewExample")]


def _p(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _base(request: Request) -> str:
    return str(request.base_url)


def _json(models: list[Any]) -> JSONResponse:
    return JSONResponse([m.wire() if isinstance(m, WireModel) else m for m in models])


def _stream(name: str, size: int | None, chunks: Iterator[bytes]) -> StreamingResponse:
    """The file's bytes, unchanged, with its type guessed from its name."""
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    base = name.rsplit("/", 1)[-1]
    headers = {"Content-Disposition": f"inline; filename*=UTF-8''{quote(base, safe='')}"}
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


# --- exports (tags_api.py) -----------------------------------------------------------------


@router.get("/datasets/{dataset_id}/tags/{tag_id}/export/basic/filenames")
def export_filenames(
    request: Request,
    user: Auth,
    dataset_id: str,
    tag_id: str,
    expires_in: ExpiresIn = None,
    access_control: AccessControl = None,
    file_name_format: Annotated[str, Query(alias="fileNameFormat")] = "NAME",
    include_meta_data: IncludeMetaData = None,
    format: Annotated[str, Query()] = "PLAIN",
    preview_example: PreviewExample = None,
    page_size: PageSize = None,
    page_offset: PageOffset = 0,
) -> Response:
    """One line per sample of the tag (plain text; a JSON list with ``format=JSON``)."""
    if format not in ("PLAIN", "JSON"):
        raise Invalid(f"format must be PLAIN or JSON, not {format!r}.")
    lines = exports.filenames(
        _p(request),
        user,
        dataset_id,
        tag_id,
        _base(request),
        file_name_format,
        expires_in,
        exports.Page(page_size, page_offset),
    )
    if format == "JSON":
        return JSONResponse(lines)
    return PlainTextResponse("\n".join(lines))


class _ExportQuery:
    """The query parameters of Lightly's JSON exports (the ignored ones are accepted)."""

    def __init__(
        self,
        expires_in: ExpiresIn = None,
        access_control: AccessControl = None,
        file_name_format: Annotated[str | None, Query(alias="fileNameFormat")] = None,
        include_meta_data: IncludeMetaData = None,
        format: Annotated[str | None, Query()] = None,
        preview_example: PreviewExample = None,
        page_size: PageSize = None,
        page_offset: PageOffset = 0,
    ) -> None:
        self.expires_in = expires_in
        self.page = exports.Page(page_size, page_offset)


ExportQuery = Annotated[_ExportQuery, Depends()]


def _export(
    request: Request,
    user: User,
    dataset_id: str,
    tag_id: str,
    q: _ExportQuery,
    rows: Callable[..., list[Any]],
) -> JSONResponse:
    """One page of a JSON export: ``rows`` is the service function of its format."""
    return _json(rows(_p(request), user, dataset_id, tag_id, _base(request), q.expires_in, q.page))


@router.get("/datasets/{dataset_id}/tags/{tag_id}/export/basic/filenamesAndReadUrls")
def export_filenames_and_read_urls(
    request: Request, user: Auth, dataset_id: str, tag_id: str, q: ExportQuery
) -> JSONResponse:
    """``[{fileName, readUrl, datasourceUrl}]`` for the tag's samples."""
    return _export(request, user, dataset_id, tag_id, q, exports.filenames_and_read_urls)


@router.get("/datasets/{dataset_id}/tags/{tag_id}/export/LabelStudio/tasks")
def export_label_studio_tasks(
    request: Request, user: Auth, dataset_id: str, tag_id: str, q: ExportQuery
) -> JSONResponse:
    """Label Studio tasks ``[{id, data: {image, lightlyFileName}}]``."""
    return _export(request, user, dataset_id, tag_id, q, exports.label_studio_tasks)


@router.get("/datasets/{dataset_id}/tags/{tag_id}/export/LabelBox/datarows")
def export_label_box_data_rows(
    request: Request, user: Auth, dataset_id: str, tag_id: str, q: ExportQuery
) -> JSONResponse:
    """Labelbox v3 data rows ``[{externalId, imageUrl}]``."""
    return _export(request, user, dataset_id, tag_id, q, exports.label_box_data_rows)


@router.get("/datasets/{dataset_id}/tags/{tag_id}/export/LabelBoxV4/datarows")
def export_label_box_v4_data_rows(
    request: Request, user: Auth, dataset_id: str, tag_id: str, q: ExportQuery
) -> JSONResponse:
    """Labelbox v4 data rows ``[{row_data, global_key, media_type}]`` (snake_case keys)."""
    return _export(request, user, dataset_id, tag_id, q, exports.label_box_v4_data_rows)


# --- samples (samples_api.py) --------------------------------------------------------------


@router.get("/datasets/{dataset_id}/samples/{sample_id}/readurl")
def sample_read_url(
    request: Request,
    user: Auth,
    dataset_id: str,
    sample_id: str,
    type: Annotated[str, Query()] = "full",
) -> JSONResponse:
    """An expiring URL (a JSON string) that fetches the sample's original without a token."""
    if type != "full":
        raise Invalid(f"type must be 'full' (thresher keeps no thumbnails), not {type!r}.")
    return JSONResponse(samples.read_url(_p(request), user, dataset_id, sample_id, _base(request)))


@router.get("/datasets/{dataset_id}/samples/{sample_id}/readurlRedirect")
def sample_original(
    request: Request,
    dataset_id: str,
    sample_id: str,
    public_token: Annotated[str, Query(alias="publicToken")] = "",
    type: Annotated[str, Query()] = "full",
) -> StreamingResponse:
    """The sample's original bytes, unchanged (no API token: the signed ``publicToken``)."""
    name, size, chunks = samples.open_original(_p(request), dataset_id, sample_id, public_token)
    return _stream(name, size, chunks)


# --- embeddings (embeddings_api.py) --------------------------------------------------------


@router.get("/datasets/{dataset_id}/embeddings")
def list_embeddings(request: Request, user: Auth, dataset_id: str) -> JSONResponse:
    """The dataset's embeddings (one per completed run), oldest first."""
    return _json(embeddings.list_embeddings(_p(request), user, dataset_id))


@router.get("/datasets/{dataset_id}/embeddings/{embedding_id}/readCSVUrl")
def embeddings_read_url(
    request: Request, user: Auth, dataset_id: str, embedding_id: str
) -> JSONResponse:
    """An expiring URL (a JSON string) that downloads the embeddings CSV without a token."""
    return JSONResponse(
        embeddings.read_url(_p(request), user, dataset_id, embedding_id, _base(request))
    )


@router.get("/datasets/{dataset_id}/embeddings/{embedding_id}/csv")
def embeddings_csv(
    request: Request,
    dataset_id: str,
    embedding_id: str,
    public_token: Annotated[str, Query(alias="publicToken")] = "",
) -> StreamingResponse:
    """The embeddings CSV, unchanged (no API token: the signed ``publicToken``)."""
    name, size, chunks = embeddings.open_csv(_p(request), dataset_id, embedding_id, public_token)
    response = _stream(name, size, chunks)
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    return response
