"""Start a real ``thresher server start`` process on a free port (reusable by other tests).

Usage::

    from tests.server.server_process import running_server

    with running_server(tmp_path) as srv:   # srv.url, srv.token (a user made with `user add`)
        httpx.get(f"{srv.url}/v1/datasets", params={"token": srv.token})
    srv.log_text()                          # everything the server printed
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    url: str
    token: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _env(home: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env["THRESHER_HOME"] = str(home)
    env.pop("THRESHER_DATABASE_URL", None)
    env.update(extra or {})
    return env


@contextmanager
def running_server(
    home: Path,
    *,
    email: str = "alice@example.com",
    env: dict[str, str] | None = None,
    database: str | None = None,
) -> Iterator[ServerProcess]:
    """A server process with one user; stopped (SIGINT, then kill) when the block ends."""
    home.mkdir(parents=True, exist_ok=True)
    full_env = _env(home, env)
    db = ["--database", database] if database else []
    token = subprocess.run(
        [sys.executable, "-m", "thresher", "user", "add", email, *db],
        env=full_env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "thresher", "server", "start", "--port", str(port), *db],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    srv = ServerProcess(url, token, home, log, proc)
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"thresher server start exited:\n{srv.log_text()}")
            try:
                if httpx.get(f"{url}/v1/versions/pip/minimum", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"the server did not answer in 60 s:\n{srv.log_text()}")
            time.sleep(0.2)
        yield srv
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
