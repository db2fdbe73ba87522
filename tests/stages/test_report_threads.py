"""The report stage's BLAS threads: the cores the UMAP worker process leaves free."""

from __future__ import annotations

import pytest

from thresher.cores import cpu_count
from thresher.stages.report import _threads_beside_umap

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> list[int]:
    import numpy  # noqa: F401  (loads its BLAS)

    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_report_leaves_a_core_to_the_umap_worker() -> None:
    before = _blas_threads()
    assert before  # numpy's BLAS is seen
    with _threads_beside_umap():
        assert set(_blas_threads()) == {max(1, cpu_count() - 1)}
    assert _blas_threads() == before  # restored after the report
