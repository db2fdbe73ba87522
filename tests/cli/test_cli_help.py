"""``thresher --help``, each command's help and ``thresher --version``, from the real command."""

from __future__ import annotations

import subprocess
import sys

import pytest

import thresher


def thresher_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thresher", *args], capture_output=True, text=True, timeout=120
    )


def test_version() -> None:
    proc = thresher_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"thresher {thresher.__version__}"


def test_top_level_help_describes_and_shows_examples() -> None:
    proc = thresher_cli("--help")
    assert proc.returncode == 0
    out = proc.stdout
    assert "The ``thresher`` command" not in out  # the module docstring is not help text
    assert "examples" in out
    assert "thresher example ./example" in out and "thresher run ./example --n-samples 10" in out
    assert "130" in out and "2 a problem" in out  # exit codes


@pytest.mark.parametrize(
    "command,example",
    [
        ("run", "thresher run ./images --n-samples 100"),
        ("example", "thresher example ./example && thresher run ./example --n-samples 10"),
    ],
)
def test_command_help_has_examples(command: str, example: str) -> None:
    proc = thresher_cli(command, "--help")
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and example in proc.stdout


def test_run_help_explains_every_option() -> None:
    out = " ".join(thresher_cli("run", "--help").stdout.split())
    assert "-1 to select until every stopping condition is met" in out
    # videos as Lightly takes them: the help names the formats and the frame names
    assert "--dataset-type {images,videos}" in out and "<video>-<frame>-<ext>.png" in out


def test_no_command_prints_help_and_fails() -> None:
    proc = thresher_cli()
    assert proc.returncode == 2
    assert "run" in proc.stderr and "example" in proc.stderr
