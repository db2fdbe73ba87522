"""The report at scale: bounded memory over a memmap, the sampling said in report.json and the
PDF, the UMAP worker process, and filenames the font cannot draw.

The 100,000 and 1,000,000-row checks with a time bound are benchmarks/report_scale.py.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from report_synthetic import synthetic_inputs

from thresher.reports import build_report
from thresher.reports.fonts import displayable
from thresher.reports.umap_2d import available, start_umap, umap_maps

HERE = pathlib.Path(__file__).resolve().parent

#: Rows x dims of the big report: 60,000 x 1,280 float32 is a 307 MB memmap; one float64 copy
#: of it (what np.asarray(x, np.float64) would make) is 614 MB.
N_BIG, DIM_BIG = 60_000, 1280

#: Most bytes the report may allocate (tracemalloc peak, numpy included) at N_BIG: far below
#: one float64 copy of the input, far above what the samples take.
MEMORY_BOUND = 350 * 1024**2
#: Most bytes of mapped file pages the report may add to its resident set at N_BIG (the memmap
#: is 307 MB; libraries the report imports late map some pages too).
FILE_PAGES_BOUND = 100 * 1024**2

_BIG_REPORT = textwrap.dedent(
    """
    import json, pathlib, sys, tracemalloc
    sys.path.insert(0, {here!r})
    import numpy as np
    from report_synthetic import memmap_embeddings, synthetic_inputs
    from thresher.reports import build_report

    tmp = pathlib.Path(sys.argv[1])
    n, dim = {n}, {dim}
    x = memmap_embeddings(tmp / "emb.npy", n, dim)
    base = synthetic_inputs(n=300, n_selected=40)
    sel = np.random.default_rng(1).choice(n, size=600, replace=False)
    sizes = dict(n_input=n, n_filtered=0, n_corrupt=0, n_duplicate=0,
                 n_removed=n - 600, n_selected=600)
    inputs = base.__class__(**{{
        **base.__dict__, "embeddings": x, "selected": sel, "sizes": sizes, "corrupt": {{}},
        "duplicates": {{}}, "distributions": [], "umap_neighbors": (15,),
        "filenames": [f"img_{{i:06d}}.jpg" for i in range(n)],
    }})
    def rss_file():  # the file pages mapped into this process (the memmap's, libraries')
        line = next(l for l in open("/proc/self/status") if l.startswith("RssFile:"))
        return int(line.split()[1]) * 1024

    tracemalloc.start()
    file_before = rss_file()
    report = build_report(inputs, tmp / "out")
    _, peak = tracemalloc.get_traced_memory()
    grown = rss_file() - file_before
    print(json.dumps({{"peak": peak, "file_pages": grown, "sampling": report["sampling"]}}))
    """
)


def test_a_60k_row_report_states_its_samples_and_allocates_far_less_than_its_input(tmp_path):
    code = _BIG_REPORT.format(here=str(HERE), n=N_BIG, dim=DIM_BIG)
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["peak"] < MEMORY_BOUND, f"{result['peak'] / 2**20:.0f} MiB allocated"
    # Sampled rows are read with file reads, not through the map: reading them through the
    # memmap put most of the 307 MB file into the process's resident set (at a million rows,
    # 5 GB of a 7 GB peak).
    assert result["file_pages"] < FILE_PAGES_BOUND, f"{result['file_pages'] / 2**20:.0f} MiB"
    sampled = {e["what"]: e for e in result["sampling"]}
    # What was sampled, and from how many: the searches' reference sets, the pairwise block,
    # the maps. Each statement is a sentence with both numbers.
    nn = sampled["nearestNeighbor.input.reference"]
    assert (nn["nSampled"], nn["nTotal"]) == (20_000, N_BIG)
    assert "20,000 of 60,000" in nn["text"]
    assert sampled["pairwiseDistances.input"]["nSampled"] == 2000
    assert sampled["pcaMap.input"]["nSampled"] == 5000
    assert sampled["coverage.queries"]["nTotal"] == N_BIG
    if available():
        assert sampled["umapMaps.input"]["nSampled"] == 5000
    # The selection (600) is small enough to be searched whole.
    assert "coverage.reference" not in sampled and "pairwiseDistances.selected" not in sampled
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["sampling"] == result["sampling"]
    cov = report["datasetAnalysis"]["embeddingInformation"]["distanceToCoverInput"]
    assert cov["nReference"] == 600 and not cov["referenceSubsampled"] and not cov["exact"]


def test_a_small_report_samples_nothing(tmp_path):
    report = build_report(synthetic_inputs(n=120, n_selected=12), tmp_path)
    assert report["sampling"] == []
    nn = report["datasetAnalysis"]["embeddingInformation"]["distanceToNearestNeighborInSet"]
    assert nn["input"]["exact"] and nn["input"]["nReference"] == 120


@pytest.mark.skipif(not available(), reason="umap-learn not installed")
def test_maps_from_the_worker_process_equal_maps_fitted_here():
    x = np.random.default_rng(3).normal(size=(150, 16)).astype(np.float32)
    sel = np.arange(0, 150, 10)
    pending = start_umap(x, sel, seed=4, neighbors=(5,), use_process=True)
    assert pending._proc is not None  # it really runs in a child process
    there = pending.result()
    here = umap_maps(x, sel, seed=4, neighbors=(5,))
    np.testing.assert_allclose(there["maps"]["5"], here["maps"]["5"], rtol=1e-5, atol=1e-5)
    assert list(there["rows"]) == list(here["rows"])


def test_names_the_font_cannot_draw_become_squares_without_warnings(tmp_path, caplog):
    assert displayable("a_名前.jpg") == "a_□□.jpg"
    assert displayable("ünïcødé.jpg") == "ünïcødé.jpg"
    inputs = synthetic_inputs(n=60, n_selected=10)  # filenames[1] holds 名前
    inputs = dataclasses.replace(inputs, umap_neighbors=())
    with caplog.at_level(logging.WARNING):
        build_report(inputs, tmp_path)
    missing = [
        r.getMessage() for r in caplog.records if "missing the following glyphs" in r.getMessage()
    ]
    assert not missing, missing
