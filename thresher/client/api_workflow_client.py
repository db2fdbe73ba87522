"""``ApiWorkflowClient``: Lightly's client, against a thresher server."""

from __future__ import annotations

from thresher.client._artifacts import _ArtifactsMixin
from thresher.client._collaboration import _CollaborationMixin
from thresher.client._compute_worker import _ComputeWorkerMixin
from thresher.client._datasets import _DatasetsMixin
from thresher.client._datasources import _DatasourcesMixin
from thresher.client._download import _DownloadMixin
from thresher.client._export import _ExportMixin
from thresher.client._listing import _ListingMixin
from thresher.client._tags import _TagsMixin


class ApiWorkflowClient(
    _DatasetsMixin,
    _DatasourcesMixin,
    _ListingMixin,
    _ComputeWorkerMixin,
    _ArtifactsMixin,
    _TagsMixin,
    _ExportMixin,
    _DownloadMixin,
    _CollaborationMixin,
):
    """Talks to a thresher server with the method names, arguments and returns of Lightly's.

    Args:
        token: Your API token; default ``THRESHER_TOKEN``, else ``LIGHTLY_TOKEN``.
        dataset_id: The current dataset (most methods work on it); default: set by
            ``create_dataset``/``set_dataset_id_by_name``, else your last modified dataset.
        embedding_id: Kept for Lightly compatibility.
        creator: Kept for Lightly compatibility (sent with created objects).
        server_url: The server; default ``THRESHER_SERVER_URL``, else
            ``LIGHTLY_SERVER_LOCATION``, else ``http://127.0.0.1:8360``.
        timeout: Seconds before a request gives up.

    Raises:
        ValueError: No token was given or set in the environment.

    Example:
        >>> from thresher import ApiWorkflowClient, DatasetType
        >>> client = ApiWorkflowClient(token="MY_TOKEN")  # doctest: +SKIP
        >>> client.create_dataset("dataset-name", DatasetType.IMAGES)  # doctest: +SKIP
    """
