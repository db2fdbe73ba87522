"""The client's core: the HTTP session and the current dataset (``client.dataset_id``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

from thresher.client.errors import ApiException
from thresher.client.http import Http, resolve_token, server_url
from thresher.wire import DatasetData

#: Items per page when listing (Lightly's client asks for 5000).
PAGE_SIZE = 5000
#: Items per page of ``GET /v1/datasets/{d}/mappings`` (Lightly's client asks for 25 000).
MAPPINGS_PAGE_SIZE = 25_000


class _ClientCore:
    """Holds the session and the current dataset; the mixins add the methods."""

    def __init__(
        self,
        token: str | None = None,
        dataset_id: str | None = None,
        embedding_id: str | None = None,
        creator: str = "USER_PIP",
        server_url: str | None = None,
        timeout: float = 180.0,
    ) -> None:
        self._http = Http(_server(server_url), resolve_token(token), timeout_s=timeout)
        self._creator = creator
        self._dataset_id: str | None = dataset_id
        self.embedding_id = embedding_id

    def __repr__(self) -> str:
        return f"ApiWorkflowClient(server={self._http.base_url!r}, dataset_id={self._dataset_id!r})"

    @property
    def server_url(self) -> str:
        """The server this client talks to."""
        return self._http.base_url

    @property
    def dataset_id(self) -> str:
        """The current dataset; most methods work on it.

        If none was set, the most recently modified dataset you own is taken (with a warning).

        Raises:
            IndexError: None was set and you own no dataset.
        """
        if self._dataset_id is None:
            datasets = sorted(self._list_datasets(shared=False), key=lambda d: d.last_modified_at)
            if not datasets:
                raise IndexError(
                    "The client has no dataset_id and you own no dataset: call create_dataset() "
                    "or pass dataset_id=... to ApiWorkflowClient."
                )
            last = datasets[-1]
            self._dataset_id = last.id
            warnings.warn(
                UserWarning(
                    "Dataset has not been specified, taking the last modified dataset "
                    f"{last.name} as default dataset."
                ),
                stacklevel=2,
            )
        return self._dataset_id

    @dataset_id.setter
    def dataset_id(self, dataset_id: str) -> None:
        if not self.dataset_exists(dataset_id):
            raise ValueError(
                f"A dataset with the id {dataset_id} does not exist on the webplatform."
            )
        self._dataset_id = dataset_id

    def dataset_exists(self, dataset_id: str) -> bool:
        """Whether a dataset with this id exists and you may see it.

        Raises:
            ApiException: Any error other than 404.
        """
        try:
            self.get_dataset_by_id(dataset_id)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    def get_dataset_by_id(self, dataset_id: str) -> DatasetData:
        """The dataset with this id.

        Raises:
            ApiException: 404 if it does not exist, 403 if it is not yours.
        """
        return DatasetData.model_validate(self._http.get_json(f"/v1/datasets/{dataset_id}"))

    def _list_datasets(self, shared: bool) -> Iterator[DatasetData]:
        for item in _paginate(self._http.get_json, "/v1/datasets", shared=shared):
            yield DatasetData.model_validate(item)

    def _mappings(self, field: str) -> list[str]:
        """One field (``fileName`` or ``_id``) of the current dataset's samples, in order."""
        path = f"/v1/datasets/{self.dataset_id}/mappings"
        pages = _paginate(self._http.get_json, path, MAPPINGS_PAGE_SIZE, field=field)
        return [str(v) for v in pages]


def _server(explicit: str | None) -> str:
    return server_url(explicit)


def _paginate(
    get: Callable[..., Any], path: str, page_size: int = PAGE_SIZE, **params: Any
) -> Iterator[Any]:
    """Every item of a paged list route (``pageSize``/``pageOffset``, stops on a short page)."""
    offset = 0
    while True:
        page = get(path, pageSize=page_size, pageOffset=offset, **params)
        if not isinstance(page, list):
            raise ApiException(
                status=200, reason="unexpected body", body=str(page)[:200], method="GET", path=path
            )
        yield from page
        if len(page) < page_size:
            return
        offset += len(page)
