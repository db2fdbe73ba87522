"""The platform's hard cases, with real processes: a worker killed mid-run, S3 datasources on
the S3 emulator (moto server), secrets found nowhere, and runs visible in the Prefect API.

Each test starts its own ``thresher server start`` (its own ``THRESHER_HOME``), so the
server's settings (a short worker timeout, a Prefect server of its own) stay local to it.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from thresher import ApiWorkflowClient, DatasourcePurpose

THRESHER = [sys.executable, "-m", "thresher"]
DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]
SELECTION = {"n_samples": 4, "strategies": DIVERSITY}
STAGE_TASKS = {
    "list_input",
    "corruption_check",
    "deduplicate",
    "embed",
    "select",
    "report",
    "write_results",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    home: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]

    def client(self) -> ApiWorkflowClient:
        return ApiWorkflowClient(token=self.token, server_url=self.url)

    def worker(
        self, name: str, log: Path, *, once: bool = False, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """``thresher worker start`` in its own process group (so a test can kill all of it)."""
        cmd = [*THRESHER, "worker", "start", "--worker-id", name, "--server", self.url]
        if self.env.get("THRESHER_LOCAL_ROOT"):
            cmd += ["--input-mount", self.env["THRESHER_LOCAL_ROOT"]]
            cmd += ["--lightly-mount", self.env["THRESHER_LIGHTLY_ROOT"]]
        if once:
            cmd.append("--once")
        with log.open("ab") as out:
            return subprocess.Popen(
                cmd,
                env=env or self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def _base_env(home: Path, token: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "THRESHER_"))}
    env.pop("PREFECT_API_URL", None)
    env.update(
        THRESHER_HOME=str(home),
        THRESHER_TOKEN=token,
        THRESHER_PROGRESS="0",
        THRESHER_PREFECT_SERVER="off",
    )
    env.update(extra)
    return env


@contextmanager
def _server(tmp: Path, extra: dict[str, str], startup_s: float = 240) -> Iterator[Server]:
    """A ``thresher server start`` process with one user; SIGINT (then kill) at the end."""
    home = tmp / "home"
    home.mkdir()
    token = "rel-" + secrets.token_hex(16)
    env = _base_env(home, token, extra)
    subprocess.run(
        [*THRESHER, "user", "add", "rel@example.com", "--token", token],
        env=env,
        check=True,
        capture_output=True,
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.txt"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*THRESHER, "server", "start", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                if httpx.get(f"{url}/v1/versions/pip/minimum", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Server(url, token, home, env, log, proc)
    finally:
        _stop(proc, signal.SIGINT)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait_s: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_state(client: ApiWorkflowClient, sid: str, wanted: set[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    state = ""
    while time.monotonic() < deadline:
        state = str(client.get_compute_worker_run_info(sid).state)
        if state in wanted:
            return state
        time.sleep(0.25)
    raise AssertionError(f"run {sid} did not reach {wanted} in {timeout_s} s (last: {state})")


def _follow(client: ApiWorkflowClient, sid: str, timeout_s: float) -> list[Any]:
    infos = []
    deadline = time.monotonic() + timeout_s
    for info in client.compute_worker_run_info_generator(sid, poll_interval=0.5):
        infos.append(info)
        assert time.monotonic() < deadline, f"run {sid} did not end in {timeout_s} s: {info}"
    return infos


def _worker_state(client: ApiWorkflowClient, name: str) -> str:
    return next(str(w.state) for w in client.get_compute_workers() if w.name == name)


# --- 1. a worker killed mid-run ------------------------------------------------------------


def test_a_killed_worker_crashes_its_run_and_the_next_worker_runs_a_new_one(tmp_path):
    psutil = pytest.importorskip("psutil")
    from thresher.examples import make_example_dataset

    mounts = tmp_path / "input_mount", tmp_path / "lightly_mount"
    for m in mounts:
        m.mkdir()
    make_example_dataset(mounts[0] / "big", n_clusters=5, per_cluster=40)
    make_example_dataset(mounts[0] / "small", n_clusters=3, per_cluster=6)
    extra = {
        "THRESHER_WORKER_TIMEOUT_S": "6",
        "THRESHER_LOCAL_ROOT": str(mounts[0]),
        "THRESHER_LIGHTLY_ROOT": str(mounts[1]),
    }
    with _server(tmp_path, extra) as srv:
        client = srv.client()
        client.create_dataset("crash-me")
        client.set_local_config(relative_path="big", purpose=DatasourcePurpose.INPUT)
        client.set_local_config(relative_path="out", purpose=DatasourcePurpose.LIGHTLY)
        sid = client.schedule_compute_worker_run(selection_config=SELECTION)
        worker_a = srv.worker("worker-a", tmp_path / "worker-a.txt")
        try:
            _wait_state(client, sid, {"EMBEDDING"}, 240)
            family = psutil.Process(worker_a.pid).children(recursive=True)
            assert family, "the worker runs its run in a child process"
            os.killpg(worker_a.pid, signal.SIGKILL)  # the worker's whole process group
            killed_at = time.monotonic()
            worker_a.wait(timeout=10)
        finally:
            if worker_a.poll() is None:
                os.killpg(worker_a.pid, signal.SIGKILL)
        # The flow process is in its own session; it notices its worker died and stops, with
        # everything it started.
        _gone, alive = psutil.wait_procs(family, timeout=15)
        assert not alive, "left behind after the worker was killed: " + "; ".join(
            f"{p.pid}: {' '.join(p.cmdline())}" for p in alive
        )

        infos = _follow(client, sid, 60)
        assert infos[-1].state == "CRASHED", infos[-1]
        assert not infos[-1].ended_successfully()
        assert "heartbeat" in (infos[-1].message or "")
        assert time.monotonic() - killed_at < 6 + 20  # timeout + crash timer + polling
        assert _worker_state(client, "worker-a") == "OFFLINE"

        client.create_dataset("after-the-crash")
        client.set_local_config(relative_path="small", purpose=DatasourcePurpose.INPUT)
        client.set_local_config(relative_path="out2", purpose=DatasourcePurpose.LIGHTLY)
        sid2 = client.schedule_compute_worker_run(selection_config=SELECTION)
        worker_b = srv.worker("worker-b", tmp_path / "worker-b.txt")
        try:
            infos = _follow(client, sid2, 300)
            assert infos[-1].state == "COMPLETED", infos[-1]
            assert infos[-1].ended_successfully()
            # The worker says IDLE as soon as its run ended, not at its next heartbeat.
            deadline = time.monotonic() + 3
            while _worker_state(client, "worker-b") != "IDLE":
                assert time.monotonic() < deadline, "worker-b stayed BUSY after its run"
                time.sleep(0.2)
        finally:
            _stop(worker_b)
        assert worker_b.returncode == 0
        assert _worker_state(client, "worker-b") == "OFFLINE"
        assert client.get_compute_worker_run_info(sid).state == "CRASHED"  # stays so


# --- 2-4. S3 datasources, secrets nowhere, runs in the Prefect API -------------------------


@contextmanager
def _moto(tmp: Path) -> Iterator[str]:
    """``moto_server`` on a free port (no IAM enforcement); its endpoint URL."""
    pytest.importorskip("moto.server")
    port = _free_port()
    with (tmp / "moto.txt").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        _stop(proc)


def _prefect_runs(api: str, run_id: str) -> tuple[dict[str, Any], set[str]]:
    """The Prefect flow run named ``run_id`` and the names of its tasks (``task_key`` prefix)."""
    flow_runs = httpx.post(
        f"{api}/flow_runs/filter", json={"flow_runs": {"name": {"any_": [run_id]}}}, timeout=30
    ).json()
    assert len(flow_runs) == 1, flow_runs
    fr = flow_runs[0]
    task_runs = httpx.post(
        f"{api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [fr["id"]]}}}, timeout=30
    ).json()
    return fr, {t["name"].rsplit("-", 1)[0] for t in task_runs}


def _files_with(secret_values: dict[str, bytes], roots: list[Path]) -> list[str]:
    found = []
    for root in roots:
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in paths:
            data = path.read_bytes()
            found += [f"{name} in {path}" for name, v in secret_values.items() if v in data]
    return found


def test_s3_run_keeps_secrets_out_of_everything_and_shows_in_prefect(tmp_path):
    boto3 = pytest.importorskip("boto3")
    from thresher.examples import make_example_dataset

    secret_key = "s3-SECRET-" + secrets.token_hex(12)
    access_key = "AKIA" + secrets.token_hex(8).upper()
    with _moto(tmp_path) as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )
        s3.create_bucket(Bucket="thresher-e2e")
        images = make_example_dataset(tmp_path / "images", n_clusters=3, per_cluster=6).root
        for path in sorted(Path(images).rglob("*")):
            if path.is_file():
                s3.upload_file(str(path), "thresher-e2e", f"input/{path.relative_to(images)}")

        extra = {
            "THRESHER_PREFECT_SERVER": "on",
            "THRESHER_PREFECT_PORT": str(_free_port()),
            "AWS_ENDPOINT_URL": endpoint,  # the server streams artifacts from the bucket
        }
        with _server(tmp_path, extra) as srv:
            client = srv.client()
            client.create_dataset("s3-dataset")
            client.set_s3_config(
                resource_path="s3://thresher-e2e/input/",
                region="us-east-1",
                access_key=access_key,
                secret_access_key=secret_key,
                purpose=DatasourcePurpose.INPUT,
            )
            client.set_s3_config(
                resource_path="s3://thresher-e2e/lightly/",
                region="us-east-1",
                access_key=access_key,
                secret_access_key=secret_key,
                purpose=DatasourcePurpose.LIGHTLY,
            )
            permissions = client.list_datasource_permissions()
            assert permissions == {
                "can_read": True,
                "can_write": True,
                "can_list": True,
                "can_overwrite": True,
            }, permissions
            sid = client.schedule_compute_worker_run(
                worker_config={"enable_corruptness_check": True},
                selection_config=SELECTION,
            )
            # The worker knows the endpoint, not the keys: those come with the run.
            worker_env = {**srv.env, "PREFECT_HOME": str(tmp_path / "worker-prefect")}
            worker = srv.worker("s3-worker", tmp_path / "worker.txt", once=True, env=worker_env)
            try:
                infos = _follow(client, sid, 300)
            finally:
                try:
                    worker.wait(timeout=60)
                finally:
                    _stop(worker)
            assert infos[-1].state == "COMPLETED", infos[-1]
            run = client.get_compute_worker_run_from_scheduled_run(scheduled_run_id=sid)
            out = tmp_path / "downloaded"
            client.download_compute_worker_run_artifacts(run=run, output_dir=str(out))
            assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
            assert "stage embed" in (out / "log.txt").read_text()
            assert (out / "report.json").is_file()

            api = srv.env.get("PREFECT_API_URL") or _prefect_api(srv)
            flow_run, tasks = _prefect_runs(api, run.id)
            assert flow_run["state_type"] == "COMPLETED", flow_run["state"]
            assert tasks >= STAGE_TASKS, tasks
            # A flow run of the deployment the server registered, in its work pool.
            deployment = httpx.get(f"{api}/deployments/name/curate/platform", timeout=30).json()
            assert flow_run["deployment_id"] == deployment["id"], (flow_run, deployment)
            assert deployment["work_pool_name"] == "thresher-platform", deployment
            assert deployment["entrypoint"] == "thresher/flows/curate.py:curate", deployment
            assert flow_run["work_pool_name"] == "thresher-platform", flow_run
            assert flow_run["work_queue_name"] == "default", flow_run
            assert flow_run["parameters"]["run_id"] == run.id, flow_run["parameters"]
            # The web page links the run to that flow run and shows the selection's thumbnails,
            # streamed from the bucket.
            auth = {"token": srv.token}
            page = httpx.get(f"{srv.url}/datasets/{client.dataset_id}", params=auth).text
            assert f"/runs/flow-run/{flow_run['id']}" in page, page
            tag = client.get_compute_worker_run_tags(run.id)[0]
            gallery = httpx.get(
                f"{srv.url}/datasets/{client.dataset_id}/tags/{tag.id}", params=auth
            )
            thumbs = re.findall(r'src="(/datasets/[^"]+/thumbnail)"', gallery.text)
            assert len(thumbs) == SELECTION["n_samples"], gallery.text
            thumb = httpx.get(srv.url + thumbs[0], params=auth)
            assert thumb.headers["content-type"] in ("image/png", "image/jpeg"), thumb.headers
            prefect_pid = _prefect_pid(srv)
        # The server stopped its Prefect server with it.
        assert prefect_pid is not None and not _alive(prefect_pid)

        objects = s3.list_objects_v2(Bucket="thresher-e2e", Prefix="lightly/")["Contents"]
        bucket_copy = tmp_path / "bucket-lightly"
        for obj in objects:
            target = bucket_copy / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket="thresher-e2e", Key=obj["Key"])["Body"].read())
        assert any(o["Key"].endswith("report.pdf") for o in objects)

    wanted = {"secret access key": secret_key.encode(), "token": srv.token.encode()}
    roots = [
        srv.home,  # thresher.db, secret.key's folder, prefect/ (the Prefect database and log)
        srv.log,
        tmp_path / "worker.txt",
        tmp_path / "worker-prefect",
        bucket_copy,
        out,
    ]
    assert (srv.home / "prefect" / "prefect.db").is_file()
    canary = tmp_path / "canary.bin"  # the search itself finds what it looks for
    canary.write_bytes(b"x" + secret_key.encode() + b"x")
    assert _files_with(wanted, [canary]) == [f"secret access key in {canary}"]
    assert _files_with(wanted, [r for r in roots if r.exists()]) == []


def _prefect_api(srv: Server) -> str:
    """The Prefect API the server started (its log line names it)."""
    for line in srv.log.read_text(errors="replace").splitlines():
        if "Prefect API at " in line:
            return line.split("Prefect API at ", 1)[1].split()[0]
    raise AssertionError(f"the server started no Prefect API:\n{srv.log.read_text()[-2000:]}")


def _prefect_pid(srv: Server) -> int | None:
    psutil = pytest.importorskip("psutil")
    for child in psutil.Process(srv.process.pid).children(recursive=True):
        if "prefect" in " ".join(child.cmdline()):
            return int(child.pid)
    return None


def _alive(pid: int) -> bool:
    psutil = pytest.importorskip("psutil")
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
