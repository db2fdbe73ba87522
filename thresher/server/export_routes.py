"""Exports, sample read URLs and embeddings: Lightly's ``/v1`` routes for a tag's samples."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
