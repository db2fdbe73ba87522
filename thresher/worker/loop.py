"""``thresher worker start``: register, heartbeat, claim runs and run them, until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from types import FrameType

from thresher.client.errors import ApiException, ServerUnreachableError
from thresher.client.http import Http, resolve_token, server_url
from thresher.wire import DockerWorkerState
from thresher.worker.api import WorkerApi
from thresher.worker.runner import RunResult, RunRunner

log = logging.getLogger("thresher.worker")

#: Seconds between heartbeats; the server marks a silent worker's run CRASHED.
HEARTBEAT_S = 5.0
#: Seconds between claims while there is nothing to do.
POLL_S = 2.0


@dataclass
class WorkerOptions:
    """What ``thresher worker start`` was given."""

    name: str
    labels: list[str] = field(default_factory=list)
    input_mount: str | None = None
    lightly_mount: str | None = None
    server: str | None = None
    token: str | None = None
    once: bool = False
    cluster: str | None = None
    poll_s: float = POLL_S
    heartbeat_s: float = HEARTBEAT_S


class Worker:
    """A worker process: one run at a time.

    Args:
        options: Name, labels, mounts, server and token.
    """

    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.api = WorkerApi(Http(server_url(options.server), resolve_token(options.token)))
        self.stop = threading.Event()
        self.busy = threading.Event()
        self.worker_id = ""
        self.results: list[RunResult] = []

    def _heartbeats(self) -> None:
        while not self.stop.wait(self.options.heartbeat_s):
            self._beat(DockerWorkerState.BUSY if self.busy.is_set() else DockerWorkerState.IDLE)

    def _beat(self, state: DockerWorkerState) -> None:
        try:
            self.api.heartbeat(self.worker_id, state)
        except (ApiException, ServerUnreachableError) as e:
            log.warning("heartbeat failed: %s", e)

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """Stop after (or, for SIGTERM and Ctrl-C, stopping) the current run."""
        if signum:
            log.info("worker: stopping (signal %d)", signum)
        self.stop.set()

    def run(self) -> int:
        """Register, then take and run runs until stopped (or after one run with ``once``).

        Returns:
            The exit code: 0.
        """
        o = self.options
        self.worker_id = self.api.register(o.name, o.labels)
        log.info(
            "worker %s (%s) registered at %s, labels %s",
            o.name,
            self.worker_id,
            self.api.http.base_url,
            o.labels or "none",
        )
        self._beat(DockerWorkerState.IDLE)
        beats = threading.Thread(target=self._heartbeats, name="thresher-heartbeat", daemon=True)
        beats.start()
        try:
            while not self.stop.is_set():
                try:
                    claimed = self.api.claim(self.worker_id)
                except (ApiException, ServerUnreachableError) as e:
                    log.warning("claim failed: %s", e)
                    claimed = None
                if claimed is None:
                    self.stop.wait(o.poll_s)
                    continue
                log.info("run %s: taken (scheduled %s)", claimed.run.id, claimed.scheduled.id)
                self.busy.set()
                self._beat(DockerWorkerState.BUSY)
                try:
                    runner = RunRunner(
                        self.api, claimed, o.input_mount, o.lightly_mount, self.stop, o.cluster
                    )
                    self.results.append(runner.run())
                finally:
                    self.busy.clear()
                    self._beat(DockerWorkerState.IDLE)
                if o.once:
                    break
        finally:
            self.stop.set()
            beats.join(timeout=o.heartbeat_s + 1)
            self._beat(DockerWorkerState.OFFLINE)
            self.api.http.close()
        return 0


def start(options: WorkerOptions) -> int:
    """Run a worker in this process; SIGTERM and Ctrl-C stop it cleanly."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("thresher").setLevel(logging.INFO)
    worker = Worker(options)
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    return worker.run()
