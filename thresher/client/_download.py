"""Downloads: a tag's files and the embeddings CSV (Lightly's ``_DownloadDatasetMixin``)."""

from __future__ import annotations

from thresher.client._core import _ClientCore


class _DownloadMixin(_ClientCore):
    pass
