"""The engine, sessions and migrations.

SQLite (the default) runs in WAL mode with every transaction ``BEGIN IMMEDIATE``: writers
queue on the busy timeout instead of failing with "database is locked" when a read turns into
a write, which is what makes the claim's ``UPDATE ... WHERE state='OPEN'`` safe across threads
and processes. PostgreSQL needs nothing special: its row locks do the same.

``read_session()`` is for the hot read paths (a token check, a status poll): on SQLite a plain
deferred ``BEGIN`` on connections with ``query_only`` on, so it reads a WAL snapshot without
waiting for the write lock (a writer holds it through its commit's fsync, and on a busy machine
while it is descheduled); on PostgreSQL a ``READ ONLY`` transaction. Either way a write in it
fails, on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from thresher.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Python's sqlite3 opens transactions itself; turn that off so "begin" below owns them.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_read_only(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_begin_deferred(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    A bare ``postgresql://`` URL uses psycopg 3. The SQLite file's folder is created.

    Args:
        url: The SQLAlchemy URL.
        read_only: SQLite only: connections that refuse writes, in deferred transactions.
    """
    try:
        parsed = make_url(url)
    except Exception as e:  # sqlalchemy raises ArgumentError, or ValueError for a bad port
        raise ConfigError(
            f"Cannot parse the database URL {url.split('@')[-1]!r}: {e}. Use "
            "sqlite:////path/to/thresher.db or postgresql://user:password@host:5432/db."
        ) from e
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        if read_only:
            event.listen(engine, "connect", _sqlite_read_only)
            event.listen(engine, "begin", _sqlite_begin_deferred)
        else:
            event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def alembic_config(engine: Engine, secrets: Any = None) -> Any:
    """Alembic's config for ``engine`` (the migrations ship inside the package).

    ``secrets`` (a :class:`thresher.platform.crypto.Secrets`) is for migrations that encrypt.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    cfg.attributes["secrets"] = secrets
    return cfg


def migrate(engine: Engine, secrets: Any = None) -> None:
    """Bring the schema up to date (``alembic upgrade head``); existing data is kept."""
    from alembic import command

    command.upgrade(alembic_config(engine, secrets), "head")


class Database:
    """An engine and its session factory.

    Args:
        url: The SQLAlchemy URL.
    """

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._sqlite = self.engine.url.get_backend_name() == "sqlite"
        # An in-memory SQLite database is per connection: a second engine would see another.
        separate = self._sqlite and self.engine.url.database not in (None, "", ":memory:")
        self.read_engine = make_engine(url, read_only=True) if separate else self.engine
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    def migrate(self, secrets: Any = None) -> None:
        """Create or upgrade the schema (``secrets``: for migrations that encrypt)."""
        migrate(self.engine, secrets)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed when the block ends, rolled back on an error."""
        with self._sessions() as s, s.begin():
            yield s

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reading only: it never waits for a writer; a write in it fails."""
        with self._read_sessions() as s, s.begin():
            if not self._sqlite:
                s.execute(text("SET TRANSACTION READ ONLY"))
            yield s

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
