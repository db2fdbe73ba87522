"""Start-up of ``thresher run`` (``thresher.cli_startup``): what the early API server skips.

Prefect's server hashes every installed block type at each start (importing each Prefect
collection) to decide whether to register them; the early API skips that only where Prefect's
own record says the default database has them. A first run registers them as Prefect does.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from thresher.cli_startup import _blocks_registered


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    for key in ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_block_registration_is_skipped_only_where_prefect_recorded_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not _blocks_registered()  # a first run: no database
    (home / "prefect.db").write_bytes(b"")
    assert not _blocks_registered()  # a database, but no record of the registration
    (home / "memo_store.toml").write_text('block_auto_registration = "0b28"\n')
    assert _blocks_registered()
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://db/prefect")
    assert not _blocks_registered()  # another database: Prefect decides


def _block_types(db: Path) -> int:
    with sqlite3.connect(db) as con:
        (n,) = con.execute("select count(*) from block_type").fetchone()
    return int(n)


def test_first_run_registers_block_types_and_later_runs_keep_them(home: Path) -> None:
    """The early API's server, started twice on a fresh Prefect home: the first start creates
    the database and registers the block types; the second skips the registration, and the
    database still has them."""
    script = (
        "from thresher.cli_startup import EarlyAPI\n"
        "api = EarlyAPI()\n"
        "assert api.url, 'the early API did not start'\n"
        "api.wait()\n"
        "api.stop()\n"
    )
    env = dict(os.environ, PREFECT_HOME=str(home))
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180
        )
        assert out.returncode == 0, out.stderr
        assert _block_types(home / "prefect.db") > 0
        assert _blocks_registered()
