"""``Platform``: what every service function needs (settings, database, secrets).

Example:
    >>> from pathlib import Path
    >>> p = Platform(Settings.from_env(home=Path("/tmp/th")))  # doctest: +SKIP
    >>> p.migrate()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from thresher.platform.crypto import Secrets, load_or_create_key
from thresher.platform.db import Database
from thresher.platform.settings import Settings


class Platform:
    """The service layer's context: one per server process (or test).

    Args:
        settings: Where the database and the secret key are, and the timeouts.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.secrets = Secrets(load_or_create_key(settings.home, settings.secret_key))

    def migrate(self) -> None:
        """Create or upgrade the schema (Alembic ``upgrade head``)."""
        self.db.migrate(self.secrets)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed when the block ends (rolled back on an error)."""
        with self.db.session() as s:
            yield s

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session that only reads: it does not wait for writers (a write in it fails)."""
        with self.db.read_session() as s:
            yield s

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()
