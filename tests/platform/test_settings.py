"""Numeric settings from the environment: one parser, errors that name the variable and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from thresher.errors import ConfigError
from thresher.platform.settings import Settings, env_number
from thresher.server import prefect_server


def test_unset_and_valid_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("THRESHER_WORKER_TIMEOUT_S", "THRESHER_MAX_BODY_BYTES", "THRESHER_TOKEN_DAYS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings.from_env(home=tmp_path)
    assert (s.worker_timeout_s, s.max_body_bytes, s.token_days) == (60.0, 16 * 1024 * 1024, 365)
    monkeypatch.setenv("THRESHER_WORKER_TIMEOUT_S", " 2.5 ")
    monkeypatch.setenv("THRESHER_MAX_BODY_BYTES", "1024")
    s = Settings.from_env(home=tmp_path)
    assert (s.worker_timeout_s, s.max_body_bytes) == (2.5, 1024)


def test_token_days_zero_means_never_as_documented(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("THRESHER_TOKEN_DAYS", "0")
    assert Settings.from_env(home=tmp_path).token_days == 0
    monkeypatch.setenv("THRESHER_WORKER_TIMEOUT_S", "0")  # 0 s of silence means nothing
    with pytest.raises(ConfigError, match=r"THRESHER_WORKER_TIMEOUT_S='0' must be positive"):
        Settings.from_env(home=tmp_path)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("THRESHER_WORKER_TIMEOUT_S", "soon", "is not a number: set it to e.g. 60"),
        ("THRESHER_READ_URL_SECONDS", "-5", "must be positive"),
        ("THRESHER_VERIFY_TIMEOUT_S", "nan", "is not a finite number"),
        ("THRESHER_MAX_BODY_BYTES", "1.5", "is not a whole number: set it to e.g. 16777216"),
        ("THRESHER_TOKEN_DAYS", "-1", r"must be positive, or 0 \(never expires\)"),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, raw: str, message: str
) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(ConfigError, match=message) as info:
        Settings.from_env(home=tmp_path)
    assert str(info.value).startswith(f"{name}={raw!r}")
    assert "unset it for the default" in str(info.value)


def test_the_prefect_servers_settings_use_the_same_parser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(prefect_server.PORT_ENV, "4321")
    assert prefect_server._choose_port("127.0.0.1") == 4321
    monkeypatch.setenv(prefect_server.PORT_ENV, "port")
    with pytest.raises(ConfigError, match="THRESHER_PREFECT_PORT='port' is not a whole number"):
        prefect_server._choose_port("127.0.0.1")
    monkeypatch.delenv(prefect_server.PORT_ENV)
    # Before anything starts: a bad wait is a ConfigError naming the variable, not a ValueError.
    monkeypatch.setenv(prefect_server.STARTUP_ENV, "3 min")
    with pytest.raises(ConfigError, match="THRESHER_PREFECT_STARTUP_S='3 min' is not a number"):
        prefect_server.PrefectServer(tmp_path / "prefect", "127.0.0.1").start()
    assert not (tmp_path / "prefect").exists()


def test_env_number_is_typed_by_its_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_TEST_N", "7")
    assert env_number("X_TEST_N", 1, int, "1") == 7
    assert isinstance(env_number("X_TEST_N", 1.0, float, "1.0"), float)
