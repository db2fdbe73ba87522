"""No half of a credential in the database in clear text: S3 key ids are encrypted too.

The raw rows are read with SQL (SQLite and PostgreSQL); migration 0006 encrypts the key ids of
rows written before it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from tests.platform.helpers import user
from thresher.platform import datasets, datasources
from thresher.platform.core import Platform
from thresher.platform.db import alembic_config
from thresher.platform.settings import Settings
from thresher.wire import SECRET_MASK, DatasetCreateRequest, DatasourceConfigS3

KEY_ID = "AKIAKEYIDCLEARTEXT42"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"


def _s3() -> DatasourceConfigS3:
    return DatasourceConfigS3(
        purpose="INPUT",
        full_path="bucket/images",
        s3_region="eu-central-1",
        s3_access_key_id=KEY_ID,
        s3_secret_access_key=SECRET,
    )


def _raw_rows(p: Platform) -> str:
    with p.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM datasources")).all()
    return repr([tuple(r) for r in rows])


def test_the_key_id_and_secret_are_not_stored_in_clear(platform: Platform) -> None:
    alice = user(platform)
    d = datasets.create(platform, alice, DatasetCreateRequest(name="s3-images"))
    datasources.put(platform, alice, d, _s3())

    raw = _raw_rows(platform)
    assert "bucket/images" in raw  # the row is there, its public part readable
    assert KEY_ID not in raw
    assert SECRET not in raw

    # The wire shape is unchanged: reads show the key id, mask the secret; runs get both.
    shown = datasources.get(platform, alice, d)
    assert isinstance(shown, DatasourceConfigS3)
    assert (shown.s3_access_key_id, shown.s3_secret_access_key) == (KEY_ID, SECRET_MASK)
    with platform.session() as s:
        used = datasources.resolve(platform, s, d, ("INPUT",))
    assert isinstance(used, DatasourceConfigS3)
    assert (used.s3_access_key_id, used.s3_secret_access_key) == (KEY_ID, SECRET)


def test_migration_0006_encrypts_key_ids_stored_before_it(
    platform: Platform, tmp_path: Path
) -> None:
    alice = user(platform)
    d = datasets.create(platform, alice, DatasetCreateRequest(name="s3-images"))
    datasources.put(platform, alice, d, _s3())
    cfg = alembic_config(platform.db.engine, platform.secrets)
    command.downgrade(cfg, "0005")  # the rows as the code before 0006 wrote them
    assert KEY_ID in _raw_rows(platform)
    assert SECRET not in _raw_rows(platform)

    # A restart with the new code: the server's start migrates with its key.
    again = Platform(Settings(home=tmp_path / "home", database_url=platform.settings.database_url))
    try:
        again.migrate()
        raw = _raw_rows(again)
        assert KEY_ID not in raw
        assert SECRET not in raw
        shown = datasources.get(again, alice, d)
        assert isinstance(shown, DatasourceConfigS3)
        assert shown.s3_access_key_id == KEY_ID
        with again.session() as s:
            used = datasources.resolve(again, s, d, ("INPUT",))
        assert isinstance(used, DatasourceConfigS3)
        assert (used.s3_access_key_id, used.s3_secret_access_key) == (KEY_ID, SECRET)
    finally:
        again.close()
