"""A run's artifacts: report, log, memory log, checkpoint... (Lightly's ``_ArtifactsMixin``)."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from thresher.client._core import _ClientCore
from thresher.client.errors import ApiException, ArtifactNotExist, ServerUnreachableError
from thresher.client.http import stream_download
from thresher.wire import DockerRunArtifactData, DockerRunData

_TRIES = 3


class _ArtifactsMixin(_ClientCore):
    def download_compute_worker_run_artifacts(
        self, run: DockerRunData, output_dir: str, timeout: int = 60
    ) -> None:
        """Download every artifact of ``run`` to ``output_dir/<file name>``.

        ``run`` is a snapshot: fetch it again after the run ended to see every artifact.
        """
        if run.artifacts is None:
            return
        for artifact in run.artifacts:
            self._download_artifact(
                run.id, artifact.id, os.path.join(output_dir, artifact.file_name), timeout
            )

    def download_compute_worker_run_checkpoint(
        self, run: DockerRunData, output_path: str, timeout: int = 60
    ) -> None:
        """Download the run's training checkpoint (only runs with ``enable_training``).

        Raises:
            ArtifactNotExist: The run has no checkpoint.
        """
        self._download_by_type(run, "CHECKPOINT", output_path, timeout)

    def download_compute_worker_run_report_pdf(
        self, run: DockerRunData, output_path: str, timeout: int = 60
    ) -> None:
        """Download the run's report.pdf.

        Raises:
            ArtifactNotExist: The run has no report (yet).
        """
        self._download_by_type(run, "REPORT_PDF", output_path, timeout)

    def download_compute_worker_run_report_json(
        self, run: DockerRunData, output_path: str, timeout: int = 60
    ) -> None:
        """Download the run's report.json (deprecated in Lightly's client, as here).

        Raises:
            ArtifactNotExist: The run has no report.json.
        """
        warnings.warn(
            DeprecationWarning(
                "This method downloads the deprecated report.json file and will be "
                "removed in the future. Use download_compute_worker_run_report_v2_json "
                "to download the new report_v2.json file instead."
            ),
            stacklevel=2,
        )
        self._download_by_type(run, "REPORT_JSON", output_path, timeout)

    def download_compute_worker_run_report_v2_json(
        self, run: DockerRunData, output_path: str, timeout: int = 60
    ) -> None:
        """Download the run's report_v2.json.

        Raises:
            ArtifactNotExist: The run has no report_v2.json.
        """
        self._download_by_type(run, "REPORT_V2_JSON", output_path, timeout)

    def download_compute_worker_run_log(
        self, run: DockerRunData, output_path: str, timeout: int = 60
    ) -> None:
        """Download the run's log.txt (failed runs have one too).

        Raises:
            ArtifactNotExist: The run has no log (yet).
        """
        self._download_by_type(run, "LOG", output_path, timeout)

    def download_compute_worker_run_memory_log(
        self, run: DockerRunData, output_path: str, timeout: int = 60
    ) -> None:
        """Download the run's memlog.txt.

        Raises:
            ArtifactNotExist: The run has no memory log (yet).
        """
        self._download_by_type(run, "MEMLOG", output_path, timeout)

    def download_compute_worker_run_corruptness_check_information(
        self, run: DockerRunData, output_path: str, timeout: int = 60
    ) -> None:
        """Download corruptness_check_information.json (``{"corrupt_samples": {name: why}}``).

        Raises:
            ArtifactNotExist: The run has no such file.
        """
        self._download_by_type(run, "CORRUPTNESS_CHECK_INFORMATION", output_path, timeout)

    def download_compute_worker_run_sequence_information(
        self, run: DockerRunData, output_path: str, timeout: int = 60
    ) -> None:
        """Download sequence_information.json (video runs with ``selected_sequence_length``).

        Raises:
            ArtifactNotExist: The run has no such file.
        """
        self._download_by_type(run, "SEQUENCE_INFORMATION", output_path, timeout)

    def get_compute_worker_run_checkpoint_url(self, run: DockerRunData) -> str:
        """A signed, expiring URL of the run's checkpoint (no token needed to fetch it).

        Raises:
            ArtifactNotExist: The run has no checkpoint.
        """
        artifact = _artifact_by_type(run, "CHECKPOINT")
        return self._read_url(run.id, artifact.id)

    def _download_by_type(
        self, run: DockerRunData, artifact_type: str, output_path: str, timeout: int
    ) -> None:
        artifact = _artifact_by_type(run, artifact_type)
        self._download_artifact(run.id, artifact.id, output_path, timeout)

    def _read_url(self, run_id: str, artifact_id: str) -> str:
        url = self._http.get_json(f"/v1/docker/runs/{run_id}/artifacts/{artifact_id}/readurl")
        if not isinstance(url, str):
            raise ApiException(status=200, reason="the read URL is not a JSON string")
        return url if "://" in url else self.server_url + "/" + url.lstrip("/")

    def _download_artifact(
        self, run_id: str, artifact_id: str, output_path: str, timeout: int
    ) -> None:
        out = Path(output_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name(out.name + ".part")
        for attempt in range(1, _TRIES + 1):
            url = self._read_url(run_id, artifact_id)  # signed URLs expire: a new one per try
            try:
                with (
                    stream_download(url, timeout_s=float(timeout)) as response,
                    open(part, "wb") as f,
                ):
                    for chunk in response.iter_bytes():
                        f.write(chunk)
                part.replace(out)  # a failed download leaves no half-written file at out
                return
            except (ApiException, ServerUnreachableError) as e:
                part.unlink(missing_ok=True)
                server_side = isinstance(e, ApiException) and (e.status or 0) >= 500
                if attempt == _TRIES or not (server_side or isinstance(e, ServerUnreachableError)):
                    raise
                time.sleep(attempt)


def _artifact_by_type(run: DockerRunData, artifact_type: str) -> DockerRunArtifactData:
    if run.artifacts is None:
        raise ArtifactNotExist("Run has no artifacts.")
    for artifact in run.artifacts:
        if artifact.type == artifact_type:
            return artifact
    raise ArtifactNotExist(f"No artifact with type '{artifact_type}' in artifacts.")
