"""Load (issue 14, item 7): many runs, two worker processes, clients polling; nothing lost.

The slow test runs a small version of ``benchmarks/platform_load.py`` through the same code
(:func:`run_load`): a real server process, real ``thresher worker start`` processes and poller
processes calling ``get_compute_worker_run_info``. It asserts what the benchmark checks (every
scheduled run made into exactly one run, which COMPLETED, taken by one worker, its scheduled run
DONE, its artifacts in LIGHTLY, and the states every poller saw only moving forward), never the
timings: those are the benchmark's. That two workers claiming at once never get the same run is
checked without HTTP, on SQLite and PostgreSQL, by
``tests/platform/test_services.py::test_two_workers_never_take_the_same_run``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.platform_load import LoadOptions, LoadResult, percentile, run_load


def _result(**changes: object) -> LoadResult:
    """A LoadResult in which every promise held; ``changes`` break some."""
    r = LoadResult(
        scheduled=["s1", "s2"],
        runs_of={"s1": [("r1", "COMPLETED")], "s2": [("r2", "COMPLETED")]},
        taken_by={"s1": ["load-worker-0"], "s2": ["load-worker-1"]},
        scheduled_state={"s1": "DONE", "s2": "DONE"},
        missing_artifacts={"r1": [], "r2": []},
        seen=[{"s1": ["OPEN", "INITIALIZING", "EMBEDDING", "SAMPLING", "COMPLETED"]}],
    )
    for name, value in changes.items():
        setattr(r, name, value)
    return r


def test_the_load_checks_see_each_broken_promise() -> None:
    """The checks the slow test relies on fail when a run is lost, doubled or goes back."""
    assert _result().problems() == []
    assert len(_result().completed()) == 2
    doubled = _result(
        runs_of={"s1": [("r1", "COMPLETED"), ("r3", "COMPLETED")], "s2": [("r2", "COMPLETED")]}
    )
    assert doubled.run_twice() == ["s1"] and doubled.problems()
    claimed_twice = _result(
        taken_by={"s1": ["load-worker-0", "load-worker-1"], "s2": ["load-worker-1"]}
    )
    assert claimed_twice.run_twice() == ["s1"] and claimed_twice.problems()
    lost = _result(
        runs_of={"s1": [("r1", "COMPLETED")]},
        taken_by={"s1": ["load-worker-0"]},
        scheduled_state={"s1": "DONE", "s2": "OPEN"},
    )
    assert lost.lost() == ["s2"] and len(lost.problems()) == 3  # no run, no taker, still OPEN
    failed = _result(runs_of={"s1": [("r1", "FAILED")], "s2": [("r2", "COMPLETED")]})
    assert failed.failed() == ["s1"] and failed.problems()
    assert _result(missing_artifacts={"r1": ["report.pdf"], "r2": []}).problems()
    back = _result(seen=[{"s1": ["OPEN", "EMBEDDING", "LOADING_DATASET", "COMPLETED"]}])
    assert "went back" in back.problems()[0]
    reopened = _result(seen=[{"s1": ["OPEN", "INITIALIZING", "OPEN"]}])
    assert reopened.problems()
    two_ends = _result(seen=[{"s1": ["OPEN", "FAILED", "COMPLETED"]}])
    assert two_ends.problems()
    assert _result(poll_errors=["s1: ApiException"]).problems()
    assert percentile([float(v) for v in range(1, 101)], 99) == 99.0  # nearest rank
    assert percentile([5.0], 50) == 5.0


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_runs_scheduled_at_once_complete_exactly_once_under_polling(tmp_path: Path) -> None:
    options = LoadOptions(runs=6, workers=2, pollers=3, images=16, baseline_s=2.0, timeout_s=900.0)
    result = run_load(options, tmp_path / "load")
    assert result.problems() == []
    assert len(result.completed()) == 6
    assert not result.failed() and not result.lost() and not result.run_twice()
    assert {w for takers in result.taken_by.values() for w in takers} <= {
        "load-worker-0",
        "load-worker-1",
    }
    # Every poller followed every run to its end.
    assert len(result.seen) == 3
    for per_run in result.seen:
        assert set(per_run) == set(result.scheduled)
        assert all(states[-1] == "COMPLETED" for states in per_run.values())
    assert result.load_request_ms and result.baseline_request_ms  # timed, not asserted
