"""The web page served at ``/``: datasets, runs, tags and a tag's gallery (server-rendered)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
