"""The web page: sign-in cookie, dataset page, tag gallery with thumbnails, Prefect link.

Two kinds of tests: FastAPI's TestClient over the service layer (fast, every rule), and a real
headless browser (Debian's chromium driven by Playwright) against a real ``thresher server
start`` process, set up over HTTP as a user and a worker would. The browser test saves its
screenshots under ``$THRESHER_SCREENSHOTS`` (default: the test's temp folder).
"""

from __future__ import annotations

import importlib
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.server.conftest import Api
from tests.server.server_process import running_server
from thresher.platform import configs, datasets, datasources, runs, tags, users, workers
from thresher.platform.models import Run
from thresher.server.auth import COOKIE
from thresher.storage.location import Location
from thresher.storage.thumbnails import write_thumbnails
from thresher.wire import (
    ArtifactCreateRequest,
    CreateDockerWorkerRegistryEntryRequest,
    DatasetCreateRequest,
    DatasourceConfigLocal,
    DockerRunScheduledCreateRequest,
    RunStateUpdate,
)

FLOW_RUN_ID = "0b5e7c1e-9d2a-4c3b-8f00-5a1d2e3f4a5b"
NAMES = ["cars/red.jpg", "cars/blue.jpg", "green.png", "sunset.jpg", "sky.png", "night.jpg"]
COLORS = [(200, 40, 40), (40, 70, 200), (40, 160, 60), (240, 140, 40), (90, 180, 230), (30, 30, 60)]


def _image(k: int) -> bytes:
    """A 320x240 picture (thumbnail 256x192), a different colour and shape each."""
    img = Image.new("RGB", (320, 240), COLORS[k % len(COLORS)])
    d = ImageDraw.Draw(img)
    d.ellipse((60 + 10 * k, 40, 200 + 10 * k, 180), fill=(255, 255, 255))
    d.rectangle((0, 200, 320, 240), fill=(20, 20, 20))
    out = io.BytesIO()
    img.save(out, format="PNG" if NAMES[k % len(NAMES)].endswith(".png") else "JPEG")
    return out.getvalue()


def _write_files(mount: Path, run_id: str, names: list[str], thumbs: bool = True) -> None:
    """INPUT images in mount/in; report, log and thumbnails in mount/out (LIGHTLY)."""
    for k, name in enumerate(names):
        path = mount / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_image(k))
    lightly = Location(str(mount / "out"), writable=True)
    lightly.write_bytes(f".lightly/runs/{run_id}/report.pdf", b"%PDF-1.4 the report")
    lightly.write_text(f".lightly/runs/{run_id}/log.txt", "stage list_input\n")
    if thumbs:
        done = write_thumbnails(Location(str(mount / "in")), lightly, names)
        assert done.failed == []


@dataclass
class Setup:
    dataset: str
    run: str
    tag: str
    report: str  # artifact ids
    log: str


def _completed_run(api: Api, names: list[str], thumbs: bool = True, name: str = "cats") -> Setup:
    """Through the service layer: alice's dataset with a COMPLETED run that selected ``names``."""
    p = api.platform
    alice = users.authenticate(p, api.token)
    (api.mount / "in").mkdir(exist_ok=True)
    (api.mount / "out").mkdir(exist_ok=True)
    d = datasets.create(p, alice, DatasetCreateRequest(name=name))
    datasources.put(p, alice, d, DatasourceConfigLocal(purpose="INPUT", full_path="in"))
    datasources.put(p, alice, d, DatasourceConfigLocal(purpose="LIGHTLY", full_path="out"))
    cfg = configs.create(p, alice, {}, {}, {"n_samples": 2})
    runs.schedule(p, alice, d, DockerRunScheduledCreateRequest(config_id=cfg))
    w = workers.register(p, alice, CreateDockerWorkerRegistryEntryRequest(name="gpu-" + name))
    claimed = runs.claim(p, alice, w)
    assert claimed is not None
    r = claimed.run.id
    _write_files(api.mount, r, names, thumbs)
    upd = RunStateUpdate(state="EMBEDDING", message="embedding", prefect_flow_run_id=FLOW_RUN_ID)
    runs.update_state(p, alice, r, upd)
    ids = [
        runs.add_artifact(
            p,
            alice,
            r,
            ArtifactCreateRequest(type=t, file_name=f, storage_location=f".lightly/runs/{r}/{f}"),
        )
        for t, f in (("REPORT_PDF", "report.pdf"), ("LOG", "log.txt"))
    ]
    t = tags.record_run_selection(p, alice, r, names)
    runs.update_state(p, alice, r, RunStateUpdate(state="COMPLETED", message="selected them"))
    return Setup(d, r, t, *ids)


def _has_sample_read_url() -> bool:
    try:
        return hasattr(importlib.import_module("thresher.platform.samples"), "read_url")
    except ImportError:
        return False


def _sign_in(api: Api, token: str) -> None:
    r = api.client.post("/signin", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text


# --- the flow run id ----------------------------------------------------------------------------


def test_the_worker_reports_its_flow_run_id_and_the_page_links_to_the_prefect_ui(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from thresher.client.http import Http
    from thresher.worker.api import WorkerApi

    s = _completed_run(api, ["a.jpg"])
    with api.platform.session() as db:
        run = db.get(Run, s.run)
        assert run is not None and run.prefect_flow_run_id == FLOW_RUN_ID
        run.prefect_flow_run_id = None
        run.state = "EMBEDDING"

    # the worker's own call, over HTTP (the TestClient is an httpx client)
    worker = WorkerApi(Http("http://testserver", api.token))
    worker.http._client = api.client
    other = "11111111-2222-3333-4444-555555555555"
    worker.set_state(s.run, "EMBEDDING", "still embedding", prefect_flow_run_id=other)
    worker.set_state(s.run, "EMBEDDING", "later: no id, the link stays")
    with api.platform.session() as db:
        run = db.get(Run, s.run)
        assert run is not None and run.prefect_flow_run_id == other
    bad = api.client.put(
        f"/v1/docker/runs/{s.run}/state",
        params=api.auth(),
        json={"state": "EMBEDDING", "prefectFlowRunId": 'x" onclick="alert(1)'},
    )
    assert bad.status_code == 400 and "prefectFlowRunId" in bad.text

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("THRESHER_PREFECT_PUBLIC_URL", "http://prefect-host:4200/api")
    _sign_in(api, api.token)
    page = api.client.get(f"/datasets/{s.dataset}").text
    assert f'href="http://prefect-host:4200/runs/flow-run/{other}"' in page
    monkeypatch.delenv("THRESHER_PREFECT_PUBLIC_URL")
    assert "/runs/flow-run/" not in api.client.get(f"/datasets/{s.dataset}").text  # no Prefect


# --- sign-in --------------------------------------------------------------------------------


def test_anonymous_requests_get_the_sign_in_form_and_nothing_else(api: Api) -> None:
    s = _completed_run(api, ["a.jpg"])
    home = api.client.get("/")
    assert home.status_code == 200 and 'name="token"' in home.text
    assert "cats" not in home.text
    for path in (
        f"/datasets/{s.dataset}",
        f"/datasets/{s.dataset}/tags/{s.tag}",
        f"/runs/{s.run}/artifacts/{s.report}",
    ):
        r = api.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/?next=/")
    thumb_ids = tags.mappings(
        api.platform, users.authenticate(api.platform, api.token), s.dataset, "_id"
    )
    r = api.client.get(
        f"/datasets/{s.dataset}/samples/{thumb_ids[0]}/thumbnail", follow_redirects=False
    )
    assert r.status_code == 303


def test_sign_in_sets_a_strict_httponly_cookie_that_the_api_accepts(api: Api, caplog) -> None:
    wrong = "not-a-valid-token-0123456789"
    r = api.client.post("/signin", data={"token": wrong, "next": "/"})
    assert r.status_code == 403 and "not valid" in r.text
    assert wrong not in r.text and COOKIE not in r.headers.get("set-cookie", "")

    r = api.client.post(
        "/signin", data={"token": api.token, "next": "/datasets/x"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/datasets/x"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert api.token not in api.client.get("/").text  # never echoed into a page
    assert api.client.get("/v1/datasets").status_code == 200  # the cookie is a token
    assert api.token not in caplog.text

    # no open redirect: next must be a path on this site
    r = api.client.post(
        "/signin", data={"token": api.token, "next": "//evil.example/"}, follow_redirects=False
    )
    assert r.headers["location"] == "/"

    r = api.client.post("/signout", follow_redirects=False)
    assert r.status_code == 303 and f'{COOKIE}=""' in r.headers["set-cookie"]
    assert api.client.get("/v1/datasets").status_code == 403


def test_the_cookie_is_secure_over_https(api: Api) -> None:
    r = api.client.post(
        "https://testserver/signin", data={"token": api.token}, follow_redirects=False
    )
    assert "Secure" in r.headers["set-cookie"]


def test_a_cookie_whose_token_is_gone_shows_the_sign_in_form_again(api: Api) -> None:
    api.client.cookies.set(COOKIE, "gone-token-0123456789abcdef")
    r = api.client.get("/")
    assert r.status_code == 200 and "no longer valid" in r.text and 'name="token"' in r.text


# --- pages ----------------------------------------------------------------------------------


def test_datasets_list_shows_own_and_shared_datasets(api: Api) -> None:
    p = api.platform
    alice = users.authenticate(p, api.token)
    bob = users.authenticate(p, api.other)
    datasets.create(p, alice, DatasetCreateRequest(name="alices-own"))
    bobs = datasets.create(p, bob, DatasetCreateRequest(name="bobs-shared"))
    datasets.create(p, bob, DatasetCreateRequest(name="bobs-private"))
    from thresher.platform import sharing

    sharing.share_only_with(p, bob, bobs, ["alice@example.com"])
    _sign_in(api, api.token)
    page = api.client.get("/").text
    assert "alices-own" in page and "bobs-shared" in page and "bobs-private" not in page
    assert "shared with you" in page


def test_dataset_page_lists_runs_tags_and_links(api: Api) -> None:
    s = _completed_run(api, NAMES)
    _sign_in(api, api.token)
    page = api.client.get(f"/datasets/{s.dataset}")
    assert page.status_code == 200
    html = page.text
    assert "COMPLETED" in html and "selected them" in html
    assert f'href="/runs/{s.run}/artifacts/{s.report}"' in html
    assert f'href="/runs/{s.run}/artifacts/{s.log}"' in html
    assert f'href="/datasets/{s.dataset}/tags/{s.tag}"' in html
    assert "initial-tag" in html and f"{len(NAMES)} of {len(NAMES)}" in html
    assert "script" not in html.lower()  # server-rendered, no JavaScript
    assert "http://" not in html and "https://" not in html  # nothing from the network

    # the report link: a redirect to the signed read URL, which serves the file
    r = api.client.get(f"/runs/{s.run}/artifacts/{s.report}", follow_redirects=False)
    assert r.status_code == 303 and "signature=" in r.headers["location"]
    assert api.client.get(r.headers["location"]).content == b"%PDF-1.4 the report"


def test_gallery_shows_every_sample_with_its_thumbnail_and_pages(api: Api) -> None:
    names = [f"img{k:03d}.jpg" for k in range(50)]  # 48 a page: 2 pages
    s = _completed_run(api, names)
    _sign_in(api, api.token)
    first = api.client.get(f"/datasets/{s.dataset}/tags/{s.tag}").text
    second = api.client.get(f"/datasets/{s.dataset}/tags/{s.tag}?page=2").text
    ids = tags.mappings(api.platform, users.authenticate(api.platform, api.token), s.dataset, "_id")
    thumbs = re.findall(r'src="(/datasets/[^"]+/thumbnail)"', first + second)
    assert len(thumbs) == 50 and len(set(thumbs)) == 50
    assert "page 1 of 2" in first and "page 2 of 2" in second
    assert f'href="/datasets/{s.dataset}/samples/{ids[0]}/original"' in first
    assert "img049.jpg" in second and "img049.jpg" not in first
    r = api.client.get(thumbs[0])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.size == (256, 192)
    # a page past the end is the last page
    assert "page 2 of 2" in api.client.get(f"/datasets/{s.dataset}/tags/{s.tag}?page=9").text


def test_a_missing_thumbnail_is_a_placeholder(api: Api) -> None:
    s = _completed_run(api, ["a.jpg"], thumbs=False)
    _sign_in(api, api.token)
    (sample,) = tags.mappings(
        api.platform, users.authenticate(api.platform, api.token), s.dataset, "_id"
    )
    r = api.client.get(f"/datasets/{s.dataset}/samples/{sample}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert b"no thumbnail" in r.content


def test_another_users_dataset_is_a_404_page(api: Api) -> None:
    s = _completed_run(api, ["a.jpg"])
    (sample,) = tags.mappings(
        api.platform, users.authenticate(api.platform, api.token), s.dataset, "_id"
    )
    _sign_in(api, api.other)
    for path in (
        f"/datasets/{s.dataset}",
        f"/datasets/{s.dataset}/tags/{s.tag}",
        f"/datasets/{s.dataset}/samples/{sample}/thumbnail",
        f"/datasets/{s.dataset}/samples/{sample}/original",
        f"/runs/{s.run}/artifacts/{s.report}",
    ):
        r = api.client.get(path, follow_redirects=False)
        assert r.status_code == 404, path  # as if it did not exist: ids cannot be probed
        assert "text/html" in r.headers["content-type"] and "cats" not in r.text
    assert api.client.get("/datasets/000000000000000000000000").status_code == 404


# --- a real browser against a real server -------------------------------------------------------

CHROMIUM = os.environ.get("THRESHER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"NO BROWSER TEST OF THE WEB PAGE: chromium not found at {CHROMIUM} "
            "(apt-get install chromium, as .ci/run does; or set THRESHER_CHROMIUM)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("NO BROWSER TEST OF THE WEB PAGE: playwright missing (pip install -e .[dev])")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def _setup_over_http(url: str, token: str, mount: Path) -> Setup:
    """As a user (the client) and a worker (its routes) would: a COMPLETED run with a selection."""
    from thresher import ApiWorkflowClient
    from thresher.client.http import Http
    from thresher.wire import DatasourcePurpose
    from thresher.worker.api import WorkerApi

    (mount / "in").mkdir(parents=True)
    (mount / "out").mkdir(parents=True)
    client = ApiWorkflowClient(token=token, server_url=url)
    client.create_dataset("street-photos")
    client.set_local_config("in", purpose=DatasourcePurpose.INPUT)
    client.set_local_config("out", purpose=DatasourcePurpose.LIGHTLY)
    scheduled = client.schedule_compute_worker_run(selection_config={"n_samples": len(NAMES)})
    worker = WorkerApi(Http(url, token))
    claimed = worker.claim(worker.register("gpu-1", []))
    assert claimed is not None and claimed.scheduled.id == scheduled
    r = claimed.run.id
    worker.set_state(r, "INITIALIZING", "Prefect flow run", prefect_flow_run_id=FLOW_RUN_ID)
    _write_files(mount, r, NAMES)
    report = worker.add_artifact(r, "REPORT_PDF", "report.pdf", f".lightly/runs/{r}/report.pdf")
    log = worker.add_artifact(r, "LOG", "log.txt", f".lightly/runs/{r}/log.txt")
    tag = worker.add_selection(r, NAMES)
    worker.set_state(r, "COMPLETED", f"selected {len(NAMES)} of {len(NAMES) + 4} files")
    return Setup(client.dataset_id, r, tag, report, log)


def test_the_page_shows_a_runs_selection_as_thumbnails_in_a_real_browser(
    browser, tmp_path: Path
) -> None:
    shots = Path(os.environ.get("THRESHER_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    mount = tmp_path / "mount"
    env = {
        "THRESHER_LOCAL_ROOT": str(mount),
        "THRESHER_PREFECT_SERVER": "off",
        "THRESHER_PREFECT_PUBLIC_URL": "http://prefect-host:4200/api",
    }
    env_clean = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with running_server(tmp_path / "home", env=env) as srv:
        s = _setup_over_http(srv.url, srv.token, mount)
        bob_token = subprocess.run(
            [sys.executable, "-m", "thresher", "user", "add", "bob@example.com"],
            env={**env_clean, "THRESHER_HOME": str(srv.home)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

        ctx = browser.new_context(viewport={"width": 1280, "height": 860})
        page = ctx.new_page()
        # anonymous: only the sign-in form, even for a dataset's address
        page.goto(f"{srv.url}/datasets/{s.dataset}")
        assert page.locator('input[name="token"]').count() == 1
        assert "street-photos" not in page.content()
        page.screenshot(path=str(shots / "1-sign-in.png"))

        page.fill('input[name="token"]', "wrong-token-0123456789abcdef")
        page.click("button[type=submit]")
        assert "not valid" in page.content() and "wrong-token" not in page.content()

        page.fill('input[name="token"]', srv.token)
        page.click("button[type=submit]")  # back to the dataset asked for
        page.wait_for_url(f"{srv.url}/datasets/{s.dataset}")
        (cookie,) = [c for c in ctx.cookies() if c["name"] == COOKIE]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # the dataset page: the run, its files, its selection, the Prefect UI
        assert page.locator(".badge", has_text="COMPLETED").count() == 1
        report = page.locator("a", has_text="report.pdf")
        log = page.locator("a", has_text="log.txt")
        assert report.count() == 1 and log.count() == 1
        prefect = page.locator("a", has_text="Prefect UI").get_attribute("href")
        assert prefect == f"http://prefect-host:4200/runs/flow-run/{FLOW_RUN_ID}"
        assert page.request.get(srv.url + report.get_attribute("href")).body().startswith(b"%PDF")
        assert page.request.get(srv.url + log.get_attribute("href")).text() == "stage list_input\n"
        page.screenshot(path=str(shots / "2-dataset.png"), full_page=True)

        page.goto(f"{srv.url}/")
        assert page.locator("a", has_text="street-photos").count() == 1
        page.screenshot(path=str(shots / "0-datasets.png"))
        page.click("text=street-photos")
        page.click("text=initial-tag")

        # the gallery: every thumbnail loaded, and it is the thumbnail (256x192), not a placeholder
        page.wait_for_load_state("load")
        sizes = page.eval_on_selector_all(
            ".tile img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert sizes == [[True, 256, 192]] * len(NAMES)
        hrefs = page.eval_on_selector_all(".tile", "as => as.map(a => a.getAttribute('href'))")
        assert len(hrefs) == len(NAMES)
        assert all(
            re.fullmatch(rf"/datasets/{s.dataset}/samples/[0-9a-f]{{24}}/original", h)
            for h in hrefs
        )
        names = page.eval_on_selector_all(".tile .name", "ns => ns.map(n => n.textContent)")
        assert sorted(names) == sorted(NAMES)
        page.screenshot(path=str(shots / "3-gallery.png"), full_page=True)
        if _has_sample_read_url():  # the exports helper's thresher.platform.samples.read_url
            original = page.request.get(srv.url + hrefs[0])
            assert original.ok and original.body()[:2] in (b"\xff\xd8", b"\x89P")

        page.click("text=Sign out")
        page.goto(f"{srv.url}/datasets/{s.dataset}")
        assert page.locator('input[name="token"]').count() == 1

        # a stranger signs in and cannot open alice's dataset
        page.fill('input[name="token"]', bob_token)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        assert "Not found" in page.content() and "street-photos" not in page.content()
        response = page.goto(f"{srv.url}/datasets/{s.dataset}")
        assert response is not None and response.status == 404
        page.screenshot(path=str(shots / "4-forbidden.png"))
        ctx.close()
        assert srv.token not in srv.log_text() and bob_token not in srv.log_text()
