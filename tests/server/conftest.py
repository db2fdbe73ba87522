"""Fixtures: ``client`` (FastAPI's TestClient over a temp SQLite) with two users' tokens,
and ``server`` (a real ``thresher server start`` process, see ``server_process.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.server.server_process import ServerProcess, running_server
from thresher.platform import users
from thresher.platform.core import Platform
from thresher.platform.settings import Settings
from thresher.server.app import create_app


@dataclass
class Api:
    client: TestClient
    platform: Platform
    token: str  # alice
    other: str  # bob
    mount: Path  # THRESHER_LOCAL_ROOT / THRESHER_LIGHTLY_ROOT of this server

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"token": token or self.token}


@contextmanager
def open_api(tmp_path: Path) -> Iterator[Api]:
    """The app over a temporary SQLite in ``tmp_path``, users alice and bob, an empty mount.

    The one way the tests build an :class:`Api` (``tests/reliability`` imports it too).
    """
    mount = tmp_path / "mount"
    mount.mkdir()
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'thresher.db'}",
        local_root=mount,
        lightly_root=mount,
    )
    p = Platform(settings)
    p.migrate()
    _, alice = users.add_user(p, "alice@example.com")
    _, bob = users.add_user(p, "bob@example.com")
    try:
        with TestClient(create_app(platform=p, migrate=False, crash_timer=False)) as c:
            yield Api(c, p, alice, bob, mount)
    finally:
        p.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with open_api(tmp_path) as a:
        yield a


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path / "home") as srv:
        yield srv
