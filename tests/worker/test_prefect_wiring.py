"""Which Prefect API a run's flow reports to, and what else reaches the flow process."""

import pytest

from thresher.server import prefect_server
from thresher.worker.runner import flow_env


def test_the_flow_gets_the_servers_prefect_api_and_the_run_credentials_not_the_token():
    worker = {"THRESHER_TOKEN": "tok", "LIGHTLY_TOKEN": "tok2", "AWS_ENDPOINT_URL": "http://s3"}
    env = flow_env(worker, {"AWS_SECRET_ACCESS_KEY": "s"}, "http://server:4200/api")
    assert env["PREFECT_API_URL"] == "http://server:4200/api"
    assert env["AWS_ENDPOINT_URL"] == "http://s3" and env["AWS_SECRET_ACCESS_KEY"] == "s"
    assert "THRESHER_TOKEN" not in env and "LIGHTLY_TOKEN" not in env


def test_the_workers_own_prefect_api_wins():
    env = flow_env({"PREFECT_API_URL": "http://mine/api"}, {}, "http://server:4200/api")
    assert env["PREFECT_API_URL"] == "http://mine/api"
    assert "PREFECT_API_URL" not in flow_env({}, {}, None)


@pytest.mark.parametrize(
    ("env", "wanted", "public"),
    [
        ({}, True, None),
        ({"THRESHER_PREFECT_SERVER": "off"}, False, None),
        ({"PREFECT_API_URL": "http://p/api"}, False, "http://p/api"),
        (
            {"PREFECT_API_URL": "http://127.0.0.1:4200/api", "THRESHER_PREFECT_PUBLIC_URL": "x"},
            False,
            "x",
        ),
    ],
)
def test_the_server_starts_prefect_only_without_an_api(monkeypatch, env, wanted, public):
    for name in ("PREFECT_API_URL", "THRESHER_PREFECT_SERVER", "THRESHER_PREFECT_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert prefect_server.wanted() is wanted
    assert prefect_server.public_url() == public
