"""Exports of a tag's samples (Lightly's ``_ExportDatasetMixin``)."""

from __future__ import annotations

from thresher.client._core import _ClientCore


class _ExportMixin(_ClientCore):
    pass
