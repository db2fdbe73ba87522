"""The web page served at ``/``: datasets, runs, tags and a tag's gallery (server-rendered).

Jinja2 templates in ``templates/`` with the CSS inline: no JavaScript, nothing fetched from
the network. Sign-in stores the API token in an HttpOnly, SameSite=Strict cookie
(:data:`thresher.server.auth.COOKIE`, Secure over https), which ``auth.token_of`` reads like
``?token=``, so every access rule of the API applies to the page as it is.

| route | what | access |
|---|---|---|
| ``GET /`` | datasets (own and shared), or the sign-in form | signed in |
| ``POST /signin`` / ``POST /signout`` | set / clear the cookie | anyone |
| ``GET /datasets/{d}`` | runs (newest first) and tags | ``read`` the dataset |
| ``GET /datasets/{d}/tags/{t}?page=`` | the tag's thumbnails, paged | ``read`` |
| ``GET /datasets/{d}/samples/{s}/thumbnail`` | the thumbnail (a placeholder if none) | ``read`` |
| ``GET /datasets/{d}/samples/{s}/original`` | 303 to the original's read URL | ``download`` |
| ``GET /runs/{r}/artifacts/{a}`` | 303 to the file's signed read URL | ``download`` |

Anonymous requests to a page are sent to the sign-in form (303); a page the user may not see
answers with an HTML error page and the API's status (403, 404).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from thresher.platform import datasets, pages, runs, users
from thresher.platform.core import Platform
from thresher.platform.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PlatformError,
    Unprocessable,
)
from thresher.platform.models import User
from thresher.server import prefect_server
from thresher.server.auth import COOKIE, token_of

router = APIRouter(include_in_schema=False)

#: How long the sign-in cookie lasts.
COOKIE_MAX_AGE_S = 30 * 24 * 3600
#: The run files the dataset page links to, in this order.
SHOWN_ARTIFACTS = ("report.pdf", "log.txt")
_MAX_FORM_BYTES = 16 * 1024

_STATUS: dict[type[PlatformError], tuple[int, str]] = {
    NotFound: (404, "Not found"),
    Forbidden: (403, "Not yours to see"),
    Invalid: (400, "Bad request"),
    Conflict: (409, "Conflict"),
    Unprocessable: (422, "Cannot do that"),
}

_PLACEHOLDER = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">'
    b'<rect width="256" height="256" fill="#eaeef2"/>'
    b'<text x="128" y="134" font-family="sans-serif" font-size="16" fill="#8c959f" '
    b'text-anchor="middle">no thumbnail</text></svg>'
)


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    s = math.floor(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["when"] = _when
_env.filters["duration"] = _duration


def _render(name: str, code: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(**context)
    return HTMLResponse(
        html,
        status_code=code,
        headers={
            "Cache-Control": "no-store",
            # No script, no frame, nothing from elsewhere: the page needs none of it.
            "Content-Security-Policy": (
                "default-src 'self'; style-src 'unsafe-inline'; img-src 'self'; "
                "script-src 'none'; frame-ancestors 'none'; form-action 'self'"
            ),
            "X-Content-Type-Options": "nosniff",
        },
    )


def _p(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _user(request: Request) -> User | None:
    """The signed-in user, or None (no token, or one that is no longer valid)."""
    try:
        return users.authenticate(_p(request), token_of(request))
    except Forbidden:
        return None


def _problem(user: User | None, e: PlatformError) -> HTMLResponse:
    status, heading = next((v for k, v in _STATUS.items() if isinstance(e, k)), (400, "Error"))
    return _render("problem.html", status, user=user, status=status, heading=heading, message=e)


def _safe_next(target: str) -> str:
    """``target`` if it is a path on this site, else ``/`` (no open redirect)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _to_signin(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/?next=" + quote(here, safe="/"), status_code=303)


def _page(request: Request, build: Callable[[User], Response]) -> Response:
    """Every page route: anonymous -> sign-in form; a service error -> an HTML error page."""
    user = _user(request)
    if user is None:
        return _to_signin(request)
    try:
        return build(user)
    except PlatformError as e:
        return _problem(user, e)


def _prefect_ui(flow_run_id: str | None) -> str | None:
    """The flow run's page in the Prefect UI (the Prefect API URL without ``/api``)."""
    api = prefect_server.public_url()
    if not api or not flow_run_id:
        return None
    base = api.rstrip("/")
    base = base[: -len("/api")] if base.endswith("/api") else base
    return f"{base}/runs/flow-run/{flow_run_id}"


def _sample_read_url() -> Callable[..., str] | None:
    """``thresher.platform.samples.read_url`` (the exports feature), if installed."""
    try:
        module = importlib.import_module("thresher.platform.samples")
    except ImportError:
        return None
    fn = getattr(module, "read_url", None)
    return fn if callable(fn) else None


@router.get("/", response_class=HTMLResponse)
def home(request: Request, next: str = "/") -> Response:
    """The datasets the user may see, or the sign-in form."""
    user = _user(request)
    if user is None:
        problem = None
        if request.cookies.get(COOKIE):
            problem = "Your sign-in is no longer valid: sign in with a current API token."
        response = _render("signin.html", user=None, next=_safe_next(next), problem=problem)
        if problem:
            response.delete_cookie(COOKIE, path="/")
        return response
    if next != "/":
        return RedirectResponse(_safe_next(next), status_code=303)
    found = datasets.list_datasets(_p(request), user, shared=None)
    return _render("datasets.html", user=user, datasets=found)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items() if v}


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    """Check the token of the sign-in form; on success keep it in the cookie."""
    form = await _form(request)
    token = form.get("token", "").strip()
    target = _safe_next(form.get("next", "/"))
    try:
        await run_in_threadpool(users.authenticate, _p(request), token or None)
    except Forbidden:
        problem = "That token is not valid: check it, or create one with thresher user add."
        # The token is never written back into the page.
        return _render("signin.html", 403, user=None, next=target, problem=problem)
    response = RedirectResponse(target, status_code=303)
    public = _p(request).settings.public_url or ""
    response.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or public.startswith("https://"),
    )
    return response


@router.post("/signout")
def signout() -> RedirectResponse:
    """Forget the cookie."""
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset(request: Request, dataset_id: str) -> Response:
    """A dataset's runs and tags."""

    def build(user: User) -> Response:
        page = pages.dataset_page(_p(request), user, dataset_id)
        urls = {r.id: _prefect_ui(r.prefect_flow_run_id) for r in page.runs}
        return _render(
            "dataset.html",
            user=user,
            page=page,
            prefect_urls=urls,
            shown_artifacts=SHOWN_ARTIFACTS,
        )

    return _page(request, build)


@router.get("/datasets/{dataset_id}/tags/{tag_id}", response_class=HTMLResponse)
def tag_gallery(request: Request, dataset_id: str, tag_id: str, page: int = 1) -> Response:
    """A page of the tag's thumbnails, each linking to its original."""

    def build(user: User) -> Response:
        g = pages.gallery(_p(request), user, dataset_id, tag_id, page)
        return _render("gallery.html", user=user, g=g)

    return _page(request, build)


@router.get("/datasets/{dataset_id}/samples/{sample_id}/thumbnail")
def thumbnail(request: Request, dataset_id: str, sample_id: str) -> Response:
    """The sample's thumbnail from the LIGHTLY datasource; a placeholder when there is none."""

    def build(user: User) -> Response:
        found = pages.thumbnail(_p(request), user, dataset_id, sample_id)
        if found is None:
            return Response(
                _PLACEHOLDER, media_type="image/svg+xml", headers={"Cache-Control": "no-store"}
            )
        data, media_type = found
        return Response(
            data, media_type=media_type, headers={"Cache-Control": "private, max-age=300"}
        )

    return _page(request, build)


@router.get("/datasets/{dataset_id}/samples/{sample_id}/original")
def original(request: Request, dataset_id: str, sample_id: str) -> Response:
    """303 to a signed read URL of the sample's original file."""

    def build(user: User) -> Response:
        read_url = _sample_read_url()
        if read_url is None:
            raise NotFound(
                "Links to original files need thresher.platform.samples.read_url, which this "
                "server does not have yet; download them with the client instead."
            )
        url = read_url(_p(request), user, dataset_id, sample_id, str(request.base_url))
        return RedirectResponse(url, status_code=303)

    return _page(request, build)


@router.get("/runs/{run_id}/artifacts/{artifact_id}")
def artifact(request: Request, run_id: str, artifact_id: str) -> Response:
    """303 to a signed read URL of the run's file (report.pdf, log.txt...)."""

    def build(user: User) -> Response:
        url = runs.read_url(_p(request), user, run_id, artifact_id, str(request.base_url))
        return RedirectResponse(url, status_code=303)

    return _page(request, build)
