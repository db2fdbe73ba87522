"""API tokens expire (THRESHER_TOKEN_DAYS) and can be renewed with ``thresher user token``."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import pytest
from sqlalchemy import select, update

from thresher.platform import users
from thresher.platform.core import Platform
from thresher.platform.errors import Forbidden, NotFound
from thresher.platform.models import Token


def _expire_all(p: Platform) -> None:
    with p.session() as s:
        s.execute(update(Token).values(expires_at=int(time.time() * 1000) - 1))


def test_a_token_lasts_token_days_then_is_refused(platform: Platform) -> None:
    user, token = users.add_user(platform, "alice@example.com")
    with platform.session() as s:
        expires = s.scalar(select(Token.expires_at))
    year = 365 * 86_400_000
    assert abs(expires - (time.time() * 1000 + year)) < 60_000  # the default: 365 days
    assert users.authenticate(platform, token).id == user.id

    _expire_all(platform)
    with pytest.raises(Forbidden) as refused:
        users.authenticate(platform, token)
    message = refused.value.message
    assert "expired on" in message and "thresher user token alice@example.com" in message
    assert token not in message

    _, renewed = users.new_token(platform, "alice@example.com")
    assert renewed != token and users.authenticate(platform, renewed).id == user.id
    with pytest.raises(Forbidden):
        users.authenticate(platform, token)  # the expired one stays refused


def test_token_days_zero_never_expires(platform: Platform) -> None:
    p = Platform(dataclasses.replace(platform.settings, token_days=0))
    try:
        _, token = users.add_user(p, "bob@example.com")
        with p.session() as s:
            assert s.scalar(select(Token.expires_at)) is None
        assert users.authenticate(p, token).email == "bob@example.com"
    finally:
        p.close()


def test_a_new_token_needs_a_known_user(platform: Platform) -> None:
    with pytest.raises(NotFound, match=r"thresher user add nobody@example\.com"):
        users.new_token(platform, "nobody@example.com")


def test_thresher_user_token_prints_a_working_token(tmp_path) -> None:
    env = {"THRESHER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "thresher", "user"]
    subprocess.run([*cmd, "add", "carol@example.com"], env=env, check=True, capture_output=True)
    out = subprocess.run(
        [*cmd, "token", "carol@example.com"], env=env, check=True, capture_output=True, text=True
    )
    token = out.stdout.strip()
    assert "valid 365 days" in out.stderr and len(token) >= 16
    from thresher.platform.settings import Settings

    p = Platform(Settings.from_env(home=tmp_path))
    try:
        assert users.authenticate(p, token).email == "carol@example.com"
    finally:
        p.close()
