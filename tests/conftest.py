"""Test-wide settings. Prefect's home (and thresher's) is a fresh temporary folder per test
session: results and cache records live there, and a shared home would serve one session's
cache to the next."""

import atexit
import os
import shutil
import tempfile

_home = tempfile.mkdtemp(prefix="thresher-test-prefect-")
os.environ["PREFECT_HOME"] = _home
# thresher's own home (the converted OpenVINO models, the platform's default database): the
# session's too, so tests never write to ~/.thresher (tests that need another set their own).
os.environ["THRESHER_HOME"] = os.path.join(_home, "thresher-home")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["THRESHER_PROGRESS"] = "0"
# `thresher server start` starts no Prefect server of its own (the one test that wants it says so).
os.environ.setdefault("THRESHER_PREFECT_SERVER", "off")
os.environ.setdefault("MPLBACKEND", "Agg")
# gcsfs otherwise probes an emulator over gRPC and hangs 60 s per call (must precede its import).
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
atexit.register(shutil.rmtree, _home, ignore_errors=True)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_server():
    """One Prefect API server (SQLite, a subprocess) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def example_dataset(tmp_path_factory):
    """The planted example: 5 colour clusters x 12 images, 4 exact duplicates, 4 corrupt files."""
    from thresher.examples import make_example_dataset

    return make_example_dataset(tmp_path_factory.mktemp("example") / "input")
