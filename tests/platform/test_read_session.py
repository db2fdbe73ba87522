"""Status polls read without the write lock (issue 14 item 7, load), on SQLite and PostgreSQL.

On SQLite every ``session()`` begins ``BEGIN IMMEDIATE`` (the write lock), so a poll used to
queue behind every writer: through the writer's commit and fsync, and, on a busy machine,
while the writer is descheduled. ``read_session()`` reads a WAL snapshot instead; the polls'
paths (the token check, the crash check when there is nothing to mark, the run and scheduled
run reads) use it. ``benchmarks/platform_load.py`` measures the latency; this checks the
mechanism: each poll completes while another connection holds the write lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from tests.platform.helpers import ready_dataset, schedule, user, worker
from thresher.platform import runs, users, workers
from thresher.platform.core import Platform
from thresher.platform.models import Worker


def test_a_write_in_a_read_session_fails(platform: Platform) -> None:
    alice = user(platform)
    worker(platform, alice)
    with pytest.raises(DBAPIError), platform.read_session() as s:
        s.execute(update(Worker).values(name="renamed"))
    with platform.read_session() as s:
        assert s.execute(text("SELECT name FROM workers")).scalars().all() == ["gpu-1"]


def test_polls_complete_while_a_writer_holds_the_lock(platform: Platform) -> None:
    alice, token = users.add_user(platform, "poller@example.com")
    d = ready_dataset(platform, alice)
    w = worker(platform, alice)
    taken = schedule(platform, alice, d)
    claimed = runs.claim(platform, alice, w)
    assert claimed is not None and claimed.scheduled.id == taken
    waiting = schedule(platform, alice, d)

    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with platform.session() as s:  # SQLite: BEGIN IMMEDIATE, the write lock
            s.execute(update(Worker).values(last_modified_at=Worker.last_modified_at))
            held.set()
            release.wait(30)

    polls: dict[str, Callable[[], Any]] = {
        "authenticate": lambda: users.authenticate(platform, token),
        "detect_crashes": lambda: workers.detect_crashes(platform),
        "get_run_by_scheduled": lambda: runs.get_run_by_scheduled(platform, alice, taken),
        "get_run": lambda: runs.get_run(platform, alice, claimed.run.id),
        "list_runs": lambda: runs.list_runs(platform, alice, d),
        "list_scheduled": lambda: runs.list_scheduled(platform, alice, d),
    }
    answers: dict[str, Any] = {}

    def poller() -> None:
        for name, poll in polls.items():
            answers[name] = poll()

    holder = threading.Thread(target=writer)
    holder.start()
    try:
        assert held.wait(10)
        reader = threading.Thread(target=poller)
        reader.start()
        reader.join(10)  # SQLite's busy timeout is 30 s: a poll that waits is still waiting
        done, answered = not reader.is_alive(), sorted(answers)
    finally:
        release.set()
        holder.join(30)
    reader.join(60)
    assert done, f"polls waited for the writer; answered only {answered}"
    assert answers["authenticate"].id == alice.id
    assert answers["detect_crashes"] == 0
    assert answers["get_run_by_scheduled"].id == claimed.run.id
    assert answers["get_run"].state == "INITIALIZING"
    assert [r.id for r in answers["list_runs"]] == [claimed.run.id]
    assert [r.id for r in answers["list_scheduled"]] == [taken, waiting]
