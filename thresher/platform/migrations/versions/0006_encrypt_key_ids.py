"""S3 access key ids move from ``datasources.public`` (clear text) into the encrypted ``secret``.

No table changes: rows of type S3 whose ``public`` JSON still holds ``s3_access_key_id`` get it
removed there and added to the Fernet token in ``secret``. The server's key comes from
``Config.attributes['secrets']`` (:meth:`thresher.platform.core.Platform.migrate` passes it).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_FIELD = "s3_access_key_id"
_ROWS = sa.table(
    "datasources",
    sa.column("id", sa.String),
    sa.column("type", sa.String),
    sa.column("public", sa.JSON),
    sa.column("secret", sa.Text),
)


def _secrets() -> Any:
    found = context.config.attributes.get("secrets")
    if found is None:
        raise RuntimeError(
            "Migration 0006 encrypts stored S3 access key ids and needs the server's secret key: "
            "run it through Platform.migrate() (`thresher server start` or `thresher user ...` "
            "do), which passes the key."
        )
    return found


def _move(change: Callable[[Any, dict[str, Any], dict[str, Any]], bool]) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_ROWS.c.id, _ROWS.c.public, _ROWS.c.secret).where(_ROWS.c.type == "S3")
    ).all()
    secrets = None
    for row_id, public, token in rows:
        public = dict(public or {})
        if secrets is None:
            secrets = _secrets()
        secret = secrets.decrypt(token) if token else {}
        if change(secrets, public, secret):
            bind.execute(
                sa.update(_ROWS)
                .where(_ROWS.c.id == row_id)
                .values(public=public, secret=secrets.encrypt(secret) if secret else None)
            )


def _seal(_: Any, public: dict[str, Any], secret: dict[str, Any]) -> bool:
    if _FIELD not in public:
        return False
    secret[_FIELD] = public.pop(_FIELD)
    return True


def _unseal(_: Any, public: dict[str, Any], secret: dict[str, Any]) -> bool:
    if _FIELD not in secret:
        return False
    public[_FIELD] = secret.pop(_FIELD)
    return True


def upgrade() -> None:
    """Apply this migration: encrypt every S3 access key id stored in clear text."""
    _move(_seal)


def downgrade() -> None:
    """Undo this migration: the key ids go back to ``public`` (clear text, as 0005 kept them)."""
    _move(_unseal)
