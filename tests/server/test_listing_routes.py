"""Datasource listing over HTTP: the routes' errors (TestClient), and our client's
``download_raw_samples`` family against a real ``thresher server start`` process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import Api
from tests.server.server_process import running_server
from thresher import ApiWorkflowClient
from thresher.client.errors import ApiException
from thresher.wire import DatasourcePurpose

T0 = 1_700_000_000


def _touch(path: Path, when: int | None, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if when is not None:
        os.utime(path, (when, when))


def _dataset(api: Api) -> str:
    r = api.client.post(
        "/v1/datasets", params=api.auth(), json={"name": "listed", "type": "Images"}
    )
    d = str(r.json()["id"])
    for purpose, folder in (("INPUT", "in"), ("LIGHTLY", "out")):
        body = {"type": "LOCAL", "purpose": purpose, "fullPath": folder}
        r = api.client.put(f"/v1/datasets/{d}/datasource", params=api.auth(), json=body)
        assert r.status_code == 204, r.text
    return d


def test_routes_answer_lightlys_shapes_and_errors(api: Api) -> None:
    d = _dataset(api)
    _touch(api.mount / "in" / "a.png", T0, b"A")
    base = f"/v1/datasets/{d}/datasource"
    dnc = api.client.get(f"{base}/list/dnc", params={**api.auth(), "dncShards": 2, "from": 0})
    assert dnc.status_code == 200 and set(dnc.json()) == {"cursors"}
    assert len(dnc.json()["cursors"]) == 2
    rows = []
    for cursor in dnc.json()["cursors"]:
        page = api.client.get(f"{base}/list", params={**api.auth(), "cursor": cursor}).json()
        assert set(page) == {"hasMore", "cursor", "data"} and page["hasMore"] is False
        rows += page["data"]
    assert [set(r) for r in rows] == [{"fileName", "readUrl"}]
    assert api.client.get(rows[0]["readUrl"]).content == b"A"
    # Errors: Lightly's body, the mapped status.
    r = api.client.get(f"{base}/list", params={**api.auth(), "cursor": "nonsense"})
    assert r.status_code == 400 and set(r.json()) == {"code", "error"}
    r = api.client.get(f"{base}/list/dnc", params={**api.auth(), "dncShards": 0})
    assert r.status_code == 400, r.text
    r = api.client.get(f"{base}/predictions/list", params={**api.auth(), "taskName": "../x"})
    assert r.status_code == 400, r.text
    r = api.client.get(
        f"{base}/metadata/list", params={**api.auth(), "relevantFilenamesRunId": "0" * 24}
    )
    assert r.status_code == 400 and "not supported" in r.json()["error"]
    r = api.client.put(
        f"{base}/processedUntilTimestamp",
        params=api.auth(),
        json={"processedUntilTimestamp": -1},
    )
    assert r.status_code in (400, 422), r.text
    # bob is a stranger here: the dataset does not exist for him.
    r = api.client.get(f"{base}/list", params=api.auth(api.other))
    assert r.status_code == 404 and r.json()["code"] == "DATASET_UNKNOWN"


def test_our_client_against_a_real_server(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    env = {"THRESHER_PREFECT_SERVER": "off", "THRESHER_LOCAL_ROOT": str(mount)}
    names = [f"img_{i}.png" for i in range(7)] + ["sub/x.jpg"]
    for i, n in enumerate(names):
        _touch(mount / "in" / n, T0 + i, n.encode())
    lightly = mount / "out" / ".lightly"
    _touch(lightly / "predictions" / "det" / "img_0.json", T0)
    _touch(lightly / "predictions" / "det" / "schema.json", T0)
    _touch(lightly / "metadata" / "img_1.json", T0)
    _touch(lightly / "relevant.txt", T0, b"img_1.png\nsub/*\n")
    with running_server(tmp_path / "home", env=env) as srv:
        client = ApiWorkflowClient(token=srv.token, server_url=srv.url)
        client.create_dataset("listing")
        client.set_local_config("in", purpose=DatasourcePurpose.INPUT)
        client.set_local_config("out", purpose=DatasourcePurpose.LIGHTLY)

        got = client.download_raw_samples(divide_and_conquer_shards=3)
        assert sorted(n for n, _ in got) == sorted(names)
        for name, url in got:
            assert httpx.get(url).content == name.encode()
        window = client.download_raw_samples(from_=T0 + 2, to=T0 + 4)
        assert sorted(n for n, _ in window) == ["img_2.png", "img_3.png", "img_4.png"]
        relevant = client.download_raw_samples(relevant_filenames_file_name=".lightly/relevant.txt")
        assert sorted(n for n, _ in relevant) == ["img_1.png", "sub/x.jpg"]
        assert sorted(n for n, _ in client.download_raw_predictions("det")) == [
            ".lightly/predictions/det/img_0.json",
            ".lightly/predictions/det/schema.json",
        ]
        assert [n for n, _ in client.download_raw_metadata_iter()] == [
            ".lightly/metadata/img_1.json"
        ]
        with pytest.raises(ValueError, match="not supported"):
            client.download_raw_metadata(run_id="r", relevant_filenames_artifact_id="a")

        assert client.get_processed_until_timestamp() == 0
        first = client.download_new_raw_samples(divide_and_conquer_shards=2)
        assert sorted(n for n, _ in first) == sorted(names)
        stamp = client.get_processed_until_timestamp()
        assert abs(stamp - time.time()) < 30
        time.sleep(1.1)  # whole seconds: the next file is newer than the processed-until time
        _touch(mount / "in" / "new.png", None)
        assert [n for n, _ in client.download_new_raw_samples()] == ["new.png"]
        assert client.download_new_raw_samples() == []
        client.update_processed_until_timestamp(T0 + 5)
        assert sorted(n for n, _ in client.download_new_raw_samples()) == [
            "img_6.png",
            "new.png",
            "sub/x.jpg",
        ]
        # Another user is told the dataset does not exist.
        with pytest.raises(ApiException) as e:
            ApiWorkflowClient(
                token=_second_user(tmp_path / "home", env),
                server_url=srv.url,
                dataset_id=None,
            )._http.get_json(f"/v1/datasets/{client.dataset_id}/datasource/processedUntilTimestamp")
        assert e.value.status == 404


def _second_user(home: Path, env: dict[str, str]) -> str:
    import subprocess
    import sys

    full = {**os.environ, "THRESHER_HOME": str(home), **env}
    full.pop("THRESHER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "thresher", "user", "add", "carol@example.com"],
        env=full,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
