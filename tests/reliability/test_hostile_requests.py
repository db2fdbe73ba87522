"""Hostile requests against the server (issue 14, item 6): each is refused, and nothing is written.

* **Path traversal** in every name or path a request carries: tag names, dataset names,
  LOCAL datasource paths, artifact ``storageLocation`` and ``fileName``, the file names of a
  worker's selection, ids in the URL path; and links (or a FIFO) that a worker could leave in
  the LIGHTLY or INPUT folder, which the server must never follow out of the datasource.
* **Oversized bodies**: 413 ``PAYLOAD_TOO_LARGE`` above ``THRESHER_MAX_BODY_BYTES``; against a
  real ``thresher server start`` process, a declared 100 MB body is refused before a byte of
  it is sent, and a chunked one once the limit has streamed in.
* **Enumeration**: a stranger gets the same status and the same body (but for the id) for a
  dataset, run or scheduled run that exists and one that does not.
* **Read URLs**: expired, one character of the signature changed, or signed for another
  sample, artifact or kind of link: 403. (``test_route_access`` checks a missing or altered
  parameter of each signed route; ``test_secrets`` that the comparison is constant-time.)
* **Script- and SQL-ish names** on the web page, in a real browser: no dialog, the text shown
  literally, and the database answers as before.

"Nothing written": the rows of every table and the files under the mount are the same before
and after each refused request (:func:`_state`).
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from sqlalchemy import select as sql_select

from tests.server.conftest import Api, open_api
from tests.server.server_process import running_server
from tests.server.test_route_access import World, _build
from thresher.platform import embeddings, runs, samples, users
from thresher.platform.core import Platform
from thresher.platform.models import Base, Sample
from thresher.platform.settings import SELECTION_BODY_FACTOR, Settings

SECRET = b"root:x:0:0:the secret outside every datasource\n"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """tests/server's app (:func:`open_api`) with INPUT ``in`` holding two files."""
    with open_api(tmp_path) as a:
        (a.mount / "in").mkdir()
        (a.mount / "in" / "a.png").write_bytes(b"\x89PNG a")
        (a.mount / "in" / "b.png").write_bytes(b"\x89PNG b")
        yield a


@pytest.fixture
def world(api: Api) -> World:
    """alice's dataset (shared with bob) with a completed run, its artifact, tag and samples."""
    _, carol = users.add_user(api.platform, "carol@example.com")
    return _build(api, carol)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A secret file outside the mount, as /etc/passwd is."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "passwd").write_bytes(SECRET)
    return folder


def _state(api: Api) -> tuple[dict[str, list[tuple[Any, ...]]], list[tuple[str, int, str]]]:
    """Every row of every table, and every file under the mount (name, size, content hash)."""
    p: Platform = api.platform
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with p.session() as s:
        for table in Base.metadata.sorted_tables:
            if table.name == "workers":  # heartbeats move last_seen; nothing else is there
                continue
            rows[table.name] = sorted(
                (tuple(map(repr, r)) for r in s.execute(sql_select(table))), key=repr
            )
    files = []
    for path in sorted(api.mount.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files.append((str(path.relative_to(api.mount)), path.stat().st_size, digest))
        else:
            files.append(
                (str(path.relative_to(api.mount)), -1, "link" if path.is_symlink() else "")
            )
    return rows, files


def _refused(api: Api, status: int, method: str, url: str, **kw: Any) -> dict[str, Any]:
    """Send the request as alice; it must answer ``status`` with Lightly's body, writing nothing."""
    before = _state(api)
    kw.setdefault("params", {})["token"] = api.token
    r = api.client.request(method, url, follow_redirects=False, **kw)
    assert r.status_code == status, (method, url, r.status_code, r.text[:400])
    body: dict[str, Any] = r.json()
    assert set(body) == {"code", "error"}, body
    assert _state(api) == before, f"{method} {url} was refused but changed something"
    return body


# --- path traversal in names and paths --------------------------------------------------------

TRAVERSALS = [
    "../x",
    "../../etc/passwd",
    "a/b",
    "/etc/passwd",
    "x\x00y",
    "..",
    ".hidden",
    "C:\\Windows\\x",
    "a\\..\\..\\b",
    "x\ny",
    "a" * 300,
    "<script>alert(1)</script>",
    "'; DROP TABLE datasets;--",
]


@pytest.mark.parametrize("name", TRAVERSALS, ids=repr)
def test_a_tag_name_that_is_a_path_or_markup_is_refused(api: Api, world: World, name: str) -> None:
    d, parent = world.ids["dataset_id"], world.ids["tag_id"]
    body = {"name": name, "prevTagId": parent, "bitMaskData": "0x1", "totSize": 2}
    _refused(api, 400, "POST", f"/v1/datasets/{d}/tags", json=body)


@pytest.mark.parametrize(
    "full_path",
    ["../..", "../../etc", "/etc", "~/x", "in/../../x", "file:///etc", "C:\\x", "in\\..\\..", ".."],
)
def test_a_local_datasource_outside_the_mount_is_refused(
    api: Api, world: World, full_path: str
) -> None:
    body = {"type": "LOCAL", "purpose": "LIGHTLY", "fullPath": full_path}
    _refused(api, 400, "PUT", f"/v1/datasets/{world.ids['dataset_id']}/datasource", json=body)


@pytest.mark.parametrize(
    "location",
    [
        "../../etc/passwd",
        "/etc/passwd",
        ".lightly/../../x",
        ".lightly/runs/../../../x",
        "..\\..\\x",
        "file:///etc/passwd",
        "s3://another-bucket/x",
        "a\x00b",
        "a//b",
        "",
    ],
    ids=repr,
)
def test_an_artifact_outside_the_lightly_datasource_is_refused(
    api: Api, world: World, location: str
) -> None:
    body = {"type": "LOG", "fileName": "log.txt", "storageLocation": location}
    _refused(api, 400, "POST", f"/v1/docker/runs/{world.ids['run_id']}/artifacts", json=body)


@pytest.mark.parametrize(
    "file_name",
    ["../../x.pdf", "a/b.pdf", "a\\b.pdf", 'x"; y.pdf', "x\r\nSet-Cookie: a=b", "", "a" * 300],
    ids=repr,
)
def test_an_artifact_file_name_that_is_a_path_or_a_header_is_refused(
    api: Api, world: World, file_name: str
) -> None:
    body = {"type": "LOG", "fileName": file_name, "storageLocation": "x/log.txt"}
    _refused(api, 400, "POST", f"/v1/docker/runs/{world.ids['run_id']}/artifacts", json=body)


@pytest.mark.parametrize(
    "names",
    [["../../etc/passwd"], ["/etc/passwd"], ["a\x00b.png"], ["a.png", "x/../../y.png"], ["a//b"]],
    ids=repr,
)
def test_a_selection_naming_files_outside_input_is_refused(
    api: Api, world: World, names: list[str]
) -> None:
    run = world.ids["live_run_id"]
    _refused(api, 400, "POST", f"/v1/docker/runs/{run}/selection", json={"filenames": names})


def test_ids_that_are_paths_name_nothing(api: Api, world: World) -> None:
    d = world.ids["dataset_id"]
    evil = quote("../../etc/passwd", safe="")
    for url in (
        f"/v1/datasets/{evil}",
        f"/v1/datasets/{d}/tags/{evil}",
        f"/v1/docker/runs/{evil}",
        f"/v1/datasets/{d}/samples/{evil}/readurl",
    ):
        _refused(api, 404, "GET", url)
    # an encoded '/' in an id matches no route at all
    _refused(api, 404, "GET", f"/v1/artifacts/{evil}", params={"expires": "1", "signature": "0"})
    url = f"/v1/datasets/{d}/samples/{evil}/readurlRedirect"
    _refused(api, 404, "GET", url, params={"publicToken": "9999999999.00"})


def test_a_dataset_name_is_text_never_a_path(api: Api) -> None:
    before = _state(api)[1]
    for name in ("../../../tmp/escape", "/etc/passwd", "a\\..\\b"):
        r = api.client.post("/v1/datasets", params=api.auth(), json={"name": name})
        assert r.status_code == 201, r.text
        got = api.client.get(f"/v1/datasets/{r.json()['id']}", params=api.auth())
        assert got.json()["name"] == name
    assert _state(api)[1] == before  # no file or folder appeared
    _refused(api, 400, "POST", "/v1/datasets", json={"name": "a" * 300})


def test_a_stored_sample_name_outside_input_is_never_read(
    api: Api, world: World, outside: Path
) -> None:
    """Rows written before the selection was checked: the read URL still opens nothing."""
    p: Platform = api.platform
    d = world.ids["dataset_id"]
    with p.session() as s:
        sample = s.get(Sample, world.ids["sample_id"])
        assert sample is not None
        sample.file_name = "../../outside/passwd"
    alice = users.authenticate(p, api.token)
    url = urlsplit(samples.read_url(p, alice, d, world.ids["sample_id"], "http://testserver/"))
    r = api.client.get(url.path, params={k: v[0] for k, v in parse_qs(url.query).items()})
    assert r.status_code == 400 and SECRET not in r.content, r.text


# --- links and FIFOs a worker leaves in a datasource ------------------------------------------


def _artifact_bytes(api: Api, world: World, location: str) -> Any:
    body = {"type": "LOG", "fileName": "log.txt", "storageLocation": location}
    run = world.ids["run_id"]
    r = api.client.post(f"/v1/docker/runs/{run}/artifacts", params=api.auth(), json=body)
    assert r.status_code == 201, r.text
    url = api.client.get(
        f"/v1/docker/runs/{run}/artifacts/{r.json()['id']}/readurl", params=api.auth()
    ).json()
    return api.client.get(url)


@pytest.mark.timeout(120)
def test_links_out_of_a_datasource_and_fifos_are_never_opened(
    api: Api, world: World, outside: Path
) -> None:
    out = api.mount / "out"
    (out / "evil").symlink_to(outside)  # a linked folder
    (out / "passwd.txt").symlink_to(outside / "passwd")  # a linked file
    os.mkfifo(out / "pipe.pdf")  # opening it would block the server's thread for ever
    for location in ("evil/passwd", "passwd.txt", "pipe.pdf"):
        r = _artifact_bytes(api, world, location)
        assert r.status_code == 404, (location, r.status_code)
        assert SECRET not in r.content and r.json()["code"] == "DOCKER_RUN_ARTIFACT_UNAVAILABLE"
        assert "link out of the LIGHTLY datasource" in r.json()["error"]
    # A link that stays inside is still served (the check is not "no links").
    (out / "inside.txt").symlink_to(out / ".lightly" / "runs" / world.ids["run_id"] / "report.pdf")
    assert _artifact_bytes(api, world, "inside.txt").content == b"%PDF-1.4 report"

    # INPUT: a selected file replaced by a link out after the run.
    p: Platform = api.platform
    alice = users.authenticate(p, api.token)
    d = world.ids["dataset_id"]
    (api.mount / "in" / "a.png").unlink()
    (api.mount / "in" / "a.png").symlink_to(outside / "passwd")
    with p.session() as s:
        sample_id = s.scalar(
            sql_select(Sample.id).where(Sample.dataset_id == d, Sample.file_name == "a.png")
        )
    assert sample_id is not None
    url = urlsplit(samples.read_url(p, alice, d, sample_id, "http://testserver/"))
    r = api.client.get(url.path, params={k: v[0] for k, v in parse_qs(url.query).items()})
    assert r.status_code == 404 and SECRET not in r.content, r.text

    # The web page's thumbnail of that sample: a link out of LIGHTLY gives the placeholder.
    thumbs = out / ".lightly" / "thumbnails"
    thumbs.mkdir(parents=True, exist_ok=True)
    (thumbs / "a_thumb.png").symlink_to(outside / "passwd")
    r = api.client.post("/signin", data={"token": api.token}, follow_redirects=False)
    assert r.status_code == 303
    r = api.client.get(f"/datasets/{d}/samples/{sample_id}/thumbnail")
    assert r.status_code == 200 and SECRET not in r.content and b"no thumbnail" in r.content


# --- oversized bodies ---------------------------------------------------------------------------


def test_bodies_over_the_limit_are_413_and_write_nothing(api: Api, world: World) -> None:
    limit = Settings(home=Path("."), database_url="sqlite://").max_body_bytes
    d = world.ids["dataset_id"]
    huge_mask = "0x" + "f" * (limit + 1024)
    body = {
        "name": "huge",
        "prevTagId": world.ids["tag_id"],
        "bitMaskData": huge_mask,
        "totSize": 2,
    }
    got = _refused(api, 413, "POST", f"/v1/datasets/{d}/tags", json=body)
    assert got["code"] == "PAYLOAD_TOO_LARGE" and "THRESHER_MAX_BODY_BYTES" in got["error"]
    got = _refused(api, 413, "POST", "/v1/datasets", json={"name": "n" * (limit + 1)})
    # A body without Content-Length is counted as it streams.
    chunks = (b" " * (1 << 20) for _ in range(limit // (1 << 20) + 2))
    _refused(api, 413, "POST", "/v1/datasets", content=chunks)
    # Real bodies fit: a tag over a million samples, and a selection of a million 100-character
    # names (the selection route may be SELECTION_BODY_FACTOR times the limit).
    tag_of_a_million = len(json.dumps({"bitMaskData": hex((1 << 1_000_000) - 1)}))
    selection_of_a_million = 1_000_000 * (100 + 4)
    assert tag_of_a_million * 16 < limit
    assert selection_of_a_million * 2 < limit * SELECTION_BODY_FACTOR
    # A tag body of several MB is refused for its contents, not its size: bits beyond the samples.
    body = {"name": "big", "prevTagId": world.ids["tag_id"], "bitMaskData": huge_mask[: 4 << 20]}
    _refused(api, 400, "POST", f"/v1/datasets/{d}/tags", json={**body, "totSize": 2})


def _http_head(port: int, path: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"{extra}\r\n"
    ).encode()


def _status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def _answer(sock: socket.socket) -> bytes:
    """One whole HTTP answer (head and a Content-Length body) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(4096)
        if not more:
            return data
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        more = sock.recv(4096)
        if not more:
            break
        body += more
    return head + b"\r\n\r\n" + body


@pytest.mark.timeout(300)
def test_a_real_server_refuses_a_large_body_before_reading_it(tmp_path: Path) -> None:
    limit = 1 << 20
    env = {"THRESHER_PREFECT_SERVER": "off", "THRESHER_MAX_BODY_BYTES": str(limit)}
    with running_server(tmp_path / "home", env=env) as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        path = f"/v1/datasets?token={srv.token}"
        # Declared 100 MB: the answer comes before one byte of the body is sent.
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(_http_head(port, path, f"Content-Length: {100 * 1024 * 1024}\r\n"))
            answer = _answer(sock)
        assert _status(answer) == 413 and b"PAYLOAD_TOO_LARGE" in answer, answer[:300]
        # Chunked, no length: refused once about the limit has arrived, not after 64 MB.
        sent = 0
        chunk = b" " * (64 * 1024)
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        answer = b""
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(_http_head(port, path, "Transfer-Encoding: chunked\r\n"))
            try:
                while sent < 64 * 1024 * 1024:
                    readable, _, _ = select.select([sock], [], [], 0)
                    if readable:
                        break
                    sock.sendall(framed)
                    sent += len(chunk)
                answer = _answer(sock)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server closed the connection after answering
        assert answer and _status(answer) == 413, answer[:300]
        assert sent < 32 * 1024 * 1024, f"the server read {sent} bytes before refusing"
        # The server lives on, and nothing was created.
        r = httpx.get(f"{srv.url}/v1/datasets", params={"token": srv.token}, timeout=30)
        assert r.status_code == 200 and r.json() == []


# --- enumeration --------------------------------------------------------------------------------


def _neighbour(hex_id: str) -> str:
    return f"{(int(hex_id, 16) + 1) % (1 << 96):024x}"


def test_a_stranger_cannot_tell_existing_ids_from_unknown_ones(api: Api, world: World) -> None:
    carol = world.tokens["carol"]
    assert carol is not None
    real = {k: world.ids[k] for k in ("dataset_id", "run_id", "done_scheduled_id")}
    probes = [
        ("GET", "/v1/datasets/{dataset_id}"),
        ("GET", "/v1/datasets/{dataset_id}/datasource"),
        ("GET", "/v1/datasets/{dataset_id}/datasource/verify"),
        ("GET", "/v1/datasets/{dataset_id}/tags"),
        ("GET", "/v1/datasets/{dataset_id}/mappings"),
        ("GET", "/v1/datasets/{dataset_id}/docker/worker/schedule"),
        ("GET", "/v1/datasets/{dataset_id}/embeddings"),
        ("GET", "/v1/datasets/{dataset_id}/collaboration/access"),
        ("DELETE", "/v1/datasets/{dataset_id}"),
        ("GET", "/v1/docker/runs/query/datasetId/{dataset_id}"),
        ("GET", "/v1/docker/runs/{run_id}"),
        ("GET", "/v1/docker/runs/{run_id}/tags"),
        ("GET", "/v1/docker/runs/schedule/{done_scheduled_id}"),
        ("GET", "/datasets/{dataset_id}"),
    ]
    before = _state(api)
    for method, template in probes:
        answers = []
        for ids in (
            real,
            {k: _neighbour(v) for k, v in real.items()},  # the next id, as a counter would try
            {k: os.urandom(12).hex() for k in real},
        ):
            r = api.client.request(
                method,
                template.format(**ids),
                params={"token": carol, "field": "fileName"},  # mappings needs its field
                follow_redirects=False,
            )
            text = r.text
            for v in ids.values():
                text = text.replace(v, "ID")
            answers.append((r.status_code, text))
        assert answers[0] == answers[1] == answers[2], (method, template, answers)
        assert answers[0][0] == 404, (method, template, answers[0])
    # The web page signed in as carol: the same.
    r = api.client.post("/signin", data={"token": carol}, follow_redirects=False)
    assert r.status_code == 303
    pages = []
    for d in (real["dataset_id"], _neighbour(real["dataset_id"])):
        r = api.client.get(f"/datasets/{d}", follow_redirects=False)
        pages.append((r.status_code, r.text.replace(d, "ID")))
    assert pages[0] == pages[1] and pages[0][0] == 404
    assert _state(api) == before
    # The owner still sees it (the DELETE probe did nothing).
    assert (
        api.client.get(f"/v1/datasets/{real['dataset_id']}", params=api.auth()).status_code == 200
    )


# --- expired and tampered read URLs -------------------------------------------------------------


def _flip(text: str, at: int) -> str:
    return text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1 :]


def _get(api: Api, url: str) -> Any:
    parts = urlsplit(url)
    return api.client.get(parts.path, params={k: v[0] for k, v in parse_qs(parts.query).items()})


def test_read_urls_expired_tampered_or_for_another_object_are_refused(
    api: Api, world: World
) -> None:
    p: Platform = api.platform
    alice = users.authenticate(p, api.token)
    d, base = world.ids["dataset_id"], "http://testserver/"
    with p.session() as s:
        sample_ids = list(s.scalars(sql_select(Sample.id).where(Sample.dataset_id == d)))
    assert len(sample_ids) == 2
    a, b = (samples.read_url(p, alice, d, s, base) for s in sample_ids)
    artifact = runs.read_url(p, alice, world.ids["run_id"], world.ids["artifact_id"], base)
    emb = embeddings.read_url(p, alice, d, world.ids["embedding_id"], base)
    for url in (a, b, artifact, emb):
        assert _get(api, url).status_code == 200, url

    def refused(url: str, why: str) -> None:
        r = _get(api, url)
        assert r.status_code == 403, (why, url, r.status_code, r.text[:300])
        assert set(r.json()) == {"code", "error"} and r.json()["code"] == "FORBIDDEN"

    # expired: correctly signed, one second in the past
    past = int(time.time()) - 1
    sample_token = samples.public_token(p, samples.SUBJECT_PREFIX + sample_ids[0], past)
    refused(a.split("publicToken=")[0] + f"publicToken={sample_token}", "expired sample")
    expired_artifact = (
        f"{base}v1/artifacts/{world.ids['artifact_id']}?expires={past}"
        f"&signature={p.secrets.sign(world.ids['artifact_id'], past)}"
    )
    refused(expired_artifact, "expired artifact")
    emb_token = samples.public_token(p, embeddings.SUBJECT_PREFIX + world.ids["embedding_id"], past)
    refused(emb.split("publicToken=")[0] + f"publicToken={emb_token}", "expired embeddings")

    # one character of the signature changed, at its start, middle and end
    for url in (a, artifact, emb):
        if "publicToken=" in url:  # <expires>.<signature>
            sig_at = url.index(".", url.index("publicToken=")) + 1
        else:
            sig_at = url.index("signature=") + len("signature=")
        for at in (sig_at, (sig_at + len(url)) // 2, len(url) - 1):
            refused(_flip(url, at), f"flipped at {at}")
    # a later expiry with the old signature
    old_expiry = parse_qs(urlsplit(artifact).query)["expires"][0]
    later = str(int(old_expiry) + 10**8)
    refused(artifact.replace(f"expires={old_expiry}", f"expires={later}"), "extended expiry")

    # signed for another object: sample a's token on sample b, the artifact's on another
    # artifact, a sample's token on the embeddings route
    token_a = parse_qs(urlsplit(a).query)["publicToken"][0]
    refused(b.split("publicToken=")[0] + f"publicToken={token_a}", "a's token on b")
    other = _other_artifact(api, world)
    refused(artifact.replace(world.ids["artifact_id"], other), "another artifact")
    refused(emb.split("publicToken=")[0] + f"publicToken={token_a}", "sample token on embeddings")
    signature = parse_qs(urlsplit(artifact).query)["signature"][0]
    expires = parse_qs(urlsplit(artifact).query)["expires"][0]
    refused(a.split("publicToken=")[0] + f"publicToken={expires}.{signature}", "artifact sig")


def _other_artifact(api: Api, world: World) -> str:
    body = {"type": "LOG", "fileName": "log.txt", "storageLocation": "x/log.txt"}
    r = api.client.post(
        f"/v1/docker/runs/{world.ids['run_id']}/artifacts", params=api.auth(), json=body
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# --- script- and SQL-ish names on the web page, in a real browser ------------------------------

CHROMIUM = os.environ.get("THRESHER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCRIPTISH = "<script>alert(1)</script>"
SQLISH = "'; DROP TABLE datasets;--"
ATTRIBUTISH = '"><img src=x onerror=alert(2)>'
MESSAGE = "<img src=x onerror=alert(3)> done"
SELECTED = ["<svg onload=alert(4)>.png", "q'\"><script>alert(5)</script>.jpg", "plain.png"]


@pytest.mark.timeout(600)
def test_markup_and_sql_in_names_show_as_text_in_a_real_browser(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"NO BROWSER TEST: chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from thresher import ApiWorkflowClient
    from thresher.client.http import Http
    from thresher.wire import DatasourcePurpose
    from thresher.worker.api import WorkerApi

    mount = tmp_path / "mount"
    (mount / "in").mkdir(parents=True)
    (mount / "out").mkdir(parents=True)
    env = {"THRESHER_LOCAL_ROOT": str(mount), "THRESHER_PREFECT_SERVER": "off"}
    with running_server(tmp_path / "home", env=env) as srv:
        client = ApiWorkflowClient(token=srv.token, server_url=srv.url)
        for name in (SQLISH, ATTRIBUTISH, SCRIPTISH):  # the last one is the client's current
            client.create_dataset(name)
        client.set_local_config("in", purpose=DatasourcePurpose.INPUT)
        client.set_local_config("out", purpose=DatasourcePurpose.LIGHTLY)
        scheduled = client.schedule_compute_worker_run(selection_config={"n_samples": 3})
        worker = WorkerApi(Http(srv.url, srv.token))
        claimed = worker.claim(worker.register("gpu-1", []))
        assert claimed is not None and claimed.scheduled.id == scheduled
        run = claimed.run.id
        tag = worker.add_selection(run, SELECTED)
        worker.set_state(run, "COMPLETED", MESSAGE)
        d = client.dataset_id
        t = {"token": srv.token}
        for bad in (SCRIPTISH, SQLISH):  # tag names cannot be markup or SQL
            r = httpx.post(
                f"{srv.url}/v1/datasets/{d}/tags",
                params=t,
                json={"name": bad, "prevTagId": tag, "bitMaskData": "0x1", "totSize": 3},
            )
            assert r.status_code == 400, r.text

        dialogs: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page()

                def on_dialog(dialog: Any) -> None:
                    dialogs.append(dialog.message)
                    dialog.dismiss()

                page.on("dialog", on_dialog)
                page.goto(srv.url + "/")
                page.fill('input[name="token"]', srv.token)
                page.click("button[type=submit]")
                page.wait_for_load_state("load")
                listing = page.inner_text("body")
                for name in (SCRIPTISH, SQLISH, ATTRIBUTISH):
                    assert name in listing, name
                page.goto(f"{srv.url}/datasets/{d}")
                assert SCRIPTISH in page.inner_text("body")
                assert MESSAGE in page.inner_text("body")
                page.goto(f"{srv.url}/datasets/{d}/tags/{tag}")
                gallery = page.inner_text("body")
                for name in SELECTED:
                    assert name in gallery, name
                for where in ("/", f"/datasets/{d}", f"/datasets/{d}/tags/{tag}"):
                    page.goto(srv.url + where)
                    page.wait_for_load_state("load")
                    injected = page.evaluate(
                        "document.querySelectorAll('script, [onerror], [onload]').length"
                    )
                    assert injected == 0, where
            finally:
                browser.close()
        assert dialogs == []
        # The database is whole: every dataset is listed under its exact name, and a new one
        # can be made.
        r = httpx.get(f"{srv.url}/v1/datasets", params=t, timeout=30)
        assert sorted(x["name"] for x in r.json()) == sorted([SCRIPTISH, SQLISH, ATTRIBUTISH])
        r = httpx.post(f"{srv.url}/v1/datasets", params=t, json={"name": "after-the-attack"})
        assert r.status_code == 201
        assert client.get_filenames() == SELECTED
