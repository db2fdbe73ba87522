"""A real platform: a ``thresher server start`` process, a user, and worker processes.

Everything runs as the user would run it: separate processes over HTTP, SQLite under a temporary
``THRESHER_HOME``, local datasources inside the workers' mounts.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

THRESHER = [sys.executable, "-m", "thresher"]


def _server_missing() -> str:
    """Why the platform cannot run here ('' when it can)."""
    for module in ("thresher.server.lightly_routes", "thresher.server.worker_routes"):
        if importlib.util.find_spec(module) is None:
            return f"the server is not there yet: {module} is missing"
    out = subprocess.run([*THRESHER, "server", "start", "--help"], capture_output=True, text=True)
    if out.returncode != 0:
        return "`thresher server start` is not implemented yet"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Platform:
    """The running server, its user's token and the mounts the workers use."""

    url: str
    token: str
    env: dict[str, str]
    input_mount: Path
    lightly_mount: Path
    logs: Path

    def client(self):
        from thresher import ApiWorkflowClient

        return ApiWorkflowClient(token=self.token, server_url=self.url)

    def worker(self, name: str, labels: str = "", once: bool = True) -> subprocess.Popen[bytes]:
        """Start ``thresher worker start`` (output in ``logs/<name>.txt``)."""
        cmd = [
            *THRESHER,
            "worker",
            "start",
            "--worker-id",
            name,
            "--input-mount",
            str(self.input_mount),
            "--lightly-mount",
            str(self.lightly_mount),
            "--server",
            self.url,
        ]
        if labels:
            cmd += ["--labels", labels]
        if once:
            cmd.append("--once")
        log = open(self.logs / f"{name}.txt", "ab")  # noqa: SIM115 - the process owns it
        return subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def platform(tmp_path_factory) -> Iterator[Platform]:
    """A server process with one user; stopped at the end of the session."""
    why = _server_missing()
    if why:
        pytest.skip(why)
    home = tmp_path_factory.mktemp("thresher-home")
    logs = tmp_path_factory.mktemp("logs")
    token = "e2e-" + secrets.token_hex(16)
    input_mount = tmp_path_factory.mktemp("input_mount")
    lightly_mount = tmp_path_factory.mktemp("lightly_mount")
    env = {
        **os.environ,
        "THRESHER_HOME": str(home),
        "THRESHER_TOKEN": token,
        # One machine: the server sees the mounts, so it can serve local artifacts and check
        # local datasources.
        "THRESHER_LOCAL_ROOT": str(input_mount),
        "THRESHER_LIGHTLY_ROOT": str(lightly_mount),
    }
    env.pop("THRESHER_SERVER_URL", None)
    subprocess.run(
        [*THRESHER, "user", "add", "e2e@example.com", "--token", token], env=env, check=True
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = open(logs / "server.txt", "ab")  # noqa: SIM115 - the process owns it
    server = subprocess.Popen(
        [*THRESHER, "server", "start", "--port", str(port)],
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/v1/versions/pip/minimum", params={"token": token}, timeout=2)
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "the server did not start:\n" + (logs / "server.txt").read_text()[-3000:]
                    ) from None
                time.sleep(0.5)
        yield Platform(url, token, env, input_mount, lightly_mount, logs)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()


@pytest.fixture(scope="session")
def images(platform: Platform) -> str:
    """A tiny planted dataset inside the input mount; returns its path relative to the mount."""
    from thresher.examples import make_example_dataset

    make_example_dataset(platform.input_mount / "example", n_clusters=3, per_cluster=6)
    return "example"
