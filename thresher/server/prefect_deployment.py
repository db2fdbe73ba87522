"""The Prefect deployment the platform's runs are flow runs of: ``curate/platform``.

``thresher server start`` registers it at every start, once its Prefect API answers: a process
work pool ``thresher-platform`` and a deployment ``platform`` of the ``curate`` flow in it, with
the entrypoint ``thresher/flows/curate.py:curate``, the folder that holds the ``thresher``
package as its path (a pull step sets it as the working directory), no schedule and no
parameters of its own. An existing pool is kept and the deployment is updated in place, so a
restart changes nothing else. A worker makes each claimed run a flow run of this deployment
(parameters: the run's URLs and configs, never credentials) and runs it itself
(``thresher.worker.run_one``).

Prefect is imported here and in ``thresher.server.commands`` only: the platform's service and
HTTP layers never need it (``tests/test_architecture.py``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import thresher

log = logging.getLogger("thresher.server")

FLOW_NAME = "curate"
DEPLOYMENT_NAME = "platform"
#: What the Prefect client's ``read_deployment_by_name`` takes.
DEPLOYMENT = f"{FLOW_NAME}/{DEPLOYMENT_NAME}"
WORK_POOL = "thresher-platform"
ENTRYPOINT = "thresher/flows/curate.py:curate"
DESCRIPTION = (
    "Runs of the thresher platform (Lightly's scheduled runs). Flow runs are created and run "
    "by `thresher worker start`, which matches a run's runs_on labels and brings its "
    "credentials; `prefect worker start` is not used."
)


def code_dir() -> str:
    """The folder that holds the ``thresher`` package (the entrypoint is relative to it)."""
    return str(Path(thresher.__file__).resolve().parent.parent)


def register(api_url: str | None = None) -> str:
    """Create or update the work pool and the deployment; the deployment's id.

    Args:
        api_url: The Prefect API (default: ``PREFECT_API_URL``).

    Raises:
        Exception: Whatever the Prefect client raises (the API is down, refuses the request).
    """
    from prefect.client.orchestration import SyncPrefectClient, get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    client: SyncPrefectClient
    kwargs: dict[str, Any] = {"sync_client": True}
    if api_url:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: api_url}):
            client = get_client(**kwargs)
    else:
        client = get_client(**kwargs)
    with client:
        # An existing pool is kept as it is: someone may have tuned it in the UI.
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_work_pool(
                WorkPoolCreate(
                    name=WORK_POOL,
                    type="process",
                    description="Runs of the thresher platform (run by `thresher worker start`).",
                    base_job_template=_process_job_template(),
                )
            )
        flow_id = client.create_flow_from_name(FLOW_NAME)
        directory = code_dir()
        deployment_id = client.create_deployment(
            flow_id=flow_id,
            name=DEPLOYMENT_NAME,
            description=DESCRIPTION,
            work_pool_name=WORK_POOL,
            path=directory,
            entrypoint=ENTRYPOINT,
            pull_steps=[
                {"prefect.deployments.steps.set_working_directory": {"directory": directory}}
            ],
            schedules=[],
            parameters={},
            enforce_parameter_schema=False,
            tags=["thresher"],
        )
    return str(deployment_id)


def _process_job_template() -> dict[str, Any]:
    """The process worker's default job template (what ``prefect work-pool create`` stores)."""
    try:
        from prefect.workers.process import ProcessWorker

        return dict(ProcessWorker.get_default_base_job_template())
    except Exception:  # an older or trimmed Prefect: the pool works without one
        return {}


def register_or_warn(api_url: str | None = None) -> str | None:
    """:func:`register`, logging a warning instead of raising; the deployment's id or None."""
    try:
        deployment_id = register(api_url)
    except Exception as e:
        log.warning(
            "could not register the Prefect deployment %s (work pool %s): %s: %s. Runs still "
            "run: workers run the flow directly, and it shows in Prefect without a deployment.",
            DEPLOYMENT,
            WORK_POOL,
            type(e).__name__,
            str(e).splitlines()[0] if str(e) else "",
        )
        return None
    log.info("Prefect deployment %s (work pool %s) registered", DEPLOYMENT, WORK_POOL)
    return deployment_id
