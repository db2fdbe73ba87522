"""Datasources: where a dataset's INPUT and LIGHTLY data live (Lightly's method names)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from thresher.client._core import _ClientCore
from thresher.wire import (
    DatasourceConfig,
    DatasourceConfigAzure,
    DatasourceConfigGCS,
    DatasourceConfigLocal,
    DatasourceConfigS3,
    DatasourceConfigS3DelegatedAccess,
    DatasourcePurpose,
    DatasourceRawSamplesPermissions,
)

#: Lightly's default ``thumbnail_suffix``.
THUMBNAIL_SUFFIX = ".lightly/thumbnails/[filename]_thumb.[extension]"

_DATASOURCE: TypeAdapter[Any] = TypeAdapter(DatasourceConfig)


class _DatasourcesMixin(_ClientCore):
    def _put_datasource(self, config: Any) -> None:
        self._http.send_json("PUT", f"/v1/datasets/{self.dataset_id}/datasource", config.wire())

    def get_datasource(self, purpose: str | None = None) -> Any:
        """The current dataset's datasource config; secrets come back masked (``SECRET_MASK``).

        Args:
            purpose: Which config (``INPUT``, ``LIGHTLY``, ``INPUT_OUTPUT``); default: the
                server's choice, as in Lightly's client (which never passes it).

        Returns:
            The concrete config model (``DatasourceConfigS3``, ``DatasourceConfigLocal``...).
            Lightly returns a wrapper whose ``.actual_instance`` is this model.
        """
        path = f"/v1/datasets/{self.dataset_id}/datasource"
        return _DATASOURCE.validate_python(self._http.get_json(path, purpose=purpose))

    def set_local_config(
        self,
        relative_path: str = "",
        web_server_location: str | None = "http://localhost:3456",
        thumbnail_suffix: str | None = THUMBNAIL_SUFFIX,
        purpose: str = DatasourcePurpose.INPUT_OUTPUT,
    ) -> None:
        """A folder below the worker's ``--input-mount`` / ``--lightly-mount`` (by purpose).

        Args:
            relative_path: The folder, relative to the mount (no ``..``, not absolute).
            web_server_location: Kept for Lightly compatibility; unused by thresher.
            thumbnail_suffix: Where thumbnails go (None: none).
            purpose: ``DatasourcePurpose.INPUT``, ``LIGHTLY`` or ``INPUT_OUTPUT``.
        """
        self._put_datasource(
            DatasourceConfigLocal(
                full_path=relative_path,
                web_server_location=web_server_location,
                thumb_suffix=thumbnail_suffix,
                purpose=DatasourcePurpose(purpose),
            )
        )

    def set_s3_config(
        self,
        resource_path: str,
        region: str,
        access_key: str,
        secret_access_key: str,
        thumbnail_suffix: str | None = THUMBNAIL_SUFFIX,
        purpose: str = DatasourcePurpose.INPUT_OUTPUT,
    ) -> None:
        """An S3 folder (``s3://bucket/prefix/``) with an access key."""
        self._put_datasource(
            DatasourceConfigS3(
                full_path=resource_path,
                s3_region=region,
                s3_access_key_id=access_key,
                s3_secret_access_key=secret_access_key,
                thumb_suffix=thumbnail_suffix,
                purpose=DatasourcePurpose(purpose),
            )
        )

    def set_s3_delegated_access_config(
        self,
        resource_path: str,
        region: str,
        role_arn: str,
        external_id: str,
        thumbnail_suffix: str | None = THUMBNAIL_SUFFIX,
        purpose: str = DatasourcePurpose.INPUT_OUTPUT,
    ) -> None:
        """An S3 folder reached by assuming ``role_arn`` with ``external_id`` (STS)."""
        self._put_datasource(
            DatasourceConfigS3DelegatedAccess(
                full_path=resource_path,
                s3_region=region,
                s3_arn=role_arn,
                s3_external_id=external_id,
                thumb_suffix=thumbnail_suffix,
                purpose=DatasourcePurpose(purpose),
            )
        )

    def set_gcs_config(
        self,
        resource_path: str,
        project_id: str,
        credentials: str,
        thumbnail_suffix: str | None = THUMBNAIL_SUFFIX,
        purpose: str = DatasourcePurpose.INPUT_OUTPUT,
    ) -> None:
        """A Google Cloud Storage folder; ``credentials`` is the service-account JSON as text."""
        self._put_datasource(
            DatasourceConfigGCS(
                full_path=resource_path,
                gcs_project_id=project_id,
                gcs_credentials=credentials,
                thumb_suffix=thumbnail_suffix,
                purpose=DatasourcePurpose(purpose),
            )
        )

    def set_azure_config(
        self,
        container_name: str,
        account_name: str,
        sas_token: str,
        thumbnail_suffix: str | None = THUMBNAIL_SUFFIX,
        purpose: str = DatasourcePurpose.INPUT_OUTPUT,
    ) -> None:
        """An Azure Blob folder (``container/prefix/``) with a SAS token."""
        self._put_datasource(
            DatasourceConfigAzure(
                full_path=container_name,
                account_name=account_name,
                account_key=sas_token,
                thumb_suffix=thumbnail_suffix,
                purpose=DatasourcePurpose(purpose),
            )
        )

    def list_datasource_permissions(self) -> dict[str, Any]:
        """Check the current dataset's datasource against the bucket.

        Returns:
            ``{"can_read", "can_write", "can_list", "can_overwrite"}`` (bools), plus ``errors``
            (permission name -> what failed) only when a check failed.
        """
        doc = self._http.get_json(f"/v1/datasets/{self.dataset_id}/datasource/verify")
        permissions = DatasourceRawSamplesPermissions.model_validate(doc)
        return permissions.model_dump(exclude_none=True)
