"""Datasource listing: Lightly's ``download_raw_samples`` family and the processed-until time.

Each method asks ``.../list/dnc`` for one cursor per shard, then follows each shard's pages
(side by side, one thread per shard) until ``hasMore`` is false, as Lightly's client does.
Names are relative to the datasource root; read URLs fetch a file without a token until they
expire. Timestamps are Unix seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from thresher.client._core import _ClientCore
from thresher.wire import (
    DatasourceProcessedUntilTimestampRequest,
    DatasourceProcessedUntilTimestampResponse,
    DatasourceRawSamplesData,
    DivideAndConquerCursorData,
)


class _ListingMixin(_ClientCore):
    def _list_files(
        self,
        what: str,
        *,
        from_: int,
        to: int | None,
        relevant_filenames_file_name: str | None,
        divide_and_conquer_shards: int,
        use_redirected_read_url: bool,
        progress_bar: Any,
        task_name: str | None = None,
    ) -> Iterator[tuple[str, str]]:
        """``(file name, read URL)`` of every file of one listing, shard after shard."""
        base = f"/v1/datasets/{self.dataset_id}/datasource/{what}"
        params: dict[str, Any] = {
            "from": from_,
            "to": to,
            "relevantFilenamesFileName": relevant_filenames_file_name or None,
            "taskName": task_name,
        }
        doc = self._http.get_json(
            f"{base}/dnc", dncShards=max(1, divide_and_conquer_shards), **params
        )
        cursors = DivideAndConquerCursorData.model_validate(doc).cursors

        def shard(cursor: str) -> list[tuple[str, str]]:
            out: list[tuple[str, str]] = []
            while True:
                page = DatasourceRawSamplesData.model_validate(
                    self._http.get_json(
                        base,
                        cursor=cursor,
                        useRedirectedReadUrl=use_redirected_read_url,
                        taskName=task_name,
                    )
                )
                out += [(row.file_name, row.read_url) for row in page.data]
                if progress_bar is not None:
                    progress_bar.update(len(page.data))
                if not page.has_more:
                    return out
                cursor = page.cursor

        with ThreadPoolExecutor(max_workers=max(1, len(cursors))) as pool:
            for rows in pool.map(shard, cursors):
                yield from rows

    def download_raw_samples(
        self,
        from_: int = 0,
        to: int | None = None,
        relevant_filenames_file_name: str | None = None,
        divide_and_conquer_shards: int = 1,
        use_redirected_read_url: bool = False,
        progress_bar: Any = None,
    ) -> list[tuple[str, str]]:
        """The files of the current dataset's INPUT datasource, with read URLs.

        Args:
            from_: Files last modified at or after this Unix second (default: all).
            to: Files last modified at or before this Unix second (default: now).
            relevant_filenames_file_name: A file in the LIGHTLY datasource (relative to its
                root) naming the relevant files; only those are listed.
            divide_and_conquer_shards: How many shards are listed side by side.
            use_redirected_read_url: Kept for Lightly compatibility: thresher's read URLs are
                always redirect-style links to the server.
            progress_bar: A ``tqdm`` bar updated with the number of files listed.

        Returns:
            ``[(file name relative to INPUT, read URL), ...]``.
        """
        return list(
            self._list_files(
                "list",
                from_=from_,
                to=to,
                relevant_filenames_file_name=relevant_filenames_file_name,
                divide_and_conquer_shards=divide_and_conquer_shards,
                use_redirected_read_url=use_redirected_read_url,
                progress_bar=progress_bar,
            )
        )

    def download_raw_predictions_iter(
        self,
        task_name: str,
        from_: int = 0,
        to: int | None = None,
        relevant_filenames_file_name: str | None = None,
        run_id: str | None = None,
        relevant_filenames_artifact_id: str | None = None,
        divide_and_conquer_shards: int = 1,
        use_redirected_read_url: bool = False,
        progress_bar: Any = None,
    ) -> Iterator[tuple[str, str]]:
        """The files below ``.lightly/predictions/<task_name>/`` of LIGHTLY, with read URLs.

        Args:
            task_name: The prediction task (its folder's name).
            from_: Files last modified at or after this Unix second.
            to: Files last modified at or before this Unix second (default: now).
            relevant_filenames_file_name: Keep the predictions of the files this file (in
                LIGHTLY) names (and ``schema.json``).
            run_id: Not supported by thresher (relevant filenames from a run's artifact).
            relevant_filenames_artifact_id: Not supported by thresher.
            divide_and_conquer_shards: How many shards are listed side by side.
            use_redirected_read_url: Kept for Lightly compatibility.
            progress_bar: A ``tqdm`` bar updated with the number of files listed.

        Raises:
            ValueError: ``run_id`` or ``relevant_filenames_artifact_id`` was given.
        """
        _no_artifact(run_id, relevant_filenames_artifact_id)
        return self._list_files(
            "predictions/list",
            from_=from_,
            to=to,
            relevant_filenames_file_name=relevant_filenames_file_name,
            divide_and_conquer_shards=divide_and_conquer_shards,
            use_redirected_read_url=use_redirected_read_url,
            progress_bar=progress_bar,
            task_name=task_name,
        )

    def download_raw_predictions(
        self,
        task_name: str,
        from_: int = 0,
        to: int | None = None,
        relevant_filenames_file_name: str | None = None,
        run_id: str | None = None,
        relevant_filenames_artifact_id: str | None = None,
        divide_and_conquer_shards: int = 1,
        use_redirected_read_url: bool = False,
        progress_bar: Any = None,
    ) -> list[tuple[str, str]]:
        """:meth:`download_raw_predictions_iter` as a list."""
        return list(
            self.download_raw_predictions_iter(
                task_name,
                from_=from_,
                to=to,
                relevant_filenames_file_name=relevant_filenames_file_name,
                run_id=run_id,
                relevant_filenames_artifact_id=relevant_filenames_artifact_id,
                divide_and_conquer_shards=divide_and_conquer_shards,
                use_redirected_read_url=use_redirected_read_url,
                progress_bar=progress_bar,
            )
        )

    def download_raw_metadata_iter(
        self,
        from_: int = 0,
        to: int | None = None,
        run_id: str | None = None,
        relevant_filenames_artifact_id: str | None = None,
        relevant_filenames_file_name: str | None = None,
        divide_and_conquer_shards: int = 1,
        use_redirected_read_url: bool = False,
        progress_bar: Any = None,
    ) -> Iterator[tuple[str, str]]:
        """The files below ``.lightly/metadata/`` of LIGHTLY, with read URLs.

        Args: as :meth:`download_raw_predictions_iter`, without ``task_name``.

        Raises:
            ValueError: ``run_id`` or ``relevant_filenames_artifact_id`` was given.
        """
        _no_artifact(run_id, relevant_filenames_artifact_id)
        return self._list_files(
            "metadata/list",
            from_=from_,
            to=to,
            relevant_filenames_file_name=relevant_filenames_file_name,
            divide_and_conquer_shards=divide_and_conquer_shards,
            use_redirected_read_url=use_redirected_read_url,
            progress_bar=progress_bar,
        )

    def download_raw_metadata(
        self,
        from_: int = 0,
        to: int | None = None,
        run_id: str | None = None,
        relevant_filenames_artifact_id: str | None = None,
        relevant_filenames_file_name: str | None = None,
        divide_and_conquer_shards: int = 1,
        use_redirected_read_url: bool = False,
        progress_bar: Any = None,
    ) -> list[tuple[str, str]]:
        """:meth:`download_raw_metadata_iter` as a list."""
        return list(
            self.download_raw_metadata_iter(
                from_=from_,
                to=to,
                run_id=run_id,
                relevant_filenames_artifact_id=relevant_filenames_artifact_id,
                relevant_filenames_file_name=relevant_filenames_file_name,
                divide_and_conquer_shards=divide_and_conquer_shards,
                use_redirected_read_url=use_redirected_read_url,
                progress_bar=progress_bar,
            )
        )

    def download_new_raw_samples(
        self, divide_and_conquer_shards: int = 1, use_redirected_read_url: bool = False
    ) -> list[tuple[str, str]]:
        """The INPUT files modified since the processed-until time; then sets it to now.

        Call it again later to get only the files added (or changed) in between. Files
        modified in the very second of the previous call are not listed again (Lightly's
        rule: the time is in whole seconds).

        Returns:
            ``[(file name, read URL), ...]``.
        """
        from_ = self.get_processed_until_timestamp()
        if from_ != 0:
            from_ += 1  # files at that very second were listed by the previous call
        to = int(time.time())
        data = self.download_raw_samples(
            from_=from_,
            to=to,
            divide_and_conquer_shards=divide_and_conquer_shards,
            use_redirected_read_url=use_redirected_read_url,
        )
        self.update_processed_until_timestamp(to)
        return data

    def get_processed_until_timestamp(self) -> int:
        """Until when the current dataset's datasource was processed (Unix s; 0 = never)."""
        path = f"/v1/datasets/{self.dataset_id}/datasource/processedUntilTimestamp"
        doc = self._http.get_json(path)
        return DatasourceProcessedUntilTimestampResponse.model_validate(
            doc
        ).processed_until_timestamp

    def update_processed_until_timestamp(self, timestamp: int) -> None:
        """Set until when the current dataset's datasource was processed (Unix seconds).

        The owner and the users the dataset is shared with may set it.
        """
        body = DatasourceProcessedUntilTimestampRequest(processed_until_timestamp=timestamp)
        path = f"/v1/datasets/{self.dataset_id}/datasource/processedUntilTimestamp"
        self._http.send_json("PUT", path, body.wire())


def _no_artifact(run_id: str | None, artifact_id: str | None) -> None:
    if run_id is not None or artifact_id is not None:
        raise ValueError(
            "run_id/relevant_filenames_artifact_id (relevant filenames from a run's artifact) "
            "are not supported by thresher; upload the file to the LIGHTLY datasource and pass "
            "relevant_filenames_file_name instead."
        )
