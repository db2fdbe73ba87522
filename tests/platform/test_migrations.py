"""``alembic upgrade head`` on an empty database gives exactly the models' schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from thresher.platform.core import Platform
from thresher.platform.models import Base


def test_migrations_match_the_models(platform: Platform) -> None:
    # The fixture ran `upgrade head` on an empty database (SQLite and PostgreSQL).
    with platform.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_keeps_data(platform: Platform) -> None:
    from thresher.platform import users

    users.add_user(platform, "keep@example.com")
    platform.migrate()  # a second start: nothing to do, nothing lost
    with platform.session() as s:
        from sqlalchemy import text

        assert s.execute(text("SELECT email FROM users")).scalars().all() == ["keep@example.com"]
