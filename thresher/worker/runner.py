"""Runs one claimed run: resolves its datasources, starts the flow process, relays its states.

The flow runs in a child process (``thresher.worker.run_one``) so that credentials travel in
that process's environment only, and so that a cancelled run can be stopped at once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from thresher.client.errors import ApiException, ServerUnreachableError
from thresher.wire import ClaimedRun, DatasetType
from thresher.worker.api import AbortRequested, RunEnded, WorkerApi
from thresher.worker.datasources import DatasourceError, resolve
from thresher.worker.run_one import EVENTS_FD_ENV

log = logging.getLogger("thresher.worker")

T = TypeVar("T")

#: Seconds between state reports when the flow is quiet: each report is also how the worker
#: learns that the user cancelled the run (409 ABORT_REQUESTED).
RECHECK_S = 5.0
#: Seconds the flow process gets to save its log after SIGTERM before it is killed.
GRACE_S = 20.0
#: Seconds a worker keeps sending how a run ended while the server does not answer (a restart,
#: an upgrade); sent once, a run that ended then kept its last running state for ever.
END_REPORT_S = 900.0


@dataclass
class RunResult:
    """How a run ended: ``COMPLETED``, ``FAILED`` or ``ABORTED``, and the message sent."""

    state: str
    message: str


class RunRunner:
    """Runs one claimed run to its end and reports it.

    Args:
        api: The worker routes.
        claimed: What the claim returned.
        input_mount: The worker's ``--input-mount``.
        lightly_mount: The worker's ``--lightly-mount``.
        stop: Set when the worker must stop (SIGTERM, Ctrl-C): the run is stopped and FAILED.
        cluster: The worker's ``--cluster``: the Dask scheduler its runs embed on, or None.
    """

    def __init__(
        self,
        api: WorkerApi,
        claimed: ClaimedRun,
        input_mount: str | None,
        lightly_mount: str | None,
        stop: threading.Event,
        cluster: str | None = None,
    ) -> None:
        self.cluster = cluster
        self.api = api
        self.claimed = claimed
        self.run_id = claimed.run.id
        self.input_mount = input_mount
        self.lightly_mount = lightly_mount
        self.stop = stop
        self.state = "INITIALIZING"
        self.message = ""
        self._last_report = 0.0
        self.ended: str | None = None

    def _until_answered(self, call: Callable[[], T]) -> T:
        """``call()``, again with backoff while the server does not answer (up to END_REPORT_S).

        For what only the end of a run sends (its end state, artifacts and selection): nothing
        would send it later. Gives up at once when the worker is stopping.

        Raises:
            ServerUnreachableError: Still no answer after ``END_REPORT_S``.
        """
        deadline = time.monotonic() + END_REPORT_S
        wait_s = 1.0
        while True:
            try:
                return call()
            except ServerUnreachableError as e:
                if self.stop.is_set() or time.monotonic() + wait_s > deadline:
                    raise
                log.warning("run %s: %s; trying again in %g s", self.run_id, e, wait_s)
                self.stop.wait(wait_s)
                wait_s = min(2 * wait_s, 15.0)

    def _report(
        self,
        state: str,
        message: str,
        prefect_flow_run_id: str | None = None,
        *,
        until_answered: bool = False,
    ) -> None:
        """Send a state; AbortRequested propagates, network trouble is logged and retried later.

        ``until_answered``: for the end state, which no later report repeats.
        """
        self.state, self.message = state, message
        self._last_report = time.monotonic()
        try:
            send = functools.partial(
                self.api.set_state, self.run_id, state, message, prefect_flow_run_id
            )
            if until_answered:
                self._until_answered(send)
            else:
                send()
        except RunEnded as e:
            self.ended = str(e)
            raise
        except (ApiException, ServerUnreachableError) as e:
            log.warning("run %s: could not report %s: %s", self.run_id, state, e)

    def _finish(self, state: str, message: str) -> RunResult:
        if self.ended is not None:  # the server ended the run: it takes no more states
            log.warning("run %s: the server ended it already: %s", self.run_id, self.ended)
            return RunResult("ENDED", self.ended)
        try:
            self._report(state, message, until_answered=True)
        except AbortRequested:
            if state != "ABORTED":
                state = "ABORTED"
                message = f"cancelled by the user ({message})"
                with contextlib.suppress(AbortRequested):
                    self._report("ABORTED", message)
        log.info("run %s: %s: %s", self.run_id, state, message)
        return RunResult(state, message)

    def run(self) -> RunResult:
        """Run the claimed run to its end; the state it ended in."""
        c = self.claimed
        try:
            self._report("INITIALIZING", f"run {self.run_id} taken by the worker")
            from thresher.stages.datapool import refusal

            refused = refusal(c.dataset.name, c.dataset.n_samples, c.worker_config)
            if refused:  # Lightly's rule: without the datapool the dataset must be empty
                return self._finish("FAILED", refused)
            try:
                locations = resolve(c.input, c.lightly, self.input_mount, self.lightly_mount)
            except DatasourceError as e:
                return self._finish("FAILED", str(e))
            try:
                return self._run_flow(locations.input_url, locations.lightly_url, locations.env)
            finally:
                locations.cleanup()
        except AbortRequested:
            return self._finish("ABORTED", "cancelled by the user before the flow started")

    def _run_flow(self, input_url: str, lightly_url: str, secret_env: dict[str, str]) -> RunResult:
        job = {
            "input": input_url,
            "lightly": lightly_url,
            "worker_config": self.claimed.worker_config,
            "selection_config": self.claimed.selection_config,
            "lightly_config": self.claimed.lightly_config,
            "run_id": self.run_id,
            # A dataset of type Videos is curated frame by frame (the flow's dataset_type).
            "dataset_type": "videos"
            if self.claimed.dataset.type == DatasetType.VIDEOS
            else "images",
            "cluster": self.cluster,
        }
        read_fd, write_fd = os.pipe()
        env = flow_env(dict(os.environ), secret_env, self.claimed.prefect_api_url)
        env[EVENTS_FD_ENV] = str(write_fd)
        child = subprocess.Popen(
            [sys.executable, "-m", "thresher.worker.run_one"],
            stdin=subprocess.PIPE,
            env=env,
            pass_fds=(write_fd,),
            start_new_session=True,  # Ctrl-C reaches the worker, which stops the run itself
            text=True,
        )
        os.close(write_fd)
        assert child.stdin is not None
        child.stdin.write(json.dumps(job))
        child.stdin.close()
        events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        reader = threading.Thread(target=_read_events, args=(read_fd, events), daemon=True)
        reader.start()
        artifacts: list[dict[str, str]] = []
        selection: list[str] | None = None
        crops: dict[str, Any] | None = None
        outcome: tuple[str, str] | None = None
        try:
            while True:
                if self.stop.is_set():
                    _terminate(child)
                    self._register(artifacts or self._late_artifacts(events))
                    return self._finish(
                        "FAILED",
                        "the worker was stopped while the run worked (SIGTERM or Ctrl-C); "
                        "schedule the run again",
                    )
                try:
                    event = events.get(timeout=1.0)
                except queue.Empty:
                    if time.monotonic() - self._last_report > RECHECK_S:
                        self._report(self.state, self.message)
                    continue
                if event is None:  # the flow process closed its end: it has ended
                    break
                if "state" in event:
                    flow_run = event.get("prefect_flow_run_id")
                    self._report(str(event["state"]), str(event.get("message") or ""), flow_run)
                elif "artifacts" in event:
                    artifacts = list(event["artifacts"])
                elif "selection" in event:
                    selection = [str(n) for n in event["selection"]]
                    crops = event.get("crops")
                elif "done" in event:
                    outcome = ("COMPLETED", str(event["done"]))
                elif "failed" in event:
                    outcome = ("FAILED", str(event["failed"]))
        except AbortRequested:
            _terminate(child)
            self._register(artifacts or self._late_artifacts(events))
            return self._finish("ABORTED", "cancelled by the user; the run was stopped")
        code = child.wait()
        if outcome is None:
            outcome = ("FAILED", f"the flow process ended with exit code {code} without a result")
        state, message = outcome
        try:
            if state == "COMPLETED":
                self._report("UPLOADING_ARTIFACTS", f"registering {len(artifacts)} files")
            self._register(artifacts)
            if state == "COMPLETED" and selection is not None:
                state, message = self._add_selection(selection, crops, message)
        except AbortRequested:
            return self._finish("ABORTED", "cancelled by the user while registering artifacts")
        return self._finish(state, message)

    def _late_artifacts(self, events: queue.Queue[dict[str, Any] | None]) -> list[dict[str, str]]:
        """The artifacts event of a stopped flow process, if it sent one while it unwound."""
        while True:
            try:
                event = events.get(timeout=2.0)
            except queue.Empty:
                return []
            if event is None:
                return []
            if "artifacts" in event:
                return list(event["artifacts"])

    def _add_selection(
        self, selection: list[str], crops: dict[str, Any] | None, message: str
    ) -> tuple[str, str]:
        """Report the picks (the dataset's new samples and the run's tag); the final state.

        ``crops``: an object-level run's written crops, for its crops dataset (the server
        records the images first: when only the crops are refused, they stay recorded).
        """
        add = functools.partial(self.api.add_selection, self.run_id, selection, crops)
        try:
            self._until_answered(add)
        except (ApiException, ServerUnreachableError) as e:
            what = "selection and crops" if crops is not None else "selection"
            log.warning("run %s: could not report its %s: %s", self.run_id, what, e)
            return "FAILED", f"{message}; but the server did not take its {what}: {e}"
        return "COMPLETED", message

    def _register(self, artifacts: list[dict[str, str]]) -> None:
        for a in artifacts:
            try:
                add = functools.partial(
                    self.api.add_artifact,
                    self.run_id,
                    a["type"],
                    a["file_name"],
                    a["storage_location"],
                )
                self._until_answered(add)
            except (ApiException, ServerUnreachableError) as e:
                log.warning("run %s: could not register %s: %s", self.run_id, a["file_name"], e)


def flow_env(
    worker_env: dict[str, str], secret_env: dict[str, str], prefect_api_url: str | None
) -> dict[str, str]:
    """The flow process's environment.

    The worker's environment (an ``AWS_ENDPOINT_URL`` for an S3-compatible store, say), plus
    the run's credentials, less the API token (the flow needs none). ``PREFECT_API_URL`` is
    the server's Prefect API (``prefect_api_url``) unless the worker's environment sets one.
    """
    env = {**worker_env, **secret_env}
    for name in ("THRESHER_TOKEN", "LIGHTLY_TOKEN"):
        env.pop(name, None)
    if prefect_api_url and not worker_env.get("PREFECT_API_URL"):
        env["PREFECT_API_URL"] = prefect_api_url
    return env


def _read_events(fd: int, out: queue.Queue[dict[str, Any] | None]) -> None:
    with os.fdopen(fd, encoding="utf-8") as stream:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                out.put(event)
    out.put(None)


def _terminate(child: subprocess.Popen[str]) -> None:
    """SIGTERM (the flow saves its log while it unwinds), then SIGKILL after the grace period."""
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
