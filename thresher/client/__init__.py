"""thresher's Python client: Lightly's ``ApiWorkflowClient`` against a thresher server.

``from thresher import ApiWorkflowClient, DatasetType, DatasourcePurpose`` is all a Lightly
script needs to change. Server URL: ``THRESHER_SERVER_URL`` (or ``LIGHTLY_SERVER_LOCATION``),
default ``http://127.0.0.1:8360``; token: the argument, ``THRESHER_TOKEN`` or ``LIGHTLY_TOKEN``.
"""

from thresher.client.api_workflow_client import ApiWorkflowClient
from thresher.client.errors import (
    ApiException,
    ArtifactNotExist,
    ServerUnreachableError,
    TagDoesNotExistError,
)
from thresher.client.run_info import STATE_SCHEDULED_ID_NOT_FOUND, ComputeWorkerRunInfo
from thresher.wire import (
    DatasetType,
    DatasourcePurpose,
    DockerRunScheduledPriority,
    DockerRunScheduledState,
    DockerRunState,
)

__all__ = [
    "STATE_SCHEDULED_ID_NOT_FOUND",
    "ApiException",
    "ApiWorkflowClient",
    "ArtifactNotExist",
    "ComputeWorkerRunInfo",
    "DatasetType",
    "DatasourcePurpose",
    "DockerRunScheduledPriority",
    "DockerRunScheduledState",
    "DockerRunState",
    "ServerUnreachableError",
    "TagDoesNotExistError",
]
