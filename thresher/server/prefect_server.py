"""The Prefect API the platform's runs report to, so that they show in the Prefect UI.

``thresher server start`` uses the Prefect API at ``PREFECT_API_URL`` when it is set. Otherwise
it starts ``prefect server start`` as a child process (SQLite under ``$THRESHER_HOME/prefect``),
waits until ``/api/health`` answers and stops it when the server stops; a parent-death signal
stops it too when the server is killed. Workers learn the URL with each run they claim
(``ClaimedRun.prefect_api_url``); a worker whose own environment sets ``PREFECT_API_URL`` keeps
its own.

| variable | default | meaning |
|---|---|---|
| ``PREFECT_API_URL`` | unset | an existing Prefect API: no Prefect server is started |
| ``THRESHER_PREFECT_SERVER`` | ``on`` | ``off``: start none (workers' flows use an ephemeral API) |
| ``THRESHER_PREFECT_PORT`` | 4200, or a free port when 4200 is taken | its port |
| ``THRESHER_PREFECT_PUBLIC_URL`` | the URL the server uses | what workers on other hosts use |
| ``THRESHER_PREFECT_STARTUP_S`` | 180 | how long to wait for its ``/api/health`` |
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from thresher.errors import ConfigError
from thresher.platform.settings import env_number

log = logging.getLogger("thresher.server")

DEFAULT_PORT = 4200
SWITCH_ENV = "THRESHER_PREFECT_SERVER"
PORT_ENV = "THRESHER_PREFECT_PORT"
PUBLIC_URL_ENV = "THRESHER_PREFECT_PUBLIC_URL"
STARTUP_ENV = "THRESHER_PREFECT_STARTUP_S"


def public_url() -> str | None:
    """The Prefect API URL handed to workers with each claimed run (None: no Prefect API)."""
    return os.environ.get(PUBLIC_URL_ENV) or os.environ.get("PREFECT_API_URL") or None


def wanted() -> bool:
    """Whether ``thresher server start`` should start a Prefect server of its own."""
    if os.environ.get("PREFECT_API_URL"):
        return False
    return os.environ.get(SWITCH_ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _choose_port(host: str) -> int:
    port = env_number(PORT_ENV, 0, int, "4200 (a port number)", zero="a free port")
    if port:
        return port
    if _port_free(host, DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the server process dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class PrefectServer:
    """A ``prefect server start`` child process.

    Args:
        home: Its ``PREFECT_HOME`` (the SQLite database and its log live there).
        host: The address it listens on (the thresher server's ``--host``).
    """

    def __init__(self, home: Path, host: str) -> None:
        self.home = home
        self.host = host
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def api_url(self) -> str:
        """The API URL, as this host reaches it."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}/api"

    @property
    def log_path(self) -> Path:
        """Where its output goes."""
        return self.home / "server.log"

    def start(self, timeout_s: float | None = None) -> str:
        """Start it and wait until ``/api/health`` answers; its API URL.

        Raises:
            ConfigError: It exited, or did not answer in time (its log's tail says why).
        """
        import httpx

        if timeout_s is None:
            timeout_s = env_number(STARTUP_ENV, 180.0, float, "180 (seconds)")
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = _choose_port(self.host)
        env = dict(os.environ)
        env.pop("PREFECT_API_URL", None)
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_ENABLED=env.get("PREFECT_UI_ENABLED", "true"),
        )
        cmd = [sys.executable, "-m", "prefect", "server", "start"]
        cmd += ["--host", self.host, "--port", str(self.port)]
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the server, which stops this in order
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        log.info("starting a Prefect server on port %d (PREFECT_HOME %s)", self.port, self.home)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                tail = self._tail()
                self.stop()
                raise ConfigError(
                    f"The Prefect server exited with code {self.process.returncode} while "
                    f"starting (log {self.log_path}):\n{tail}\nSet PREFECT_API_URL to use "
                    f"another Prefect API, or {SWITCH_ENV}=off to start none."
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                tail = self._tail()
                self.stop()
                raise ConfigError(
                    f"The Prefect server did not answer {self.api_url}/health within "
                    f"{timeout_s:g} s (log {self.log_path}):\n{tail}\nRaise {STARTUP_ENV}, "
                    f"or set {SWITCH_ENV}=off."
                )
            time.sleep(0.5)
        log.info("Prefect API at %s (UI: %s)", self.api_url, self.api_url[: -len("/api")])
        return self.api_url

    def _tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM its process group, SIGKILL after ``grace_s``."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
