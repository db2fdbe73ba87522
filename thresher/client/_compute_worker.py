"""Workers and runs: register, schedule, monitor, cancel (Lightly's ``_ComputeWorkerMixin``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from thresher.client._core import _ClientCore, _paginate
from thresher.client.errors import ApiException
from thresher.client.run_info import STATE_SCHEDULED_ID_NOT_FOUND, ComputeWorkerRunInfo
from thresher.wire import (
    CreateDockerWorkerRegistryEntryRequest,
    CreateEntityResponse,
    DockerRunData,
    DockerRunScheduledCreateRequest,
    DockerRunScheduledData,
    DockerRunScheduledPriority,
    DockerWorkerConfigV3Create,
    DockerWorkerRegistryEntryData,
)

#: Seconds between polls of ``compute_worker_run_info_generator`` (Lightly's waits 30 s).
POLL_INTERVAL_S = 2.0


class _ComputeWorkerMixin(_ClientCore):
    def register_compute_worker(
        self, name: str = "Default", labels: list[str] | None = None
    ) -> str:
        """Register a worker, or return the id of your worker with that name.

        Args:
            name: The worker's name (at least 3 characters).
            labels: Its labels; it takes runs whose ``runs_on`` labels it all has.

        Returns:
            The worker's id.
        """
        body = CreateDockerWorkerRegistryEntryRequest(
            name=name, labels=list(labels or []), creator=self._creator
        )
        created = self._http.send_json("POST", "/v1/docker/worker", body.wire())
        return CreateEntityResponse.model_validate(created).id

    def get_compute_workers(self) -> list[DockerWorkerRegistryEntryData]:
        """Your registered workers (``.id``, ``.name``, ``.labels``, ``.state``...)."""
        items = self._http.get_json("/v1/docker/worker")
        return [DockerWorkerRegistryEntryData.model_validate(item) for item in items]

    def get_compute_worker_ids(self) -> list[str]:
        """The ids of your registered workers."""
        return [worker.id for worker in self.get_compute_workers()]

    def delete_compute_worker(self, worker_id: str) -> None:
        """Remove a registered worker."""
        self._http.send_json("DELETE", f"/v1/docker/worker/{worker_id}")

    def create_compute_worker_config(
        self,
        worker_config: dict[str, Any] | None = None,
        lightly_config: dict[str, Any] | None = None,
        selection_config: dict[str, Any] | None = None,
    ) -> str:
        """Store the configs of a run; the server validates them.

        Returns:
            The config's id.

        Raises:
            ApiException: 400 ``BAD_REQUEST`` naming the wrong key.
        """
        config = {
            key: value
            for key, value in (("worker_config", worker_config), ("lightly_config", lightly_config))
            if value is not None
        }
        body = DockerWorkerConfigV3Create(
            config=config, selection_config=selection_config, creator=self._creator
        )
        created = self._http.send_json("POST", "/v1/docker/worker/config/v3", body.wire())
        return CreateEntityResponse.model_validate(created).id

    def schedule_compute_worker_run(
        self,
        worker_config: dict[str, Any] | None = None,
        lightly_config: dict[str, Any] | None = None,
        selection_config: dict[str, Any] | None = None,
        priority: str = DockerRunScheduledPriority.MID,
        runs_on: list[str] | None = None,
    ) -> str:
        """Schedule a run on the current dataset; a worker whose labels include ``runs_on`` runs it.

        Args:
            worker_config: The ``worker_config`` dict (as ``thresher run --config`` takes).
            lightly_config: The ``lightly_config`` dict.
            selection_config: The ``selection_config`` dict (``n_samples``, ``strategies``).
            priority: ``LOW``, ``MID`` (default), ``HIGH`` or ``CRITICAL``.
            runs_on: Labels a worker must all have to take the run.

        Returns:
            The scheduled run's id (for ``compute_worker_run_info_generator``).

        Raises:
            ValueError: ``priority`` is not one of the four (before anything is sent).
            ApiException: 400 bad config, 403 not your dataset or bad token, 404 unknown
                dataset, 422 the datasources lack a permission the run needs.

        Example:
            >>> scheduled_run_id = client.schedule_compute_worker_run(  # doctest: +SKIP
            ...     selection_config={"n_samples": 50, "strategies": [...]},
            ... )
        """
        dataset_id = self.dataset_id
        # Validates priority and labels before the config is stored.
        request = DockerRunScheduledCreateRequest(
            config_id="0" * 24,
            priority=DockerRunScheduledPriority(priority),
            runs_on=list(runs_on or []),
            creator=self._creator,
        )
        config_id = self.create_compute_worker_config(
            worker_config, lightly_config, selection_config
        )
        request.config_id = config_id
        created = self._http.send_json(
            "POST", f"/v1/datasets/{dataset_id}/docker/worker/schedule", request.wire()
        )
        return CreateEntityResponse.model_validate(created).id

    def cancel_compute_worker_run(self, scheduled_run_id: str) -> None:
        """Cancel a scheduled run (thresher's addition; Lightly's client has none).

        An OPEN run is CANCELED at once (its info becomes ``CANCELED_OR_NOT_EXISTING``); a run a
        worker has taken is stopped by the worker and ends ABORTED.

        Raises:
            ApiException: 404 unknown id, 403 not yours, 409 the run has ended already.
        """
        path = f"/v1/datasets/{self.dataset_id}/docker/worker/schedule/{scheduled_run_id}/cancel"
        self._http.send_json("POST", path)

    def get_compute_worker_runs_iter(
        self, dataset_id: str | None = None
    ) -> Iterator[DockerRunData]:
        """Your runs, all or those of ``dataset_id``, in the server's order."""
        for item in _paginate(self._http.get_json, "/v1/docker/runs"):
            run = DockerRunData.model_validate(item)
            if dataset_id is None or run.dataset_id == dataset_id:
                yield run

    def get_compute_worker_runs(self, dataset_id: str | None = None) -> list[DockerRunData]:
        """Your runs (all, or those of ``dataset_id``), oldest first."""
        return sorted(self.get_compute_worker_runs_iter(dataset_id), key=lambda r: r.created_at)

    def get_compute_worker_run(self, run_id: str) -> DockerRunData:
        """A run by its id.

        Raises:
            ApiException: 404 if no run has that id.
        """
        return DockerRunData.model_validate(self._http.get_json(f"/v1/docker/runs/{run_id}"))

    def get_compute_worker_run_from_scheduled_run(self, scheduled_run_id: str) -> DockerRunData:
        """The run a worker made of a scheduled run.

        Raises:
            ApiException: 404 until a worker has taken the scheduled run.
        """
        doc = self._http.get_json(f"/v1/docker/runs/schedule/{scheduled_run_id}")
        return DockerRunData.model_validate(doc)

    def get_compute_worker_run_from_scheduled(self, scheduled_run_id: str) -> DockerRunData:
        """Old name of ``get_compute_worker_run_from_scheduled_run`` (Lightly's docs use it)."""
        return self.get_compute_worker_run_from_scheduled_run(scheduled_run_id)

    def get_scheduled_compute_worker_runs(
        self, state: str | None = None
    ) -> list[DockerRunScheduledData]:
        """The current dataset's scheduled runs.

        Args:
            state: ``OPEN``, ``LOCKED``, ``DONE`` or ``CANCELED``; default: those not DONE or
                CANCELED.
        """
        path = f"/v1/datasets/{self.dataset_id}/docker/worker/schedule"
        items = self._http.get_json(path, state=state)
        return [DockerRunScheduledData.model_validate(item) for item in items]

    def _get_scheduled_run_by_id(self, scheduled_run_id: str) -> DockerRunScheduledData:
        for run in self.get_scheduled_compute_worker_runs():
            if run.id == scheduled_run_id:
                return run
        raise ApiException(
            status=404,
            reason="Not Found",
            body=f"No scheduled run found for run with scheduled_run_id='{scheduled_run_id}'.",
        )

    def get_compute_worker_run_info(self, scheduled_run_id: str) -> ComputeWorkerRunInfo:
        """The state and message of a scheduled run, as Lightly's client derives them.

        1. A worker took it: the run's state and message.
        2. Else, it is among the current dataset's scheduled runs: ``OPEN``.
        3. Else: ``CANCELED_OR_NOT_EXISTING`` (an end state, not a success).
        """
        try:
            run = self.get_compute_worker_run_from_scheduled_run(scheduled_run_id)
            return ComputeWorkerRunInfo(state=str(run.state), message=run.message)
        except ApiException:
            pass
        try:
            self._get_scheduled_run_by_id(scheduled_run_id)
            return ComputeWorkerRunInfo(
                state="OPEN",
                message="Waiting for pickup by Lightly Worker. "
                "Make sure to start a Lightly Worker connected to your "
                "user token to process the job.",
            )
        except ApiException:
            return ComputeWorkerRunInfo(
                state=STATE_SCHEDULED_ID_NOT_FOUND,
                message=f"Could not find a job for the given run_id: '{scheduled_run_id}'. "
                "The scheduled run does not exist or was canceled before "
                "being picked up by a Lightly Worker.",
            )

    def compute_worker_run_info_generator(
        self, scheduled_run_id: str, poll_interval: float = POLL_INTERVAL_S
    ) -> Iterator[ComputeWorkerRunInfo]:
        """Follow a scheduled run: yields its first info, then each change, until it ends.

        Args:
            scheduled_run_id: What ``schedule_compute_worker_run`` returned.
            poll_interval: Seconds between polls (Lightly's client waits 30 s).

        Example:
            >>> for run_info in client.compute_worker_run_info_generator(sid):  # doctest: +SKIP
            ...     print(run_info.state, run_info.message)
            >>> run_info.ended_successfully()  # doctest: +SKIP
            True
        """
        last: ComputeWorkerRunInfo | None = None
        while True:
            info = self.get_compute_worker_run_info(scheduled_run_id)
            if info != last:
                yield info
            if info.in_end_state():
                return
            time.sleep(poll_interval)
            last = info
