"""A killed run's temporary files in LIGHTLY are removed by the next run, once old enough."""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

from thresher.stages.list_input import list_input

HOUR = 3600


def _temp(folder: Path, age_s: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".tmp-{uuid.uuid4().hex}"
    path.write_bytes(b"half a file")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_old_temporary_files_in_lightly_go_fresh_ones_and_input_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inp = tmp_path / "input"
    inp.mkdir()
    Image.new("RGB", (8, 8), "red").save(inp / "a.png")
    lightly = tmp_path / "input-lightly"
    old = [_temp(lightly, 2 * HOUR), _temp(lightly / ".lightly" / "stage", 3 * HOUR)]
    fresh = _temp(lightly, 60)  # another run may be writing it right now
    not_ours = lightly / ".tmp-notes"  # a user's file that only looks like a temporary one
    not_ours.write_text("keep me")
    os.utime(not_ours, (time.time() - 2 * HOUR,) * 2)
    in_input = _temp(inp, 2 * HOUR)  # INPUT is read-only: never touched

    with caplog.at_level(logging.INFO, logger="thresher.stages"):
        listing = list_input(str(inp), str(lightly))

    assert listing.n_relevant == 1
    assert [p.exists() for p in old] == [False, False]
    assert fresh.exists()
    assert not_ours.read_text() == "keep me"
    assert in_input.exists()
    messages = [r.getMessage() for r in caplog.records if "temporary file" in r.getMessage()]
    assert len(messages) == 1 and messages[0].startswith("removed 2 temporary file(s)")
