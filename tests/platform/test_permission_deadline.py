"""A storage that does not answer fails the permission check in bounded time.

Cloud libraries retry an unreachable endpoint for minutes (adlfs: over 4 minutes on a DNS
failure); Lightly's client gives up on any request after 180 s with a bare ReadTimeoutError.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from thresher.platform import datasources
from thresher.platform.settings import Settings
from thresher.wire import (
    DatasourceConfig,
    DatasourceConfigLocal,
    DatasourceConfigS3,
    DatasourceRawSamplesPermissions,
)

SLOW = DatasourceConfigS3(
    full_path="s3://slow-bucket/input/",
    s3_region="eu-central-1",
    s3_access_key_id="AKIA",
    s3_secret_access_key="a-secret-that-must-not-show",
)
FAST = DatasourceConfigLocal(full_path="lightly")


def test_a_check_past_the_deadline_fails_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def check(
        cfg: DatasourceConfig, root: Path | None, names: tuple[str, ...]
    ) -> DatasourceRawSamplesPermissions:
        if cfg is SLOW:
            release.wait(30)
        return DatasourceRawSamplesPermissions(
            can_read=True, can_write=True, can_list=True, can_overwrite=True
        )

    monkeypatch.setattr(datasources, "check_permissions", check)
    start = time.monotonic()
    try:
        slow, fast = datasources.check_permissions_in_time(
            [(SLOW, None, ("list", "read")), (FAST, None, ("write", "overwrite"))], 0.5
        )
    finally:
        release.set()
    assert time.monotonic() - start < 5
    assert fast.errors is None and fast.can_write
    assert not slow.can_list and not slow.can_read
    assert slow.can_write and slow.can_overwrite  # not asked: not failed
    assert slow.errors is not None and slow.errors.can_list is not None
    assert "No answer from the S3 datasource 's3://slow-bucket/input/' within 0.5 s" in (
        slow.errors.can_list
    )
    assert "THRESHER_VERIFY_TIMEOUT_S" in slow.errors.can_list
    assert "a-secret-that-must-not-show" not in slow.model_dump_json()


def test_the_deadline_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THRESHER_VERIFY_TIMEOUT_S", raising=False)
    assert Settings.from_env(home=Path("/tmp/x")).verify_timeout_s == 60.0
    monkeypatch.setenv("THRESHER_VERIFY_TIMEOUT_S", "7.5")
    assert Settings.from_env(home=Path("/tmp/x")).verify_timeout_s == 7.5
