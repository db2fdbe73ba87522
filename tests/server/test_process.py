"""A real ``thresher server start`` process, talked to with httpx; secrets never leak."""

from __future__ import annotations

import httpx

from tests.server.server_process import ServerProcess

S3_SECRET = "Zq8-the-s3-secret-key-that-must-not-leak"


def test_real_server_serves_and_keeps_secrets(server: ServerProcess) -> None:
    t = {"token": server.token}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        d = c.post("/v1/datasets", params=t, json={"name": "cars"}).json()["id"]
        body = {
            "type": "S3",
            "purpose": "INPUT",
            "fullPath": "s3://bucket/in",
            "s3Region": "eu-central-1",
            "s3AccessKeyId": "AKIAEXAMPLE",
            "s3SecretAccessKey": S3_SECRET,
        }
        assert c.put(f"/v1/datasets/{d}/datasource", params=t, json=body).status_code == 204
        r = c.get(f"/v1/datasets/{d}/datasource", params=t)
        assert r.status_code == 200 and S3_SECRET not in r.text
        assert c.get("/v1/datasets", params={"token": "nope"}).status_code == 403
        c.get("/v1/datasets", headers={"Authorization": f"Bearer {server.token}"})
        assert [x["name"] for x in c.get("/v1/datasets", params=t).json()] == ["cars"]

    log = server.log_text()
    assert "GET /v1/datasets?token=***" in log  # the access log is on, and masked
    assert server.token not in log and S3_SECRET not in log
    for f in server.home.iterdir():  # thresher.db, its WAL, secret.key
        data = f.read_bytes()
        assert server.token.encode() not in data, f
        assert S3_SECRET.encode() not in data, f
