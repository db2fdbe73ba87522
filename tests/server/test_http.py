"""The HTTP layer through FastAPI's TestClient: auth, error shapes, the whole run cycle."""

from __future__ import annotations

import pytest

from tests.server.conftest import Api

ZERO = "0" * 24


def _dataset(api: Api, name: str = "cars") -> str:
    r = api.client.post("/v1/datasets", params=api.auth(), json={"name": name, "type": "Images"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _ready(api: Api) -> str:
    d = _dataset(api)
    (api.mount / "in").mkdir()
    (api.mount / "in" / "a.png").write_bytes(b"png")
    for purpose, path in (("INPUT", "in"), ("LIGHTLY", "out")):
        body = {"type": "LOCAL", "purpose": purpose, "fullPath": path}
        r = api.client.put(f"/v1/datasets/{d}/datasource", params=api.auth(), json=body)
        assert r.status_code == 204, r.text
    return d


def _config(api: Api) -> str:
    body = {
        "config": {"worker_config": {}, "lightly_config": {}},
        "selectionConfig": {"n_samples": 1},
    }
    r = api.client.post("/v1/docker/worker/config/v3", params=api.auth(), json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_versions_need_no_token(api: Api) -> None:
    assert api.client.get("/v1/versions/pip/minimum").json() == "1.0.0"


@pytest.mark.parametrize("params", [{}, {"token": "wrong"}])
def test_missing_or_wrong_token_is_403(api: Api, params: dict[str, str]) -> None:
    r = api.client.get("/v1/datasets", params=params)
    assert r.status_code == 403
    assert r.json()["code"] == "FORBIDDEN" and "token" in r.json()["error"]


def test_bearer_header_works_too(api: Api) -> None:
    d = _dataset(api)
    r = api.client.get(f"/v1/datasets/{d}", headers={"Authorization": f"Bearer {api.token}"})
    assert r.status_code == 200 and r.json()["name"] == "cars"


def test_another_users_dataset_is_404_as_an_unknown_one(api: Api) -> None:
    d = _dataset(api)
    for method, path in [
        ("GET", f"/v1/datasets/{d}"),
        ("DELETE", f"/v1/datasets/{d}"),
        ("GET", f"/v1/datasets/{d}/datasource"),
        ("GET", f"/v1/datasets/{d}/datasource/verify"),
        ("GET", f"/v1/datasets/{d}/docker/worker/schedule"),
    ]:
        r = api.client.request(method, path, params=api.auth(api.other))
        assert r.status_code == 404, (path, r.text)  # a stranger cannot tell it exists
        assert r.json()["code"] == "DATASET_UNKNOWN"
    r = api.client.get(f"/v1/datasets/{ZERO}", params=api.auth())
    assert r.status_code == 404 and r.json()["code"] == "DATASET_UNKNOWN"
    r = api.client.get(f"/v1/docker/runs/{ZERO}", params=api.auth())
    assert r.status_code == 404 and r.json()["code"] == "DOCKER_RUN_UNKNOWN"


def test_validation_errors_are_400_bad_request(api: Api) -> None:
    r = api.client.post("/v1/datasets", params=api.auth(), json={"name": "ab"})
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    d = _dataset(api)
    body = {"type": "LOCAL", "purpose": "INPUT", "fullPath": "/etc"}
    r = api.client.put(f"/v1/datasets/{d}/datasource", params=api.auth(), json=body)
    assert r.status_code == 400 and "relative" in r.json()["error"]
    body2 = {"config": {}, "selectionConfig": {"n_sampels": 1}}
    r = api.client.post("/v1/docker/worker/config/v3", params=api.auth(), json=body2)
    assert r.status_code == 400 and "n_sampels" in r.json()["error"]


def test_lightly_config_body_is_accepted(api: Api) -> None:
    body = {
        "version": "V4",
        "config": {
            "workerType": "FULL",
            "docker": {"enableTraining": False},
            "selection": {"nSamples": 5},
        },
        "creator": "USER_PIP",
    }
    r = api.client.post("/v1/docker/worker/config/vX", params=api.auth(), json=body)
    assert r.status_code == 201, r.text


def test_s3_secret_is_never_returned(api: Api) -> None:
    d = _dataset(api)
    body = {
        "type": "S3",
        "purpose": "INPUT",
        "fullPath": "s3://bucket/in",
        "s3Region": "eu-central-1",
        "s3AccessKeyId": "AKIAEXAMPLE",
        "s3SecretAccessKey": "very-secret-key-123",
    }
    assert (
        api.client.put(f"/v1/datasets/{d}/datasource", params=api.auth(), json=body).status_code
        == 204
    )
    r = api.client.get(f"/v1/datasets/{d}/datasource", params=api.auth())
    assert r.status_code == 200
    assert "very-secret-key-123" not in r.text
    assert (
        r.json()["s3SecretAccessKey"] == "********" and r.json()["s3AccessKeyId"] == "AKIAEXAMPLE"
    )


def test_schedule_without_datasources_is_422(api: Api) -> None:
    d = _dataset(api)
    r = api.client.post(
        f"/v1/datasets/{d}/docker/worker/schedule",
        params=api.auth(),
        json={"configId": _config(api)},
    )
    assert r.status_code == 422 and "INPUT" in r.json()["error"]


def test_the_whole_run_cycle(api: Api) -> None:
    d = _ready(api)
    perms = api.client.get(f"/v1/datasets/{d}/datasource/verify", params=api.auth()).json()
    assert perms == {"canRead": True, "canWrite": True, "canList": True, "canOverwrite": True}
    r = api.client.post(
        "/v1/docker/worker",
        params=api.auth(),
        json={"name": "gpu-1", "workerType": "FULL", "labels": ["gpu"]},
    )
    w = r.json()["id"]
    again = api.client.post("/v1/docker/worker", params=api.auth(), json={"name": "gpu-1"})
    assert again.json()["id"] == w
    # Nothing waits: 204.
    assert api.client.post(f"/v1/docker/worker/{w}/claim", params=api.auth()).status_code == 204
    body = {"configId": _config(api), "priority": "HIGH", "runsOn": ["gpu"], "creator": "USER_PIP"}
    s = api.client.post(
        f"/v1/datasets/{d}/docker/worker/schedule", params=api.auth(), json=body
    ).json()["id"]
    r = api.client.get(f"/v1/docker/runs/schedule/{s}", params=api.auth())
    assert r.status_code == 404 and r.json()["code"] == "DOCKER_RUN_UNKNOWN"
    listed = api.client.get(f"/v1/datasets/{d}/docker/worker/schedule", params=api.auth()).json()
    assert [x["state"] for x in listed] == ["OPEN"] and listed[0]["runsOn"] == ["gpu"]

    hb = api.client.post(
        f"/v1/docker/worker/{w}/heartbeat", params=api.auth(), json={"state": "IDLE"}
    )
    assert hb.status_code == 204
    claimed = api.client.post(f"/v1/docker/worker/{w}/claim", params=api.auth())
    assert claimed.status_code == 200, claimed.text
    c = claimed.json()
    run_id = c["run"]["id"]
    assert c["scheduled"]["state"] == "LOCKED" and c["input"]["fullPath"] == "in"
    assert api.client.get(f"/v1/docker/runs/schedule/{s}", params=api.auth()).json()["id"] == run_id

    r = api.client.put(
        f"/v1/docker/runs/{run_id}/state",
        params=api.auth(),
        json={"state": "EMBEDDING", "message": "3 img/s"},
    )
    assert r.status_code == 204
    rel = f".lightly/runs/{run_id}/report.pdf"
    (api.mount / "out" / rel).parent.mkdir(parents=True)
    (api.mount / "out" / rel).write_bytes(b"%PDF-1.4 report")
    a = api.client.post(
        f"/v1/docker/runs/{run_id}/artifacts",
        params=api.auth(),
        json={"type": "REPORT_PDF", "fileName": "report.pdf", "storageLocation": rel},
    ).json()["id"]
    r = api.client.put(
        f"/v1/docker/runs/{run_id}/state",
        params=api.auth(),
        json={"state": "COMPLETED", "message": "done"},
    )
    assert r.status_code == 204
    run = api.client.get(f"/v1/docker/runs/{run_id}", params=api.auth()).json()
    assert run["state"] == "COMPLETED" and run["message"] == "done"
    assert run["artifacts"][0] == {
        "id": a,
        "type": "REPORT_PDF",
        "fileName": "report.pdf",
        "storageLocation": "LIGHTLY",
        "createdAt": run["artifacts"][0]["createdAt"],
    }
    runs = api.client.get(
        "/v1/docker/runs", params={**api.auth(), "pageSize": 1, "pageOffset": 0}
    ).json()
    assert [x["id"] for x in runs] == [run_id]
    assert (
        api.client.get(
            "/v1/docker/runs", params={**api.auth(), "pageSize": 1, "pageOffset": 1}
        ).json()
        == []
    )

    # The read URL needs no token; a tampered one is refused.
    r = api.client.get(
        f"/v1/docker/runs/{run_id}/artifacts/{a}/readurl", params=api.auth(api.other)
    )
    assert r.status_code == 404  # not bob's: as if the run did not exist
    url = api.client.get(
        f"/v1/docker/runs/{run_id}/artifacts/{a}/readurl", params=api.auth()
    ).json()
    assert isinstance(url, str) and "token" not in url
    got = api.client.get(url)
    assert got.status_code == 200 and got.content == b"%PDF-1.4 report"
    assert api.client.get(url.replace("signature=", "signature=0")).status_code == 403


def test_cancel_of_a_running_run_makes_the_worker_abort(api: Api) -> None:
    d = _ready(api)
    w = api.client.post("/v1/docker/worker", params=api.auth(), json={"name": "gpu-1"}).json()["id"]
    body = {"configId": _config(api)}
    s = api.client.post(
        f"/v1/datasets/{d}/docker/worker/schedule", params=api.auth(), json=body
    ).json()["id"]
    run_id = api.client.post(f"/v1/docker/worker/{w}/claim", params=api.auth()).json()["run"]["id"]
    # Lightly's PUT cancels only OPEN runs.
    r = api.client.put(f"/v1/datasets/{d}/docker/worker/schedule/{s}", params=api.auth())
    assert r.status_code == 409
    r = api.client.post(f"/v1/datasets/{d}/docker/worker/schedule/{s}/cancel", params=api.auth())
    assert r.json() == {"result": "ABORT_REQUESTED"}
    r = api.client.put(
        f"/v1/docker/runs/{run_id}/state", params=api.auth(), json={"state": "SAMPLING"}
    )
    assert r.status_code == 409 and r.json()["code"] == "ABORT_REQUESTED"
    r = api.client.put(
        f"/v1/docker/runs/{run_id}/state", params=api.auth(), json={"state": "ABORTED"}
    )
    assert r.status_code == 204
    assert (
        api.client.get(f"/v1/docker/runs/{run_id}", params=api.auth()).json()["state"] == "ABORTED"
    )
