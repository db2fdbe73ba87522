"""Exports of a tag's samples (Lightly's ``_ExportDatasetMixin``).

Every ``*_by_tag_name`` method looks the tag up (``TagDoesNotExistError``, a ``ValueError``, if
there is none) and calls its ``*_by_tag_id`` twin. Every export pages as Lightly's client does:
``pageOffset = page * pageSize`` (5000 names, 2500 tasks or rows a page) until a short page.
Read URLs in the results fetch the original files without a token until they expire
(``THRESHER_READ_URL_SECONDS`` on the server, 7 days by default).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from thresher.client._core import _ClientCore
from thresher.client.errors import ApiException

if TYPE_CHECKING:
    from thresher.wire import TagData

#: Lightly's page sizes: file names, and tasks or data rows.
NAMES_PAGE_SIZE = 5000
ROWS_PAGE_SIZE = 2500


class _ExportMixin(_ClientCore):
    if TYPE_CHECKING:  # from _TagsMixin, beside this mixin in ApiWorkflowClient

        def get_tag_by_name(self, tag_name: str) -> TagData: ...

    # --- file names and read URLs ---------------------------------------------------------

    def export_filenames_by_tag_id(self, tag_id: str) -> str:
        r"""The file names of the tag's samples, one per line (no trailing newline).

        Example:
            >>> client.export_filenames_by_tag_id("646b40d6c06aae1b91294a9e")  # doctest: +SKIP
            'image-1.jpg\\nimage-2.jpg\\nimage-3.jpg'
        """
        return "\n".join(self._export_lines(tag_id, "NAME"))

    def export_filenames_by_tag_name(self, tag_name: str) -> str:
        """The file names of the tag's samples, one per line (no trailing newline).

        Raises:
            TagDoesNotExistError: The dataset has no such tag.

        Example:
            >>> filenames = client.export_filenames_by_tag_name("initial-tag")  # doctest: +SKIP
            >>> with open("filenames-of-initial-tag.txt", "w") as f:  # doctest: +SKIP
            ...     f.write(filenames)
        """
        return self.export_filenames_by_tag_id(self.get_tag_by_name(tag_name).id)

    def export_filenames_and_read_urls_by_tag_id(self, tag_id: str) -> list[dict[str, str]]:
        """``[{"fileName", "readUrl", "datasourceUrl"}]`` for the tag's samples.

        ``readUrl`` fetches the original without a token until it expires; ``datasourceUrl`` is
        where it lies in the INPUT datasource (``s3://bucket/prefix/name``...).
        """
        rows = self._export_rows(
            f"/v1/datasets/{self.dataset_id}/tags/{tag_id}/export/basic/filenamesAndReadUrls",
            NAMES_PAGE_SIZE,
        )
        return [
            {
                "fileName": r["fileName"],
                "readUrl": r["readUrl"],
                "datasourceUrl": r["datasourceUrl"],
            }
            for r in rows
        ]

    def export_filenames_and_read_urls_by_tag_name(self, tag_name: str) -> list[dict[str, str]]:
        """``[{"fileName", "readUrl", "datasourceUrl"}]`` for the tag's samples.

        Raises:
            TagDoesNotExistError: The dataset has no such tag.
        """
        return self.export_filenames_and_read_urls_by_tag_id(self.get_tag_by_name(tag_name).id)

    # --- labeling tools -------------------------------------------------------------------

    def export_label_studio_tasks_by_tag_id(self, tag_id: str) -> list[dict[str, Any]]:
        """Tasks Label Studio imports as they are: ``[{"id", "data": {"image": url, ...}}]``.

        Returns dicts (Lightly's real client returns model objects here, see docs/platform.md).
        """
        return self._export_rows(self._export_path(tag_id, "LabelStudio/tasks"), ROWS_PAGE_SIZE)

    def export_label_studio_tasks_by_tag_name(self, tag_name: str) -> list[dict[str, Any]]:
        """Label Studio tasks of the tag's samples (see ``..._by_tag_id``).

        Raises:
            TagDoesNotExistError: The dataset has no such tag.

        Example:
            >>> name = "initial-tag"
            >>> tasks = client.export_label_studio_tasks_by_tag_name(name)  # doctest: +SKIP
            >>> with open("my-label-studio-tasks.json", "w") as f:  # doctest: +SKIP
            ...     json.dump(tasks, f)
        """
        return self.export_label_studio_tasks_by_tag_id(self.get_tag_by_name(tag_name).id)

    def export_label_box_data_rows_by_tag_id(self, tag_id: str) -> list[dict[str, Any]]:
        """Labelbox v3 data rows ``[{"externalId", "imageUrl"}]`` (deprecated: use v4)."""
        warnings.warn(
            DeprecationWarning(
                "This method exports data in the deprecated Labelbox v3 format and will be "
                "removed in the future. Use export_label_box_v4_data_rows_by_tag_id to export "
                "data in the Labelbox v4 format instead."
            ),
            stacklevel=2,
        )
        return self._export_rows(self._export_path(tag_id, "LabelBox/datarows"), ROWS_PAGE_SIZE)

    def export_label_box_data_rows_by_tag_name(self, tag_name: str) -> list[dict[str, Any]]:
        """Labelbox v3 data rows of the tag's samples (deprecated: use v4).

        Raises:
            TagDoesNotExistError: The dataset has no such tag.
        """
        warnings.warn(
            DeprecationWarning(
                "This method exports data in the deprecated Labelbox v3 format and will be "
                "removed in the future. Use export_label_box_v4_data_rows_by_tag_name to export "
                "data in the Labelbox v4 format instead."
            ),
            stacklevel=2,
        )
        tag_id = self.get_tag_by_name(tag_name).id
        with warnings.catch_warnings():  # warned once already
            warnings.simplefilter("ignore", DeprecationWarning)
            return self.export_label_box_data_rows_by_tag_id(tag_id)

    def export_label_box_v4_data_rows_by_tag_id(self, tag_id: str) -> list[dict[str, Any]]:
        """Labelbox v4 data rows ``[{"row_data", "global_key", "media_type"}]`` (snake_case)."""
        return self._export_rows(self._export_path(tag_id, "LabelBoxV4/datarows"), ROWS_PAGE_SIZE)

    def export_label_box_v4_data_rows_by_tag_name(self, tag_name: str) -> list[dict[str, Any]]:
        """Labelbox v4 data rows of the tag's samples; ``dataset.create_data_rows`` takes them.

        Raises:
            TagDoesNotExistError: The dataset has no such tag.
        """
        return self.export_label_box_v4_data_rows_by_tag_id(self.get_tag_by_name(tag_name).id)

    # --- paging ---------------------------------------------------------------------------

    def _export_path(self, tag_id: str, what: str) -> str:
        return f"/v1/datasets/{self.dataset_id}/tags/{tag_id}/export/{what}"

    def _export_lines(self, tag_id: str, file_name_format: str) -> Iterator[str]:
        path = self._export_path(tag_id, "basic/filenames")
        offset = 0
        while True:
            text = self._http.request(
                "GET",
                path,
                params={
                    "fileNameFormat": file_name_format,
                    "pageSize": NAMES_PAGE_SIZE,
                    "pageOffset": offset,
                },
            ).text
            lines = text.split("\n") if text else []
            yield from lines
            if len(lines) < NAMES_PAGE_SIZE:
                return
            offset += NAMES_PAGE_SIZE

    def _export_rows(self, path: str, page_size: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._http.get_json(path, pageSize=page_size, pageOffset=offset)
            if not isinstance(page, list):
                raise ApiException(
                    status=200, reason="unexpected body", body=str(page)[:200], path=path
                )
            out.extend(page)
            if len(page) < page_size:
                return out
            offset += page_size
