"""Prefect reads its settings once, when first imported: thresher's defaults must come first.

Each module of thresher that leads to Prefect sets the defaults before Prefect is imported (a
worker's run process once imported Prefect first, so its ephemeral API had Prefect's 20 s to
start, which a busy 2-core machine exceeds, and its runs FAILED).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from thresher.prefect_defaults import OFFLINE_DEFAULTS

_READ = """
import {module}
from prefect.settings import get_current_settings
s = get_current_settings()
print(s.server.ephemeral.startup_timeout_seconds, s.server.analytics_enabled)
"""


def _settings_prefect_sees(module: str, **env: str) -> list[str]:
    """Prefect's ephemeral start-up timeout and analytics switch after ``import module``.

    Run in a fresh interpreter, without thresher's defaults in its environment (the test
    session sets its own) but with ``env``.
    """
    clean = {k: v for k, v in os.environ.items() if k not in OFFLINE_DEFAULTS}
    return subprocess.run(
        [sys.executable, "-c", _READ.format(module=module)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()


@pytest.mark.parametrize("module", ["thresher.flows", "thresher.tasks", "thresher.worker.run_one"])
def test_prefect_sees_threshers_defaults_whatever_is_imported_first(module: str) -> None:
    assert _settings_prefect_sees(module) == ["90", "False"]


def test_a_users_own_setting_wins() -> None:
    got = _settings_prefect_sees(
        "thresher.flows", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="7"
    )
    assert got[0] == "7"
