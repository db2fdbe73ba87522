"""Every route of the app, called as the owner, a collaborator, a stranger and anonymously.

The route list comes from the app itself (``create_app().routes``): a route missing from
:data:`ROUTES` fails :func:`test_the_table_names_every_route_of_the_app`, so a new route cannot
slip past. Each row gives the route's rule; :func:`test_each_route_answers_each_caller` then
calls it as

* **alice**: owns the dataset (and the worker, the configs, the runs' worker);
* **bob**: the dataset is shared with him (``share_only_with``);
* **carol**: a user with no tie to the dataset;
* **anonymous**: no token;

each time on a fresh set-up (a dataset with datasources, a completed run with an artifact,
samples, a tag and embeddings, a running run, an OPEN scheduled run), and checks the answer:
allowed callers get the row's success status, refused ones 403 with Lightly's error body (the
web pages: 403 as a page, and anonymous callers are sent to the sign-in form), except a
stranger (carol) on a dataset's routes: 404, as for an id that names nothing, so a stranger
cannot learn which ids exist.

The rules (docs/platform.md, "Sharing and who may do what"):

=================== ===================================================================
``public``          anyone, no token
``any-user``        any valid token
``dataset:<action>``the dataset's owner; for read, schedule, tag, export and download also
                    the users it is shared with (``access.dataset_for``)
``own-object``      the user who owns the worker or config named in the path
``worker-of-owner`` the user whose worker took the run (the dataset's owner)
``signed-url``      no token; the URL's signature is the permission (missing/wrong: 403)
``web:<action>``    a web page: like ``dataset:<action>``, anonymous -> sign-in form (303)
``sign-in``         the sign-in form: a valid token in the form signs in
=================== ===================================================================
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from tests.server.conftest import Api
from thresher.platform import runs, sharing, tags, users, workers
from thresher.platform.core import Platform
from thresher.platform.models import User
from thresher.platform.settings import Settings
from thresher.server.app import create_app
from thresher.wire import (
    ArtifactCreateRequest,
    CreateDockerWorkerRegistryEntryRequest,
    DatasetCreateRequest,
    DatasourceConfigLocal,
    DockerRunScheduledCreateRequest,
    RunStateUpdate,
)

ROLES = ("anonymous", "carol", "bob", "alice")
_COUNTER = itertools.count()


@dataclass
class World:
    """One fresh set-up: alice's dataset shared with bob, and everything in it."""

    ids: dict[str, str]
    configs: dict[str, str]  # role -> a worker config of that user
    tokens: dict[str, str | None]


def _build(api: Api, carol_token: str) -> World:
    p = api.platform
    n = next(_COUNTER)
    alice = users.authenticate(p, api.token)
    bob = users.authenticate(p, api.other)
    carol = users.authenticate(p, carol_token)
    from thresher.platform import configs, datasets, datasources

    name = f"world-{n}"
    d = datasets.create(p, alice, DatasetCreateRequest(name=name))
    datasources.put(p, alice, d, DatasourceConfigLocal(purpose="INPUT", full_path="in"))
    datasources.put(p, alice, d, DatasourceConfigLocal(purpose="LIGHTLY", full_path="out"))
    sharing.share_only_with(p, alice, d, [bob.email])
    cfg = {u.email: configs.create(p, u, {}, {}, {"n_samples": 1}) for u in (alice, bob, carol)}
    # Each world's worker takes only its world's runs: they run on its own label.
    label = f"world-{n}"
    w = workers.register(
        p, alice, CreateDockerWorkerRegistryEntryRequest(name=f"gpu-{n}", labels=[label])
    )
    workers.heartbeat(p, alice, w, "IDLE")

    def run_now() -> tuple[str, str]:
        req = DockerRunScheduledCreateRequest(config_id=cfg[alice.email], runs_on=[label])
        sid = runs.schedule(p, alice, d, req)
        claimed = runs.claim(p, alice, w)
        assert claimed is not None and claimed.scheduled.id == sid
        return sid, claimed.run.id

    done_sid, run = run_now()
    rel = f".lightly/runs/{run}/report.pdf"
    (api.mount / "out" / rel).parent.mkdir(parents=True)
    (api.mount / "out" / rel).write_bytes(b"%PDF-1.4 report")
    (api.mount / "out" / f".lightly/runs/{run}/embeddings.csv").write_text(
        "filenames,embedding_0,embedding_1,labels\na.png,0.1,0.2,0\nb.png,0.3,0.4,0\n"
    )
    artifact = runs.add_artifact(
        p,
        alice,
        run,
        ArtifactCreateRequest(type="REPORT_PDF", file_name="report.pdf", storage_location=rel),
    )
    tag = tags.record_run_selection(p, alice, run, ["a.png", "b.png"])
    runs.update_state(p, alice, run, RunStateUpdate(state="COMPLETED", message="done"))
    _, live_run = run_now()
    open_sid = runs.schedule(
        p, alice, d, DockerRunScheduledCreateRequest(config_id=cfg[alice.email], runs_on=[label])
    )
    sample = tags.mappings(p, alice, d, "_id")[0]
    return World(
        ids={
            "dataset_id": d,
            "name": name,
            "tag_id": tag,
            "run_id": run,
            "live_run_id": live_run,
            "artifact_id": artifact,
            "scheduled_id": open_sid,
            "done_scheduled_id": done_sid,
            "worker_id": w,
            "sample_id": sample,
            "embedding_id": run,
            "label": label,
        },
        configs={"alice": cfg[alice.email], "bob": cfg[bob.email], "carol": cfg[carol.email]},
        tokens={"alice": api.token, "bob": api.other, "carol": carol_token, "anonymous": None},
    )


Body = Callable[[World, str], Any]
#: A valid signed URL for the route, as alice would be handed it.
Signer = Callable[[Platform, User, World], str]


@dataclass(frozen=True)
class Case:
    """How to call one route and who may."""

    rule: str
    ok: tuple[int, ...] = (200,)
    body: Body | None = None
    params: dict[str, str] = field(default_factory=dict)
    #: Path parameters taken from another world id (``{"run_id": "live_run_id"}``).
    ids: dict[str, str] = field(default_factory=dict)
    signer: Signer | None = None  # signed-url routes
    form: Body | None = None  # a form body (the sign-in form)


def _new_dataset(w: World, role: str) -> Any:
    return {"name": f"new-{next(_COUNTER)}", "type": "Images"}


def _config_body(w: World, role: str) -> Any:
    return {
        "config": {"worker_config": {}, "lightly_config": {}},
        "selectionConfig": {"n_samples": 1},
    }


def _lightly_config_body(w: World, role: str) -> Any:
    return {"version": "V4", "config": {"workerType": "FULL", "selection": {"nSamples": 1}}}


def _schedule_body(w: World, role: str) -> Any:
    config = w.configs.get(role, w.configs["alice"])
    return {"configId": config, "priority": "MID", "runsOn": [w.ids["label"]]}


def _tag_body(w: World, role: str) -> Any:
    return {
        "name": f"tag-{next(_COUNTER)}",
        "prevTagId": w.ids["tag_id"],
        "bitMaskData": "0x1",
        "totSize": 2,
    }


def _const(value: Any) -> Body:
    return lambda w, role: value


def _sign_in(w: World, role: str) -> Any:
    return {"token": w.tokens[role] or "", "next": "/"}


BASE = "http://testserver/"


def _artifact_url(p: Platform, alice: User, w: World) -> str:
    return runs.read_url(p, alice, w.ids["run_id"], w.ids["artifact_id"], BASE)


def _sample_url(p: Platform, alice: User, w: World) -> str:
    from thresher.platform import samples

    return str(samples.read_url(p, alice, w.ids["dataset_id"], w.ids["sample_id"], BASE))


def _embeddings_url(p: Platform, alice: User, w: World) -> str:
    from thresher.platform import embeddings

    return str(embeddings.read_url(p, alice, w.ids["dataset_id"], w.ids["embedding_id"], BASE))


def _listed_file_url(p: Platform, alice: User, w: World) -> str:
    from thresher.platform import listing

    page = listing.list_page(p, alice, w.ids["dataset_id"], "samples", BASE)
    return page.data[0].read_url


OWN_DATASET = "dataset:own"
READ, SCHEDULE, TAG = "dataset:read", "dataset:schedule", "dataset:tag"
EXPORT, DOWNLOAD = "dataset:export", "dataset:download"

#: Every route of the app: (method, path) -> how to call it and its rule.
ROUTES: dict[tuple[str, str], Case] = {
    # FastAPI's own pages
    ("GET", "/openapi.json"): Case("public"),
    ("GET", "/docs"): Case("public"),
    ("GET", "/docs/assets/swagger-ui-bundle.js"): Case("public"),
    ("GET", "/docs/assets/swagger-ui.css"): Case("public"),
    ("GET", "/docs/assets/favicon.png"): Case("public"),
    # versions
    ("GET", "/v1/versions/pip/minimum"): Case("public"),
    ("GET", "/v1/versions/pip/latest"): Case("public"),
    # datasets
    ("POST", "/v1/datasets"): Case("any-user", (201,), _new_dataset),
    ("GET", "/v1/datasets"): Case("any-user"),
    ("GET", "/v1/datasets/query/name/{name}"): Case("any-user"),
    ("GET", "/v1/datasets/{dataset_id}"): Case(READ),
    ("DELETE", "/v1/datasets/{dataset_id}"): Case(OWN_DATASET, (204,)),
    # datasources
    ("PUT", "/v1/datasets/{dataset_id}/datasource"): Case(
        OWN_DATASET, (204,), _const({"type": "LOCAL", "purpose": "INPUT", "fullPath": "in"})
    ),
    ("GET", "/v1/datasets/{dataset_id}/datasource"): Case(READ),
    ("GET", "/v1/datasets/{dataset_id}/datasource/verify"): Case(SCHEDULE),
    # datasource listing (platform/listing.py)
    ("GET", "/v1/datasets/{dataset_id}/datasource/list"): Case(READ),
    ("GET", "/v1/datasets/{dataset_id}/datasource/list/dnc"): Case(READ, params={"dncShards": "2"}),
    ("GET", "/v1/datasets/{dataset_id}/datasource/metadata/list"): Case(READ),
    ("GET", "/v1/datasets/{dataset_id}/datasource/metadata/list/dnc"): Case(
        READ, params={"dncShards": "1"}
    ),
    ("GET", "/v1/datasets/{dataset_id}/datasource/predictions/list"): Case(
        READ, params={"taskName": "det"}
    ),
    ("GET", "/v1/datasets/{dataset_id}/datasource/predictions/list/dnc"): Case(
        READ, params={"taskName": "det", "dncShards": "1"}
    ),
    ("GET", "/v1/datasets/{dataset_id}/datasource/readurlRedirect"): Case(
        "signed-url", signer=_listed_file_url
    ),
    ("GET", "/v1/datasets/{dataset_id}/datasource/processedUntilTimestamp"): Case(READ),
    ("PUT", "/v1/datasets/{dataset_id}/datasource/processedUntilTimestamp"): Case(
        SCHEDULE, (204,), _const({"processedUntilTimestamp": 1700000000})
    ),
    # samples and tags
    ("GET", "/v1/datasets/{dataset_id}/mappings"): Case(READ, params={"field": "fileName"}),
    ("GET", "/v1/datasets/{dataset_id}/tags"): Case(READ),
    ("POST", "/v1/datasets/{dataset_id}/tags"): Case(TAG, (201,), _tag_body),
    ("GET", "/v1/datasets/{dataset_id}/tags/{tag_id}"): Case(READ),
    ("DELETE", "/v1/datasets/{dataset_id}/tags/{tag_id}"): Case(TAG, (204,)),
    ("GET", "/v1/docker/runs/{run_id}/tags"): Case(READ),
    # workers and configs (objects of a user, not of a dataset)
    ("POST", "/v1/docker/worker"): Case("any-user", (201,), _const({"name": "another-gpu"})),
    ("GET", "/v1/docker/worker"): Case("any-user"),
    ("DELETE", "/v1/docker/worker/{worker_id}"): Case("own-object", (204,)),
    ("POST", "/v1/docker/worker/config/v3"): Case("any-user", (201,), _config_body),
    ("POST", "/v1/docker/worker/config/vX"): Case("any-user", (201,), _lightly_config_body),
    # scheduling
    ("POST", "/v1/datasets/{dataset_id}/docker/worker/schedule"): Case(
        SCHEDULE, (201,), _schedule_body
    ),
    ("GET", "/v1/datasets/{dataset_id}/docker/worker/schedule"): Case(READ),
    ("PUT", "/v1/datasets/{dataset_id}/docker/worker/schedule/{scheduled_id}"): Case(
        SCHEDULE, (204,)
    ),
    ("POST", "/v1/datasets/{dataset_id}/docker/worker/schedule/{scheduled_id}/cancel"): Case(
        SCHEDULE
    ),
    # runs and artifacts
    ("GET", "/v1/docker/runs"): Case("any-user"),
    ("GET", "/v1/docker/runs/query/datasetId/{dataset_id}"): Case(READ),
    ("GET", "/v1/docker/runs/schedule/{scheduled_id}"): Case(
        READ, ids={"scheduled_id": "done_scheduled_id"}
    ),
    ("GET", "/v1/docker/runs/{run_id}"): Case(READ),
    ("GET", "/v1/docker/runs/{run_id}/artifacts/{artifact_id}/readurl"): Case(DOWNLOAD),
    ("GET", "/v1/artifacts/{artifact_id}"): Case("signed-url", signer=_artifact_url),
    # the worker's routes
    ("POST", "/v1/docker/worker/{worker_id}/heartbeat"): Case(
        "own-object", (204,), _const({"state": "IDLE"})
    ),
    ("POST", "/v1/docker/worker/{worker_id}/claim"): Case("own-object", (200,)),
    ("PUT", "/v1/docker/runs/{run_id}/state"): Case(
        "worker-of-owner", (204,), _const({"state": "EMBEDDING"}), ids={"run_id": "live_run_id"}
    ),
    ("POST", "/v1/docker/runs/{run_id}/artifacts"): Case(
        "worker-of-owner",
        (201,),
        _const({"type": "LOG", "fileName": "log.txt", "storageLocation": "x/log.txt"}),
    ),
    ("POST", "/v1/docker/runs/{run_id}/selection"): Case(
        "worker-of-owner", (201,), _const({"filenames": ["a.png"]})
    ),
    # sharing
    ("POST", "/v1/datasets/{dataset_id}/collaboration/access"): Case(
        OWN_DATASET, (201,), _const({"accessType": "WRITE", "users": ["bob@example.com"]})
    ),
    ("GET", "/v1/datasets/{dataset_id}/collaboration/access"): Case(OWN_DATASET),
    # exports, sample read URLs, embeddings (export_routes.py)
    ("GET", "/v1/datasets/{dataset_id}/tags/{tag_id}/export/basic/filenames"): Case(EXPORT),
    ("GET", "/v1/datasets/{dataset_id}/tags/{tag_id}/export/basic/filenamesAndReadUrls"): Case(
        EXPORT
    ),
    ("GET", "/v1/datasets/{dataset_id}/tags/{tag_id}/export/LabelStudio/tasks"): Case(EXPORT),
    ("GET", "/v1/datasets/{dataset_id}/tags/{tag_id}/export/LabelBox/datarows"): Case(EXPORT),
    ("GET", "/v1/datasets/{dataset_id}/tags/{tag_id}/export/LabelBoxV4/datarows"): Case(EXPORT),
    ("GET", "/v1/datasets/{dataset_id}/samples/{sample_id}/readurl"): Case(DOWNLOAD),
    ("GET", "/v1/datasets/{dataset_id}/samples/{sample_id}/readurlRedirect"): Case(
        "signed-url", signer=_sample_url
    ),
    ("GET", "/v1/datasets/{dataset_id}/embeddings"): Case(DOWNLOAD),
    ("GET", "/v1/datasets/{dataset_id}/embeddings/{embedding_id}/readCSVUrl"): Case(DOWNLOAD),
    ("GET", "/v1/datasets/{dataset_id}/embeddings/{embedding_id}/csv"): Case(
        "signed-url", signer=_embeddings_url
    ),
    # the web page (server/web)
    ("GET", "/"): Case("public"),
    ("POST", "/signin"): Case("sign-in", (303,), form=_sign_in),
    ("POST", "/signout"): Case("public", (303,)),
    ("GET", "/datasets/{dataset_id}"): Case("web:read"),
    ("GET", "/datasets/{dataset_id}/tags/{tag_id}"): Case("web:read"),
    ("GET", "/datasets/{dataset_id}/samples/{sample_id}/thumbnail"): Case("web:read"),
    ("GET", "/datasets/{dataset_id}/samples/{sample_id}/original"): Case("web:download", (303,)),
    ("GET", "/runs/{run_id}/artifacts/{artifact_id}"): Case("web:download", (303,)),
}


def _walk(routes: list[Any], prefix: str, found: set[tuple[str, str]]) -> None:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI >= 0.150 keeps an included router as one entry
            context = route.include_context
            _walk(included.routes, prefix + context.prefix, found)
        elif isinstance(route, APIRoute | Route):
            for method in route.methods or ():
                if method != "HEAD":  # Starlette adds HEAD to every GET
                    found.add((method, prefix + route.path))
        else:
            raise AssertionError(f"A route of an unknown kind: {route!r}; teach _walk about it.")


def _app_routes(home: Path) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, read from the app itself."""
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'routes.db'}")
    app = create_app(settings, migrate=False, crash_timer=False)
    found: set[tuple[str, str]] = set()
    _walk(list(app.routes), "", found)
    # A safety net should the walk miss a kind of route: the OpenAPI schema's operations.
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            assert (method.upper(), path) in found, (method, path)
    return found


def test_the_table_names_every_route_of_the_app(tmp_path: Path) -> None:
    app = _app_routes(tmp_path)
    missing = sorted(app - ROUTES.keys())
    assert not missing, (
        f"Routes without a row in ROUTES (give each its access rule here): {missing}"
    )
    gone = sorted(ROUTES.keys() - app)
    assert not gone, f"ROUTES names routes the app does not have: {gone}"


@pytest.fixture
def carol(api: Api) -> str:
    _, token = users.add_user(api.platform, "carol@example.com")
    return token


@pytest.fixture
def ready(api: Api) -> Api:
    (api.mount / "in").mkdir()
    (api.mount / "in" / "a.png").write_bytes(b"\x89PNG a")
    (api.mount / "in" / "b.png").write_bytes(b"\x89PNG b")
    return api


def _allowed(rule: str, role: str) -> bool:
    kind, _, action = rule.partition(":")
    if kind == "public":
        return True
    if role == "anonymous":
        return False
    if kind in ("any-user", "sign-in"):
        return True
    if kind in ("dataset", "web"):
        return role == "alice" or (role == "bob" and action != "own")
    return role == "alice"  # own-object, worker-of-owner


def _stranger_sees_nothing(rule: str, role: str) -> bool:
    """Whether the caller is refused with the answer an unknown id gets (404)."""
    kind, _, _ = rule.partition(":")
    return role == "carol" and kind in ("dataset", "web")


def _call(api: Api, method: str, path: str, case: Case, w: World, role: str) -> Any:
    ids = {k: w.ids[v] for k, v in case.ids.items()}
    url = path.format(**{**w.ids, **ids})
    params = dict(case.params)
    token = w.tokens[role]
    if token is not None:
        params["token"] = token
    if case.form is not None:  # a form carries the token itself
        form = case.form(w, role)
        return api.client.request(method, url, data=form, follow_redirects=False)
    body = case.body(w, role) if case.body else None
    return api.client.request(method, url, params=params, json=body, follow_redirects=False)


def _signed_url_check(api: Api, path: str, signer: Signer, w: World) -> None:
    """No token needed; a missing or wrong signature is 403 whoever asks, token or not."""
    p: Platform = api.platform
    url = signer(p, users.authenticate(p, api.token), w)
    parts = urlsplit(url)
    assert parts.path == path.format(**w.ids)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    r = api.client.get(parts.path, params=query)
    assert r.status_code == 200, r.text
    wrong: list[dict[str, str]] = [{}]  # nothing signed
    for k, v in query.items():
        wrong.append({key: value for key, value in query.items() if key != k})  # one missing
        wrong.append({**query, k: ("1" if v[:1] == "0" else "0") + v[1:]})  # one altered
    for role in ROLES:
        token = w.tokens[role]
        auth = {"token": token} if token else {}
        for bad in wrong:
            r = api.client.get(parts.path, params={**bad, **auth})
            assert r.status_code == 403, (path, role, bad, r.status_code, r.text[:300])
            assert set(r.json()) == {"code", "error"}


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES), ids=lambda x: str(x))
def test_each_route_answers_each_caller(ready: Api, carol: str, method: str, path: str) -> None:
    api = ready
    case = ROUTES[(method, path)]
    if case.rule == "signed-url":
        assert case.signer is not None
        _signed_url_check(api, path, case.signer, _build(api, carol))
        return
    for role in ROLES:
        w = _build(api, carol)
        r = _call(api, method, path, case, w, role)
        what = f"{method} {path} as {role} ({case.rule})"
        if _allowed(case.rule, role):
            assert r.status_code in case.ok, f"{what}: {r.status_code} {r.text[:300]}"
        elif case.rule.startswith("web:") and role == "anonymous":
            assert r.status_code == 303 and r.headers["location"].startswith("/?next="), what
        elif _stranger_sees_nothing(case.rule, role):
            assert r.status_code == 404, f"{what}: {r.status_code} {r.text[:300]}"
            if path.startswith("/v1/"):
                body = r.json()
                assert set(body) == {"code", "error"}, what
                assert body["code"] in ("DATASET_UNKNOWN", "DOCKER_RUN_UNKNOWN"), what
        else:
            assert r.status_code == 403, f"{what}: {r.status_code} {r.text[:300]}"
            if path.startswith("/v1/"):  # the web page answers with a page
                body = r.json()
                assert set(body) == {"code", "error"}, what
                if role == "anonymous":
                    assert body["code"] == "FORBIDDEN", what
