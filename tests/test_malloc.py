"""A run's process keeps small freed memory mapped (thresher.malloc): no page faults per image.

Each image's quality scores make a handful of 256 KiB numpy arrays; with glibc's defaults every
one of them was paged in afresh (about 240 page faults per image, half the corruption check's
CPU time: benchmarks/malloc.py). Counted in a fresh interpreter, as a run's process starts.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_FAULTS_PER_IMAGE = """
import resource, sys
import numpy as np
from PIL import Image
if sys.argv[1] == "keep":
    from thresher.malloc import keep_freed_memory
    assert keep_freed_memory() and keep_freed_memory()  # once, and again: a no-op
from thresher.checks.quality import quality_signals
rng = np.random.default_rng(0)
images = [Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)) for _ in range(20)]
for im in images:
    quality_signals(im)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    for im in images:
        quality_signals(im)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 200)
"""


def _faults(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS_PER_IMAGE, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="not glibc: nothing to set")
def test_quality_scores_page_in_no_memory_once_the_run_keeps_it() -> None:
    assert _faults("keep") < 5
