"""Alembic's environment: the engine comes from ``Config.attributes['engine']``."""

from __future__ import annotations

from alembic import context

from thresher.platform.models import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
