"""Fixtures: a Platform on a temporary SQLite file, and on a real PostgreSQL when installed.

The PostgreSQL cluster is initdb'd in a temp folder, owned by the ``postgres`` user (initdb
refuses root), on a free port, once per session. Without Debian's postgresql the PostgreSQL
variants are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from thresher.platform.core import Platform
from thresher.platform.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-c", " ".join(cmd)]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run initdb as")
    base = Path(tempfile.mkdtemp(prefix="thresher-pg-"))
    os.chmod(base, 0o777)
    data = base / "data"
    port = free_port()
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "thresher", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    log = base / "pg.log"
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                f"-p {port} -k {base} -c listen_addresses=127.0.0.1",
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        import psycopg

        deadline = time.time() + 30
        while True:
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={port} user=thresher dbname=postgres", autocommit=True
                ):
                    break
            except psycopg.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield f"postgresql://thresher@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def _fresh_pg_db(server_url: str) -> str:
    import psycopg

    name = "t_" + os.urandom(6).hex()
    host = server_url.split("@", 1)[1]
    h, port = host.split(":")
    with psycopg.connect(
        f"host={h} port={port} user=thresher dbname=postgres", autocommit=True
    ) as c:
        c.execute(f"CREATE DATABASE {name}")
    return f"{server_url}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    """A migrated Platform on SQLite (a temp file) or PostgreSQL (a fresh database)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'thresher.db'}"
    else:
        url = _fresh_pg_db(request.getfixturevalue("postgres_url"))
    p = Platform(Settings(home=tmp_path / "home", database_url=url, worker_timeout_s=60.0))
    p.migrate()
    yield p
    p.close()
