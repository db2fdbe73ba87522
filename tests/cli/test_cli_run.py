"""A successful ``thresher run`` from the real command: the summary, its notes, the cache line,
and what the command hands the flow for the report (its start time and command line)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from thresher.examples import make_example_dataset

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def readme_line(name: str) -> str:
    """The README's line about output file ``name`` in the outputs tree."""
    return next(line for line in README.splitlines() if line.strip().startswith(name))


def test_run_summary_notes_and_cache(tmp_path: Path) -> None:
    # 2 clusters x 4 images + 1 duplicate + 4 corrupt files: 8 usable images.
    images = tmp_path / "my images"
    make_example_dataset(images, n_clusters=2, per_cluster=4, n_duplicates=1, size=64)
    argv = ["run", str(images), "--n-samples", "100"]

    def thresher_run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "thresher", *argv],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
            env=dict(os.environ, THRESHER_PROGRESS="0"),
        )

    first = thresher_run()
    assert first.returncode == 0, first.stderr
    out = " ".join(first.stdout.split())
    assert "selected 8" in out
    # More asked for than usable: the summary says so instead of selecting all without a word.
    assert "note: Asked for 100 samples, but only 8 images are usable" in out, first.stdout
    assert "Traceback" not in first.stderr

    # The command line reaches the report as typed (quoted), and the timing counts start-up.
    report = next((tmp_path / "my images-lightly" / ".lightly" / "runs").glob("*/report.json"))
    doc = json.loads(report.read_text())
    run_info = doc["generalInformation"]["runInformation"]
    assert run_info["commandLine"] == shlex.join(["thresher", *argv])
    assert doc["stageSeconds"]["startup"] > 0

    # The README describes both embedding files as they are.
    import pyarrow.parquet as pq

    header = (report.parent / "embeddings.csv").read_text().splitlines()[0].split(",")
    dim = len(header) - 2
    assert header == ["filenames", *(f"embedding_{i}" for i in range(dim)), "labels"]
    assert "filenames,embedding_0..embedding_{D-1},labels" in readme_line("embeddings.csv")
    schema = pq.read_schema(report.parent / "embeddings.parquet")
    assert schema.names == ["filename", "embedding"]
    assert str(schema.field("embedding").type) == f"fixed_size_list<element: float>[{dim}]"
    assert "filename (string), embedding (D float32)" in readme_line("embeddings.parquet")

    second = thresher_run()
    assert second.returncode == 0, second.stderr
    assert "from cache:" in second.stdout and "embed (cached" in second.stdout, second.stdout


def imported_packages(importtime: str) -> set[str]:
    """The top-level packages in ``python -X importtime`` output (each module's root name: the
    lines of modules imported in two threads at once can come out interleaved)."""
    out = set()
    for line in importtime.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            out.add(line.rsplit("|", 1)[-1].strip().split(".")[0])
    return out


def test_default_run_never_imports_pytorch(tmp_path: Path) -> None:
    """Once the default model is converted (by any run on the machine), a default run embeds
    without importing PyTorch, timm or torchvision (about 600 MB less), with the same rows."""
    import numpy as np

    images = tmp_path / "images"
    make_example_dataset(images, n_clusters=2, per_cluster=4, n_duplicates=0, size=64)
    env = dict(os.environ, THRESHER_PROGRESS="0", THRESHER_HOME=str(tmp_path / "home"))

    def thresher_run(lightly: str, *python_flags: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, *python_flags, "-m", "thresher", "run", str(images)]
        argv += ["--lightly", str(tmp_path / lightly), "--n-samples", "3"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)

    first = thresher_run("first")  # converts the model through PyTorch and notes it
    assert first.returncode == 0, first.stderr
    second = thresher_run("second", "-X", "importtime")
    assert second.returncode == 0, second.stderr
    imported = imported_packages(second.stderr)
    assert {"prefect", "openvino", "PIL"} <= imported  # the probe sees imports
    assert not {"torch", "timm", "torchvision"} & imported

    def rows(lightly: str) -> np.ndarray:
        run = next((tmp_path / lightly / ".lightly" / "runs").glob("*/embeddings.csv"))
        lines = run.read_text().splitlines()[1:]
        return np.array([[float(v) for v in line.split(",")[1:-1]] for line in lines])

    assert np.allclose(rows("first"), rows("second"), atol=1e-6)
