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


def test_the_deployment_is_registered_idempotently_and_runs_become_its_flow_runs(
    prefect_server, monkeypatch
):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from thresher.server import prefect_deployment
    from thresher.worker import run_one

    first = prefect_deployment.register()
    assert prefect_deployment.register() == first  # every server start: an upsert
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("curate/platform")
        pool = client.read_work_pool("thresher-platform")
    assert str(deployment.id) == first and pool.type == "process"
    assert deployment.entrypoint == "thresher/flows/curate.py:curate"
    assert deployment.work_pool_name == "thresher-platform" and not deployment.schedules
    assert deployment.parameters == {}
    assert deployment.pull_steps == [
        {
            "prefect.deployments.steps.set_working_directory": {
                "directory": prefect_deployment.code_dir()
            }
        }
    ]

    job = {"input": "s3://b/in/", "lightly": "s3://b/out/", "run_id": "r1", "worker_config": {}}
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    flow_run_id, why = run_one._flow_run_of_deployment(run_one.flow_parameters(job), "r1")
    assert why == ""
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
    assert str(flow_run.deployment_id) == first and flow_run.name == "r1"
    assert flow_run.work_pool_name == "thresher-platform"
    assert flow_run.parameters == {
        "input": "s3://b/in/",
        "lightly": "s3://b/out/",
        "worker_config": None,
        "selection_config": None,
        "lightly_config": None,
        "run_id": "r1",
        "dataset_type": "images",  # a dataset of type Videos gives "videos"
    }

    monkeypatch.delenv("PREFECT_API_URL")
    assert run_one._flow_run_of_deployment({}, "r2")[0] is None  # no API: the flow runs directly


def test_a_server_whose_prefect_api_is_down_warns_and_serves(caplog):
    from thresher.server import prefect_deployment

    with caplog.at_level("WARNING", logger="thresher.server"):
        assert prefect_deployment.register_or_warn("http://127.0.0.1:9/api") is None
    assert "could not register the Prefect deployment curate/platform" in caplog.text
