"""Runs one claimed run's flow: the process the worker starts for each run.

``python -m thresher.worker.run_one`` reads the job (URLs, configs, run id) as JSON on stdin;
credentials come in its environment, never in the job or the flow's parameters. It reports
progress as JSON lines on the file descriptor named by ``THRESHER_WORKER_EVENTS_FD``:
``{"state", "message"}`` while it works (the first one with ``"prefect_flow_run_id"`` when the
run is a flow run of the server's deployment) (from the flow's ``stage <name>`` lines and its human
lines), then ``{"artifacts": [...]}``, on success ``{"selection": [file names]}`` (the run's
``filenames/selected.txt``; an object-level run that wrote its crops adds
``"crops": {"task", "filenames"}``, its ``filenames/selected_crops.txt``) and
``{"done": summary}``, else ``{"failed": reason}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import IO, Any

import thresher.prefect_defaults  # noqa: F401  (before Prefect: its settings' defaults)
from thresher.runlog import redact
from thresher.stages import STAGE_NAMES, stage
from thresher.wire import ARTIFACT_FILES

EVENTS_FD_ENV = "THRESHER_WORKER_EVENTS_FD"


class _Events:
    """Writes events, one JSON object a line; a lost parent ends this process."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, **event: Any) -> None:
        with self._lock:
            try:
                self._stream.write(json.dumps(event) + "\n")
                self._stream.flush()
            except (BrokenPipeError, OSError):
                _end_orphaned_run()  # the worker is gone: nobody would see this run finish


class StateHandler(logging.Handler):
    """Turns the flow's log records into run states and messages.

    ``stage <name>`` becomes the stage's ``run_state`` (``thresher.stages.STAGES``); other INFO
    records of the ``thresher`` loggers (``checked 68 files: 4 corrupt``, ``embed: 1000 img in
    31.2 s (32.1 img/s)``) become the message of the current state. Warnings (one per corrupt
    file) are not sent: the log has them.
    """

    def __init__(self, events: _Events) -> None:
        super().__init__(level=logging.INFO)
        self.events = events
        self.state = "INITIALIZING"

    def emit(self, record: logging.LogRecord) -> None:
        """Send the state or message ``record`` stands for (INFO records only)."""
        if record.levelno != logging.INFO:
            return
        try:
            text = record.getMessage()
        except Exception:  # a malformed record must not break the run
            return
        if text.startswith("stage ") and text[6:] in STAGE_NAMES:
            row = stage(text[6:])
            self.state = row.run_state
            self.events.send(state=self.state, message=f"{row.name}: {row.does}")
        else:
            self.events.send(state=self.state, message=redact(text))


def _artifacts(lightly_url: str, run_id: str) -> list[dict[str, str]]:
    """The run's files that exist in LIGHTLY, as ``ArtifactCreateRequest`` fields."""
    from thresher.stages.write_results import run_dir
    from thresher.storage.location import Location

    lightly = Location(lightly_url)
    found = []
    for artifact_type, name in ARTIFACT_FILES.items():
        rel = f"{run_dir(run_id)}/{name}"
        try:
            if lightly.exists(rel):
                found.append({"type": artifact_type, "file_name": name, "storage_location": rel})
        except Exception:  # one unreadable file must not hide the others
            continue
    return found


def _selection(lightly_url: str, run_id: str) -> list[str] | None:
    """The run's picks in pick order (``filenames/selected.txt`` in LIGHTLY), None if absent."""
    from thresher.stages.write_results import run_dir
    from thresher.storage.location import Location

    lightly = Location(lightly_url)
    rel = f"{run_dir(run_id)}/filenames/selected.txt"
    if not lightly.exists(rel):
        return None
    return [line for line in lightly.read_text(rel).splitlines() if line.strip()]


def _crops(lightly_url: str, run_id: str) -> dict[str, Any] | None:
    """An object-level run's written crops: ``{"task", "filenames"}``, else None.

    From ``config.json`` (``object_sizes``: the task, and whether the crops were written to
    ``.lightly/crops/<task>/``) and ``filenames/selected_crops.txt``.
    """
    from thresher.stages.write_results import run_dir
    from thresher.storage.location import Location

    lightly = Location(lightly_url)
    base = run_dir(run_id)
    if not lightly.exists(f"{base}/filenames/selected_crops.txt"):
        return None
    sizes = json.loads(lightly.read_text(f"{base}/config.json")).get("object_sizes") or {}
    if not sizes.get("cropsWritten") or not sizes.get("task"):
        return None
    text = lightly.read_text(f"{base}/filenames/selected_crops.txt")
    return {"task": str(sizes["task"]), "filenames": [x for x in text.splitlines() if x.strip()]}


def summary(sizes: dict[str, int], report_pdf: str) -> str:
    """The COMPLETED message: what was kept and removed, and where the report is."""
    return (
        f"selected {sizes.get('n_selected', 0)} of {sizes.get('n_input', 0)} files "
        f"({sizes.get('n_corrupt', 0)} corrupt, {sizes.get('n_duplicate', 0)} duplicates, "
        f"{sizes.get('n_removed', 0)} not selected, {sizes.get('n_filtered', 0)} filtered out); "
        f"report: {report_pdf}"
    )


def one_paragraph(error: BaseException) -> str:
    """The FAILED message: a ThresherError's message, else the exception's first line."""
    from thresher.errors import ThresherError

    if isinstance(error, ThresherError):
        return redact(str(error))
    first = (str(error).strip().splitlines() or [""])[0]
    return redact(f"{type(error).__name__}: {first}" if first else type(error).__name__)


def flow_parameters(job: dict[str, Any]) -> dict[str, Any]:
    """The flow run's parameters: the run's URLs and configs.

    Credentials never: those are in this process's environment only.
    """
    return {
        "input": job["input"],
        "lightly": job["lightly"],
        "worker_config": job.get("worker_config") or None,
        "selection_config": job.get("selection_config") or None,
        "lightly_config": job.get("lightly_config") or None,
        "run_id": job["run_id"],
        "dataset_type": job.get("dataset_type", "images"),
    } | ({"cluster": job["cluster"]} if job.get("cluster") else {})  # worker start --cluster


def run_flow(job: dict[str, Any], events: _Events) -> Any:
    """Run the ``curate`` flow for ``job``; its result (``RunOutputs``).

    With a Prefect API (``PREFECT_API_URL``) that has the server's deployment
    ``curate/platform``, the run becomes a flow run of that deployment (named after the run,
    in the work pool ``thresher-platform``) and this process executes that flow run as
    Prefect's own process worker does (``prefect.engine``: load the flow run, ``run_flow``).
    Without one (the server runs no Prefect, ``THRESHER_PREFECT_SERVER=off``; or the deployment
    is missing) the flow is called directly, as a flow run of no deployment.
    """
    from prefect.flow_engine import load_flow_run
    from prefect.flow_engine import run_flow as prefect_run_flow

    from thresher.flows.curate import curate

    parameters = flow_parameters(job)
    flow_run_id, why = _flow_run_of_deployment(parameters, str(job["run_id"]))
    if flow_run_id is None:
        text = f"running the curate flow without the Prefect deployment: {why}"
        logging.getLogger("thresher.worker").warning(text)
        events.send(state="INITIALIZING", message=text)
        # The Prefect flow run is named after the run, so the Prefect UI shows which is which.
        return curate.with_options(flow_run_name=str(job["run_id"]))(**parameters)
    # The server links the run to this flow run in the Prefect UI.
    events.send(
        state="INITIALIZING",
        message=f"Prefect flow run {flow_run_id}",
        prefect_flow_run_id=str(flow_run_id),
    )
    flow_run = load_flow_run(flow_run_id)
    # The flow is the deployment's entrypoint (thresher/flows/curate.py:curate), imported as
    # this package's module: no pull step or storage needed, the code is this process's own.
    return prefect_run_flow(curate, flow_run=flow_run)


def _flow_run_of_deployment(parameters: dict[str, Any], name: str) -> tuple[Any, str]:
    """A new flow run of ``curate/platform`` (its id, "") or (None, why there is none)."""
    if not os.environ.get("PREFECT_API_URL"):
        return None, "no Prefect API (PREFECT_API_URL unset: the server runs no Prefect)"
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from thresher.server.prefect_deployment import DEPLOYMENT

    try:
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(DEPLOYMENT)
            flow_run = client.create_flow_run_from_deployment(
                deployment.id, parameters=parameters, name=name
            )
    except ObjectNotFound:
        return None, f"the Prefect API has no deployment {DEPLOYMENT}"
    except Exception as e:  # the API is down or refuses: the flow reports to it or fails alone
        first = (str(e).strip().splitlines() or [""])[0]
        return None, redact(f"could not create a flow run of {DEPLOYMENT}: {first}")
    return flow_run.id, ""


def _end_orphaned_run() -> None:
    """Stop at once, with what this process started (e.g. Prefect's API server).

    The worker died (killed): its run is reported CRASHED. This process's group goes too.
    """
    with contextlib.suppress(OSError):
        if os.getpgid(0) == os.getpid():  # the worker made this a group leader
            os.killpg(0, signal.SIGKILL)
    os._exit(3)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            _end_orphaned_run()


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: the flow's finally saves log.txt and memlog.txt


def main() -> int:
    """Run the job on stdin; exit 0 done, 1 failed."""
    job = json.load(sys.stdin)
    fd = int(os.environ[EVENTS_FD_ENV])
    events = _Events(os.fdopen(fd, "w", encoding="utf-8"))
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    signal.signal(signal.SIGTERM, _stop)
    handler = StateHandler(events)
    logger = logging.getLogger("thresher")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    code = 1
    try:
        events.send(state="INITIALIZING", message="starting the curate flow (Prefect)")
        from thresher.stages.write_results import run_dir

        result = run_flow(job, events)
        events.send(artifacts=_artifacts(job["lightly"], job["run_id"]))
        picks = _selection(job["lightly"], job["run_id"])
        if picks is not None:
            crops = _crops(job["lightly"], job["run_id"])
            events.send(selection=picks, **({"crops": crops} if crops is not None else {}))
        report = f"LIGHTLY/{run_dir(job['run_id'])}/report.pdf"  # no worker paths in messages
        events.send(done=summary(result.sizes, report))
        code = 0
    except BaseException as e:  # report every way of ending, then exit
        events.send(artifacts=_artifacts(job["lightly"], job["run_id"]))
        events.send(failed=one_paragraph(e))
    finally:
        logger.removeHandler(handler)
    return code


if __name__ == "__main__":
    sys.exit(main())
