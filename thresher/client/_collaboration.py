"""Sharing (Lightly's ``_CollaborationMixin``)."""

from __future__ import annotations

from thresher.client._core import _ClientCore


class _CollaborationMixin(_ClientCore):
    pass
