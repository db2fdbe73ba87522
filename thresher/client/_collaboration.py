"""Sharing (Lightly's ``_CollaborationMixin``): who else may work with a dataset."""

from __future__ import annotations

from pydantic import TypeAdapter

from thresher.client._core import _ClientCore
from thresher.wire import SharedAccessConfigCreateRequest, SharedAccessConfigData

_CONFIGS: TypeAdapter[list[SharedAccessConfigData]] = TypeAdapter(list[SharedAccessConfigData])


class _CollaborationMixin(_ClientCore):
    def share_dataset_only_with(self, dataset_id: str, user_emails: list[str]) -> None:
        """Share a dataset with exactly these users; ``[]`` revokes everyone.

        The list replaces the previous one: to add a user, read the list with
        :meth:`get_shared_users`, append, and share again. The users may then read the
        dataset, schedule runs of it, make tags, export and download; only you (its owner)
        may delete it, set its datasources or share it.

        Args:
            dataset_id: The dataset to share (yours).
            user_emails: E-mails of users the server knows (``thresher user add``).

        Raises:
            ApiException: 400 naming an e-mail no user has, 403 if the dataset is not yours,
                404 if it does not exist.

        Example:
            >>> client.share_dataset_only_with(dataset_id, ["bob@example.com"])  # doctest: +SKIP
        """
        body = SharedAccessConfigCreateRequest(
            access_type="WRITE", users=list(user_emails), creator=self._creator
        )
        self._http.send_json("POST", f"/v1/datasets/{dataset_id}/collaboration/access", body.wire())

    def get_shared_users(self, dataset_id: str) -> list[str]:
        """The e-mails of the users a dataset (yours) is shared with; ``[]`` when none.

        Example:
            >>> client.get_shared_users(dataset_id)  # doctest: +SKIP
            ['bob@example.com']
        """
        configs = _CONFIGS.validate_python(
            self._http.get_json(f"/v1/datasets/{dataset_id}/collaboration/access")
        )
        for config in configs:  # as Lightly's: the users of the first WRITE config
            if config.access_type == "WRITE":
                return list(config.users)
        return []
