"""User errors through the real ``thresher`` command: one paragraph, exit code 2, no traceback.

The mistakes that can be found without Prefect (paths, configs, emptiness) must be reported
before Prefect starts: each case runs ``main()`` in a fresh interpreter and reports whether
``prefect`` was ever imported, and the runs must have written nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from thresher.examples import make_example_dataset

# Runs the real CLI entry point in a subprocess and says afterwards whether Prefect was imported.
_PROBE = """
import json, sys
from thresher.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(json.dumps({"code": code, "prefect": "prefect" in sys.modules}))
"""


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> tuple[int, bool, str]:
    """Run ``thresher ARGS`` in a fresh interpreter: exit code, Prefect imported?, stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=dict(os.environ, THRESHER_PROGRESS="0"),
    )
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    return probe["code"], probe["prefect"], proc.stderr


def flat(text: str) -> str:
    """The message with its line wrapping undone."""
    return " ".join(text.split())


def assert_one_paragraph(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert stderr.startswith("thresher: error:"), stderr
    assert "Starting temporary server" not in stderr and "curating" not in stderr, stderr


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "images"
    make_example_dataset(root, n_clusters=2, per_cluster=3, n_duplicates=1)
    return root


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_empty_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, prefect, err = run_cli("run", str(empty), "--n-samples", "5", cwd=tmp_path)
    assert (code, prefect) == (2, False)
    assert_one_paragraph(err)
    assert "No images found" in flat(err)
    assert not (tmp_path / "empty-lightly").exists()


def test_lightly_inside_input(images: Path, tmp_path: Path) -> None:
    before = _tree(images)
    code, prefect, err = run_cli(
        "run", str(images), "--lightly", str(images / "out"), "--n-samples", "5", cwd=tmp_path
    )
    assert (code, prefect) == (2, False)
    assert_one_paragraph(err)
    assert "inside the INPUT location" in flat(err)
    assert _tree(images) == before  # nothing was created inside INPUT


def test_missing_input(tmp_path: Path) -> None:
    code, prefect, err = run_cli("run", str(tmp_path / "nope"), "--n-samples", "5", cwd=tmp_path)
    assert (code, prefect) == (2, False)
    assert_one_paragraph(err)
    assert "does not exist" in flat(err)


def test_malformed_yaml_names_line_and_column(images: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("worker_config:\n  enable_corruptness_check: [true\nselection_config: {}\n")
    code, prefect, err = run_cli("run", str(images), "--config", str(cfg), cwd=tmp_path)
    assert (code, prefect) == (2, False)
    assert_one_paragraph(err)
    assert "line 3, column" in flat(err), err


def test_bad_json_flag(images: Path, tmp_path: Path) -> None:
    code, prefect, err = run_cli("run", str(images), "--worker-config", "{bad", cwd=tmp_path)
    assert (code, prefect) == (2, False)
    assert_one_paragraph(err)
    assert "--worker-config: not valid JSON" in err and "column 2" in flat(err), err


def _running_with(mark: str) -> list[Any]:
    """The processes whose environment holds ``THRESHER_TEST_MARK=mark``."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("THRESHER_TEST_MARK") == mark:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def test_a_refused_run_leaves_nothing_running(images: Path, tmp_path: Path) -> None:
    # `thresher run` starts Prefect's API server (and the report's UMAP worker) at its first
    # line, before it checks anything: a refused run must stop them as it exits.
    import time
    import uuid

    import psutil

    mark = uuid.uuid4().hex
    env = dict(os.environ, THRESHER_TEST_MARK=mark, PREFECT_HOME=str(tmp_path / "prefect"))
    for key in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH"):
        env.pop(key, None)  # no API of the user's: the command starts its own
    env["THRESHER_PROGRESS"] = "0"
    err = tmp_path / "stderr.txt"  # a file, not a pipe: a process left behind would hold a pipe
    with err.open("w") as fh:
        proc = subprocess.run(  # the command itself: only its own process starts these early
            [sys.executable, "-m", "thresher", "run", str(images), "--worker-config", "{bad"],
            stdout=subprocess.DEVNULL,
            stderr=fh,
            cwd=tmp_path,
            timeout=300,
            env=env,
        )
    assert proc.returncode == 2, err.read_text()
    assert_one_paragraph(err.read_text())
    deadline = time.monotonic() + 3
    while (left := _running_with(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    names = []
    for p in left:  # named, then killed: a failure here leaves nothing behind either
        with contextlib.suppress(psutil.Error):
            names.append(" ".join(p.cmdline()))
            p.kill()
    assert names == [], "left running after the command exited"


def test_unknown_config_key_suggests_the_closest(images: Path, tmp_path: Path) -> None:
    code, prefect, err = run_cli(
        "run",
        str(images),
        "--n-samples",
        "3",
        "--worker-config",
        '{"remove_exact_duplicate": true}',
        cwd=tmp_path,
    )
    assert (code, prefect) == (2, False)
    assert_one_paragraph(err)
    assert "Did you mean 'remove_exact_duplicates'" in flat(err), err


@pytest.mark.parametrize(
    "value,expected",
    [
        ("0", "0 would select nothing"),
        # -5 must be refused with what -1 means, not a bare "should be >= -1".
        ("-5", "-1 to select until every stopping condition is met"),
    ],
)
def test_sample_counts_that_make_no_sense(
    images: Path, tmp_path: Path, value: str, expected: str
) -> None:
    code, prefect, err = run_cli("run", str(images), "--n-samples", value, cwd=tmp_path)
    assert (code, prefect) == (2, False)
    assert_one_paragraph(err)
    assert "n_samples" in err and expected in flat(err), err


def test_videos_on_a_folder_of_images_are_refused_clearly(images: Path, tmp_path: Path) -> None:
    code, prefect, err = run_cli(
        "run", str(images), "--n-samples", "3", "--dataset-type", "videos", cwd=tmp_path
    )
    assert (code, prefect) == (2, False)
    assert_one_paragraph(err)
    assert "No videos found" in flat(err), err
    assert "run with --dataset-type images" in flat(err), err


def test_long_paths_stay_whole_in_the_message(tmp_path: Path) -> None:
    # A path with hyphens must not be broken across lines: users copy it from the terminal.
    missing = tmp_path / ("a-very-long-folder-name-with-many-hyphens-" * 3) / "images"
    code, _prefect, err = run_cli("run", str(missing), "--n-samples", "5", cwd=tmp_path)
    assert code == 2
    assert str(missing) in err  # on one line


def test_corrupt_only_folder(tmp_path: Path) -> None:
    """Found inside the flow (after the corruption check): still one paragraph and exit 2,
    naming the file that holds the reasons."""
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for i in range(3):
        (corrupt / f"img{i}.png").write_text(f"not an image {i}")
    proc = subprocess.run(
        [sys.executable, "-m", "thresher", "run", str(corrupt), "--n-samples", "3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env=dict(os.environ, THRESHER_PROGRESS="0"),
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "corruptness_check_information.json" in flat(proc.stderr)
    last = proc.stderr[proc.stderr.index("thresher: error:") :]
    assert "ERROR" not in last  # no log line about the same failure after the paragraph
    assert not any(corrupt.rglob("*-lightly")) and len(list(corrupt.iterdir())) == 3
