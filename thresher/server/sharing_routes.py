"""Sharing: Lightly's ``/v1/datasets/{d}/collaboration/access`` routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
