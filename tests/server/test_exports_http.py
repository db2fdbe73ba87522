"""Exports, sample read URLs and embeddings over HTTP (FastAPI's TestClient)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from tests.platform.helpers import ready_dataset, schedule, worker
from tests.server.conftest import Api
from thresher.platform import runs, tags, users
from thresher.wire import RunStateUpdate

NAMES = ["c.png", "a.png", "sub/b.png"]


@dataclass
class Planted:
    dataset: str
    tag: str
    run: str


@pytest.fixture
def planted(api: Api) -> Planted:
    """A dataset whose completed run selected NAMES (files in the server's mount)."""
    p = api.platform
    alice = users.authenticate(p, api.token)
    (api.mount / "in" / "sub").mkdir(parents=True)
    for name in NAMES:
        (api.mount / "in" / name).write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode() * 100)
    d = ready_dataset(p, alice)
    schedule(p, alice, d)
    claimed = runs.claim(p, alice, worker(p, alice))
    assert claimed is not None
    tag = tags.record_run_selection(p, alice, claimed.run.id, NAMES)
    runs.update_state(p, alice, claimed.run.id, RunStateUpdate(state="COMPLETED"))
    return Planted(d, tag, claimed.run.id)


def _export(api: Api, pl: Planted, what: str, **params: object) -> object:
    r = api.client.get(
        f"/v1/datasets/{pl.dataset}/tags/{pl.tag}/export/{what}", params={**api.auth(), **params}
    )
    assert r.status_code == 200, r.text
    return r.json() if what != "basic/filenames" else r.text


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_filenames_export_is_text_and_pages_by_item_offset(api: Api, planted: Planted) -> None:
    assert _export(api, planted, "basic/filenames") == "c.png\na.png\nsub/b.png"
    pages = [
        _export(api, planted, "basic/filenames", pageSize=2, pageOffset=off) for off in (0, 2, 4)
    ]
    assert pages == ["c.png\na.png", "sub/b.png", ""]
    full = _export(api, planted, "basic/filenames", fileNameFormat="DATASOURCE_FULL")
    assert full == "\n".join(str(api.mount / "in" / n) for n in NAMES)
    as_json = _export(api, planted, "basic/filenames", format="JSON")
    assert json.loads(str(as_json)) == NAMES
    r = api.client.get(
        f"/v1/datasets/{planted.dataset}/tags/{planted.tag}/export/basic/filenames",
        params={**api.auth(), "fileNameFormat": "NOPE"},
    )
    assert r.status_code == 400 and "fileNameFormat" in r.json()["error"]


def test_read_urls_work_without_a_token_and_serve_the_original(api: Api, planted: Planted) -> None:
    text = _export(api, planted, "basic/filenames", fileNameFormat="REDIRECTED_READ_URL")
    assert isinstance(text, str)
    urls = text.split("\n")
    for name, url in zip(NAMES, urls, strict=True):
        assert (
            "/readurlRedirect?" in url
            and "publicToken=" in url
            and "token=" not in (url.replace("publicToken=", ""))
        )
        r = api.client.get(_path(url))  # no API token
        assert r.status_code == 200, r.text
        assert r.content == (api.mount / "in" / name).read_bytes()
        assert r.headers["content-type"] == "image/png"
    rows = _export(api, planted, "basic/filenamesAndReadUrls")
    assert isinstance(rows, list)
    assert [sorted(r) for r in rows] == [["datasourceUrl", "fileName", "readUrl"]] * 3
    assert api.client.get(_path(rows[2]["readUrl"])).content.startswith(b"\x89PNG")


def test_label_tool_exports(api: Api, planted: Planted) -> None:
    tasks = _export(api, planted, "LabelStudio/tasks", pageSize=2500, pageOffset=0)
    assert tasks == [
        {"id": i, "data": {"image": tasks[i]["data"]["image"], "lightlyFileName": n}}  # type: ignore[index]
        for i, n in enumerate(NAMES)
    ]
    v3 = _export(api, planted, "LabelBox/datarows")
    assert [r["externalId"] for r in v3] == NAMES  # type: ignore[union-attr, index]
    v4 = _export(api, planted, "LabelBoxV4/datarows", pageSize=1, pageOffset=1)
    assert v4 == [
        {"row_data": v4[0]["row_data"], "global_key": "a.png", "media_type": "IMAGE"}  # type: ignore[index]
    ]
    assert api.client.get(_path(v4[0]["row_data"])).status_code == 200  # type: ignore[index]


def test_sample_readurl_signature_and_expiry(api: Api, planted: Planted) -> None:
    ids = tags.mappings(
        api.platform, users.authenticate(api.platform, api.token), planted.dataset, "_id"
    )
    r = api.client.get(
        f"/v1/datasets/{planted.dataset}/samples/{ids[0]}/readurl",
        params={**api.auth(), "type": "full"},
    )
    assert r.status_code == 200, r.text
    url = r.json()
    assert isinstance(url, str) and url.startswith("http://testserver/v1/datasets/")
    assert api.client.get(_path(url)).content == (api.mount / "in" / "c.png").read_bytes()
    good = _path(url)
    token = good.split("publicToken=")[1]
    _, _, sig = token.partition(".")
    wrong = good.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    r = api.client.get(wrong)
    assert r.status_code == 403 and "signature" in r.json()["error"]
    assert sig not in r.text  # the signature is never echoed
    other = good.replace(f"/samples/{ids[0]}/", f"/samples/{ids[1]}/")
    assert api.client.get(other).status_code == 403  # one sample's link opens only that one
    no_token = good.split("?")[0] + "?type=full"
    assert api.client.get(no_token).status_code == 403
    # expiresIn: a link that lives one second.
    text = _export(
        api, planted, "basic/filenames", fileNameFormat="REDIRECTED_READ_URL", expiresIn=1
    )
    short = _path(str(text).split("\n")[0])
    time.sleep(2.1)
    r = api.client.get(short)
    assert r.status_code == 403 and "expired" in r.json()["error"]


def test_embeddings_routes(api: Api, planted: Planted) -> None:
    d = planted.dataset
    listed = api.client.get(f"/v1/datasets/{d}/embeddings", params=api.auth()).json()
    assert [(e["id"], e["isProcessed"]) for e in listed] == [(planted.run, True)]
    assert listed[0]["name"].startswith("default_") and isinstance(listed[0]["createdAt"], int)
    csv = api.mount / "out" / ".lightly" / "runs" / planted.run / "embeddings.csv"
    csv.parent.mkdir(parents=True)
    csv.write_bytes(b"filenames,embedding_0,embedding_1,labels\nc.png,0.1,-2,0\n")
    r = api.client.get(f"/v1/datasets/{d}/embeddings/{planted.run}/readCSVUrl", params=api.auth())
    assert r.status_code == 200, r.text
    got = api.client.get(_path(r.json()))  # no API token
    assert got.status_code == 200 and got.content == csv.read_bytes()
    assert got.headers["content-type"].startswith("text/csv")
    bad = _path(r.json()).replace("publicToken=", "publicToken=1")
    assert api.client.get(bad).status_code == 403


def test_exports_and_read_urls_need_a_token_and_access(api: Api, planted: Planted) -> None:
    d, t = planted.dataset, planted.tag
    sample = tags.mappings(api.platform, users.authenticate(api.platform, api.token), d, "_id")[0]
    for path in (
        f"/v1/datasets/{d}/tags/{t}/export/basic/filenames",
        f"/v1/datasets/{d}/tags/{t}/export/basic/filenamesAndReadUrls",
        f"/v1/datasets/{d}/tags/{t}/export/LabelStudio/tasks",
        f"/v1/datasets/{d}/tags/{t}/export/LabelBox/datarows",
        f"/v1/datasets/{d}/tags/{t}/export/LabelBoxV4/datarows",
        f"/v1/datasets/{d}/samples/{sample}/readurl",
        f"/v1/datasets/{d}/embeddings",
        f"/v1/datasets/{d}/embeddings/{planted.run}/readCSVUrl",
    ):
        assert api.client.get(path).status_code == 403, path
        r = api.client.get(path, params=api.auth(api.other))  # a stranger: as if unknown
        assert r.status_code == 404 and r.json()["code"] == "DATASET_UNKNOWN", path
    r = api.client.get(
        f"/v1/datasets/{d}/tags/{'0' * 24}/export/basic/filenames", params=api.auth()
    )
    assert r.status_code == 404 and r.json()["code"] == "TAG_UNKNOWN"
