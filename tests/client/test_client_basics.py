"""The client's parts that need no server: settings, errors, run info, the state derivation."""

import subprocess
import sys

import pytest

from thresher.client import (
    STATE_SCHEDULED_ID_NOT_FOUND,
    ApiException,
    ApiWorkflowClient,
    ComputeWorkerRunInfo,
)
from thresher.client.http import redact_token, resolve_token, server_url


def test_import_thresher_stays_light_and_exports_the_client():
    code = (
        "import sys, thresher\n"
        "heavy = [m for m in ('httpx', 'prefect', 'torch') if m in sys.modules]\n"
        "from thresher import ApiWorkflowClient, DatasetType, DatasourcePurpose\n"
        "print(heavy, ApiWorkflowClient.__name__, DatasetType.IMAGES, DatasourcePurpose.LIGHTLY)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "ApiWorkflowClient", "Images", "LIGHTLY"]


def test_settings_come_from_the_environment(monkeypatch):
    for name in (
        "THRESHER_SERVER_URL",
        "LIGHTLY_SERVER_LOCATION",
        "THRESHER_TOKEN",
        "LIGHTLY_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    assert server_url() == "http://127.0.0.1:8360"
    monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", "http://lightly:1/")
    assert server_url() == "http://lightly:1"
    monkeypatch.setenv("THRESHER_SERVER_URL", "http://thresher:2")
    assert server_url() == "http://thresher:2"
    with pytest.raises(ValueError, match="THRESHER_TOKEN"):
        ApiWorkflowClient()
    monkeypatch.setenv("LIGHTLY_TOKEN", "lt")
    assert resolve_token() == "lt"
    monkeypatch.setenv("THRESHER_TOKEN", "tt")
    assert resolve_token() == "tt"
    assert resolve_token("arg") == "arg"


def test_the_token_never_shows_in_errors():
    assert redact_token("GET http://h/v1/x?token=s3cr3t&a=1") == "GET http://h/v1/x?token=***&a=1"
    client = ApiWorkflowClient(token="s3cr3t-token", server_url="http://127.0.0.1:9")
    with pytest.raises(ConnectionError) as info:
        client.get_datasets()
    assert "s3cr3t" not in str(info.value)
    # httpx's error holds the URL with the token: it is not chained (and not shown).
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_api_exception_carries_lightlys_attributes():
    e = ApiException(403, "Forbidden", '{"code": "FORBIDDEN", "error": "not your dataset"}')
    assert (e.status, e.reason, e.code, e.error) == (
        403,
        "Forbidden",
        "FORBIDDEN",
        "not your dataset",
    )
    assert "not your dataset" in str(e)


def test_run_info_end_states_as_lightlys():
    for state in ("COMPLETED", "FAILED", "CRASHED", "ABORTED", STATE_SCHEDULED_ID_NOT_FOUND):
        assert ComputeWorkerRunInfo(state, None).in_end_state()
    assert ComputeWorkerRunInfo("COMPLETED", "").ended_successfully()
    assert not ComputeWorkerRunInfo("FAILED", "").ended_successfully()
    assert not ComputeWorkerRunInfo(STATE_SCHEDULED_ID_NOT_FOUND, "").ended_successfully()
    for state in ("OPEN", "EMBEDDING", "UPLOADING_ARTIFACTS"):
        with pytest.raises(ValueError, match=r"Lightly Worker run is still in progress\."):
            ComputeWorkerRunInfo(state, None).ended_successfully()


class _Scripted(ApiWorkflowClient):
    """A client whose two lookups answer from a script (the derivation under test is local)."""

    def __init__(self, script):
        super().__init__(token="t", dataset_id="a" * 24, server_url="http://127.0.0.1:9")
        self.script = list(script)

    def get_compute_worker_run_from_scheduled_run(self, scheduled_run_id):
        step = self.script[0]
        if step in ("OPEN", "GONE"):
            raise ApiException(404, "Not Found")
        return type("Run", (), {"state": step[0], "message": step[1]})()

    def _get_scheduled_run_by_id(self, scheduled_run_id):
        step = self.script.pop(0)
        if step == "GONE":
            raise ApiException(404, "Not Found")
        return object()

    def get_compute_worker_run_info(self, scheduled_run_id):
        step = self.script[0]
        info = super().get_compute_worker_run_info(scheduled_run_id)
        if step not in ("OPEN", "GONE"):
            self.script.pop(0)
        return info


def test_generator_yields_the_first_info_then_changes_and_stops_after_an_end_state():
    script = [
        "OPEN",
        "OPEN",
        ("EMBEDDING", "embed"),
        ("EMBEDDING", "embed"),
        ("EMBEDDING", "embed: 60 img in 2.0 s (30.0 img/s)"),  # a new message alone yields
        ("COMPLETED", "done"),
        ("COMPLETED", "never polled"),
    ]
    client = _Scripted(script)
    infos = list(client.compute_worker_run_info_generator("b" * 24, poll_interval=0))
    assert [(i.state, i.message) for i in infos][1:] == [
        ("EMBEDDING", "embed"),
        ("EMBEDDING", "embed: 60 img in 2.0 s (30.0 img/s)"),
        ("COMPLETED", "done"),
    ]
    assert infos[0].state == "OPEN" and infos[0].message.startswith("Waiting for pickup")
    assert infos[-1].ended_successfully()


def test_a_run_that_is_gone_before_pickup_is_canceled_or_not_existing():
    infos = list(_Scripted(["GONE"]).compute_worker_run_info_generator("c" * 24, poll_interval=0))
    assert [i.state for i in infos] == [STATE_SCHEDULED_ID_NOT_FOUND]
    assert infos[0].message == (
        f"Could not find a job for the given run_id: '{'c' * 24}'. The scheduled run does not "
        "exist or was canceled before being picked up by a Lightly Worker."
    )


def test_a_bad_priority_fails_before_anything_is_sent():
    client = ApiWorkflowClient(token="t", dataset_id="a" * 24, server_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="URGENT"):
        client.schedule_compute_worker_run(selection_config={"n_samples": 1}, priority="URGENT")
