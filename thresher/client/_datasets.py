"""Datasets: create, find by name, list, delete (Lightly's ``_DatasetsMixin`` names)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

from thresher.client._core import _ClientCore
from thresher.wire import CreateEntityResponse, DatasetCreateRequest, DatasetData, DatasetType


class _DatasetsMixin(_ClientCore):
    @property
    def dataset_type(self) -> str:
        """The type of the current dataset (``Images``, ``Videos`` or ``Crops``)."""
        return str(self.get_dataset_by_id(self.dataset_id).type)

    def get_datasets_iter(self, shared: bool | None = False) -> Iterator[DatasetData]:
        """Your datasets (``shared=False``), those shared with you (``True``) or both (``None``)."""
        seen: set[str] = set()
        sources = [False, True] if shared is None else [bool(shared)]
        for flag in sources:
            for dataset in self._list_datasets(shared=flag):
                if dataset.id not in seen:
                    seen.add(dataset.id)
                    yield dataset

    def get_datasets(self, shared: bool | None = False) -> list[DatasetData]:
        """Your datasets (``shared=False``), those shared with you (``True``) or both (``None``).

        Returns:
            The datasets as ``DatasetData`` (``.id``, ``.name``, ``.type``...).
        """
        return list(self.get_datasets_iter(shared))

    def get_all_datasets(self) -> list[DatasetData]:
        """Deprecated: ``get_datasets(shared=None)``."""
        warnings.warn(
            "get_all_datasets() is deprecated in favour of get_datasets(shared=None) "
            "and will be removed in the future.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.get_datasets(shared=None)

    def get_datasets_by_name(
        self, dataset_name: str, shared: bool | None = False
    ) -> list[DatasetData]:
        """The datasets named exactly ``dataset_name`` (``shared`` as in ``get_datasets``)."""
        return [d for d in self.get_datasets_iter(shared) if d.name == dataset_name]

    def dataset_name_exists(self, dataset_name: str, shared: bool | None = False) -> bool:
        """Whether a dataset named ``dataset_name`` exists (``shared`` as in ``get_datasets``)."""
        return bool(self.get_datasets_by_name(dataset_name, shared=shared))

    def set_dataset_id_by_name(self, dataset_name: str, shared: bool | None = False) -> None:
        """Make the dataset named ``dataset_name`` the current one.

        Raises:
            ValueError: No such dataset.
        """
        datasets = self.get_datasets_by_name(dataset_name, shared=shared)
        if not datasets:
            raise ValueError(
                f"A dataset with the name '{dataset_name}' does not exist on the "
                "Lightly Platform. Please create it first."
            )
        self._dataset_id = datasets[0].id
        if len(datasets) > 1:
            msg = (
                f"Found {len(datasets)} datasets with the name '{dataset_name}'. Their "
                f"ids are {[d.id for d in datasets]}. "
                f"The dataset_id of the client was set to '{self._dataset_id}'. "
            )
            if shared or shared is None:
                msg += (
                    f"We noticed that you set shared={shared} which also retrieves datasets "
                    "shared with you. Set shared=False to only consider datasets you own."
                )
            warnings.warn(msg, stacklevel=2)

    def create_dataset(self, dataset_name: str, dataset_type: str = DatasetType.IMAGES) -> None:
        """Create a dataset and make it the current one.

        Args:
            dataset_name: At least 3 characters, not used by another dataset you own.
            dataset_type: ``DatasetType.IMAGES`` (default), ``VIDEOS`` or ``CROPS``.

        Raises:
            ValueError: You own a dataset with that name already, or the name is too short.

        Example:
            >>> client.create_dataset("my-dataset", DatasetType.IMAGES)  # doctest: +SKIP
        """
        if self.dataset_name_exists(dataset_name):
            raise ValueError(
                f"A dataset with the name '{dataset_name}' already exists! Please use "
                "the `set_dataset_id_by_name()` method instead if you intend to reuse "
                "an existing dataset."
            )
        self._create_dataset_without_check_existing(dataset_name, dataset_type)

    def _create_dataset_without_check_existing(self, dataset_name: str, dataset_type: str) -> None:
        body = DatasetCreateRequest(
            name=dataset_name, type=DatasetType(dataset_type), creator=self._creator
        )
        created = self._http.send_json("POST", "/v1/datasets", body.wire())
        self._dataset_id = CreateEntityResponse.model_validate(created).id

    def create_new_dataset_with_unique_name(
        self, dataset_basename: str, dataset_type: str = DatasetType.IMAGES
    ) -> None:
        """Create a dataset named ``dataset_basename``, or ``<basename>_1``, ``_2``... if taken."""
        names = {d.name for d in self.get_datasets(shared=False)}
        name, counter = dataset_basename, 0
        while name in names:
            counter += 1
            name = f"{dataset_basename}_{counter}"
        self._create_dataset_without_check_existing(name, dataset_type)

    def delete_dataset_by_id(self, dataset_id: str) -> None:
        """Delete a dataset; the client's current dataset is cleared afterwards (as Lightly's).

        Raises:
            ApiException: 404 if it does not exist, 403 if it is not yours.
        """
        self._http.send_json("DELETE", f"/v1/datasets/{dataset_id}")
        self._dataset_id = None
