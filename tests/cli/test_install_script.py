"""scripts/install.sh: steps announced, the second run skips pip, a changed pyproject reinstalls.

The real script runs in a copy of the project whose ``.venv`` holds a stand-in python (it logs
what pip was asked and succeeds), so nothing is downloaded and the real ``.venv`` is untouched.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_FAKE_PYTHON = """#!/usr/bin/env bash
echo "$@" >> "$(dirname "$0")/../calls.log"
[ "${FAIL_PIP:-0}" = 1 ] && [ "$1 $2 $3" = "-m pip install" ] && [ "$4" != "-q" ] && exit 1
exit 0
"""
_FAKE_THRESHER = "#!/usr/bin/env bash\necho 'thresher 9.9.9'\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "install.sh", tmp_path / "scripts" / "install.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", _FAKE_PYTHON), ("thresher", _FAKE_THRESHER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def install(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "scripts/install.sh"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def pip_calls(project: Path) -> list[str]:
    log = project / ".venv" / "calls.log"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [c for c in calls if c.startswith("-m pip install")]


def test_first_run_installs_with_progress_then_skips(project: Path) -> None:
    first = install(project)
    assert first.returncode == 0, first.stderr
    calls = pip_calls(project)
    assert any("torch==2.14.1" in c for c in calls) and any("-e .[dev" in c for c in calls)
    assert all("--progress-bar on" in c for c in calls if "-U pip" not in c)
    for step in ("[1/4]", "[2/4]", "[3/4]", "[4/4]", "about 5 GB", "about 2 GB"):
        assert step in first.stdout
    assert "thresher 9.9.9 installed" in first.stdout

    second = install(project)
    assert second.returncode == 0, second.stderr
    assert pip_calls(project) == []
    assert "already installed" in second.stdout

    forced = install(project, THRESHER_REINSTALL="1")
    assert forced.returncode == 0 and len(pip_calls(project)) == 3


def test_a_changed_pyproject_reinstalls(project: Path) -> None:
    assert install(project).returncode == 0
    pip_calls(project)
    with (project / "pyproject.toml").open("a") as fh:
        fh.write("\n# a new dependency\n")
    again = install(project)
    assert again.returncode == 0
    assert len(pip_calls(project)) == 3 and "already installed" not in again.stdout


def test_a_failed_install_is_not_marked_done(project: Path) -> None:
    failed = install(project, FAIL_PIP="1")
    assert failed.returncode != 0
    assert not (project / ".venv" / ".thresher-installed").exists()
    pip_calls(project)
    retry = install(project)
    assert retry.returncode == 0 and len(pip_calls(project)) == 3
