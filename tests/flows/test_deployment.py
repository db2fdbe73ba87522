"""prefect.yaml against a real Prefect server: deploy, a process worker picks the run up, the run
completes and writes its outputs. The server and worker are started here and stopped by PID."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
def server_env(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PROJECT_DIR": str(ROOT),
        "THRESHER_PROGRESS": "0",
    }
    env.pop("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", None)
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(
                        "prefect server did not start:\n"
                        + (tmp_path / "server.log").read_text()[-2000:]
                    )
                time.sleep(0.5)
        yield env
    finally:
        _stop(server)


def test_deployment_runs_on_a_process_worker(server_env, example_dataset, tmp_path):
    def prefect(*args):
        return subprocess.run(
            [PREFECT, *args],
            env=server_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )

    prefect("work-pool", "create", "thresher-process", "--type", "process")
    prefect("--no-prompt", "deploy", "--all")
    with open(tmp_path / "worker.log", "w") as wlog:
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", "thresher-process"],
            env=server_env,
            cwd=ROOT,
            stdout=wlog,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        lightly = tmp_path / "lightly"
        prefect(
            "deployment",
            "run",
            "curate/curate",
            "-p",
            f"input={example_dataset.root}",
            "-p",
            f"lightly={lightly}",
            "-p",
            'selection_config={"n_samples": 6}',
        )
        deadline = time.monotonic() + 300
        reports = []
        while time.monotonic() < deadline and not reports:
            reports = list(lightly.glob(".lightly/runs/*/report.json"))
            time.sleep(2)
        assert reports, (tmp_path / "worker.log").read_text()[-3000:]
        report = json.loads(reports[0].read_text())
        assert report["generalInformation"]["datasetInformation"]["datasetSizes"]["nSelected"] == 6
        # the deployment's typed parameters: a form in the UI
        code = (
            "from prefect.client.orchestration import get_client\n"
            "with get_client(sync_client=True) as c:\n"
            "    d = c.read_deployment_by_name('curate/curate')\n"
            "    print(sorted(d.parameter_openapi_schema['definitions']))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=server_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "WorkerConfig" in out and "SelectionConfig" in out and "LightlyConfig" in out
    finally:
        _stop(worker)
