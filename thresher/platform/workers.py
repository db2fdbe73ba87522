"""Workers: registration (by name), heartbeats, and crash detection.

A worker not heard from for ``THRESHER_WORKER_TIMEOUT_S`` is OFFLINE, and its runs that had
not ended become CRASHED: :func:`detect_crashes` runs on the server's timer and before the
run routes answer. The server's own downtime is not a worker's silence (:func:`forgive_downtime`).
"""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from thresher.platform.access import require_owner
from thresher.platform.core import Platform
from thresher.platform.models import Run, ScheduledRun, User, Worker
from thresher.wire import (
    END_STATES,
    CreateDockerWorkerRegistryEntryRequest,
    DockerWorkerRegistryEntryData,
    DockerWorkerState,
    new_id,
    now_ms,
)


def to_wire(w: Worker, timeout_s: float) -> DockerWorkerRegistryEntryData:
    """The wire form; a silent worker shows as OFFLINE even before the timer marks it."""
    state = w.state
    if w.last_seen_at is None or w.last_seen_at < now_ms() - timeout_s * 1000:
        state = "OFFLINE"
    return DockerWorkerRegistryEntryData(
        id=w.id,
        user_id=w.user_id,
        name=w.name,
        state=DockerWorkerState(state),
        created_at=w.created_at,
        last_modified_at=w.last_modified_at,
        labels=list(w.labels),
        docker_version=w.docker_version,
    )


def load(s: Session, user: User, worker_id: str) -> Worker:
    """The worker if ``user`` owns it (NotFound ``DOCKER_WORKER_UNKNOWN`` / Forbidden)."""
    return require_owner(
        s.get(Worker, worker_id), user.id, "worker", "DOCKER_WORKER_UNKNOWN", worker_id
    )


def register(p: Platform, user: User, req: CreateDockerWorkerRegistryEntryRequest) -> str:
    """Register a worker; a name the user registered before returns the same id.

    As in Lightly, the labels of an existing worker are not changed.
    """
    with p.session() as s:
        w = s.scalar(select(Worker).where(Worker.user_id == user.id, Worker.name == req.name))
        if w is not None:
            if req.docker_version:
                w.docker_version = req.docker_version
            return w.id
        now = now_ms()
        w = Worker(
            id=new_id(),
            user_id=user.id,
            name=req.name,
            labels=sorted(set(req.labels or [])),
            state="OFFLINE",
            docker_version=req.docker_version,
            last_seen_at=None,
            created_at=now,
            last_modified_at=now,
        )
        s.add(w)
    return w.id


def list_workers(p: Platform, user: User) -> list[DockerWorkerRegistryEntryData]:
    """The user's workers, oldest first."""
    with p.session() as s:
        rows = s.scalars(
            select(Worker).where(Worker.user_id == user.id).order_by(Worker.created_at, Worker.id)
        )
        return [to_wire(w, p.settings.worker_timeout_s) for w in rows]


def delete(p: Platform, user: User, worker_id: str) -> None:
    """Delete a worker registration (its runs stay; a running one will be CRASHED)."""
    with p.session() as s:
        s.delete(load(s, user, worker_id))


def heartbeat(p: Platform, user: User, worker_id: str, state: DockerWorkerState | str) -> None:
    """Record that the worker is alive, and its state (IDLE or BUSY)."""
    with p.session() as s:
        w = load(s, user, worker_id)
        now = now_ms()
        w.last_seen_at = now
        if w.state != str(state):
            w.state = str(state)
            w.last_modified_at = now


def forgive_downtime(p: Platform) -> int:
    """Count every live worker's silence from now: called when the server starts.

    While the server was down (a restart, an upgrade, a crash) no heartbeat could reach it, so
    a worker that kept running its run looks silent for as long as the server was away. Without
    this, the first crash check after a restart longer than ``THRESHER_WORKER_TIMEOUT_S`` marked
    such healthy runs CRASHED, and their workers stopped them. A worker that really died is
    still found one timeout after the start.

    Returns:
        The number of workers (not OFFLINE) whose silence now counts from the server's start.
    """
    now = now_ms()
    with p.session() as s:
        rows = s.execute(
            update(Worker)
            .where(Worker.state != "OFFLINE", Worker.last_seen_at.is_not(None))
            .values(last_seen_at=now)
        )
        return int(getattr(rows, "rowcount", 0) or 0)


def detect_crashes(p: Platform) -> int:
    """Mark silent workers OFFLINE and their unfinished runs CRASHED.

    Runs whose worker registration was deleted count as silent too.

    Returns:
        The number of runs marked CRASHED.
    """
    now = now_ms()
    cutoff = now - int(p.settings.worker_timeout_s * 1000)
    silent = or_(Worker.last_seen_at.is_(None), Worker.last_seen_at < cutoff)
    alive = select(Worker.id).where(~silent)
    # Every status poll calls this; a read first keeps polls off SQLite's write lock.
    with p.read_session() as s:
        to_do = s.scalar(
            select(Worker.id).where(silent, Worker.state != "OFFLINE").limit(1)
        ) or s.scalar(
            select(Run.id).where(Run.state.not_in(END_STATES), Run.worker_id.not_in(alive)).limit(1)
        )
    if to_do is None:
        return 0
    with p.session() as s:
        s.execute(
            update(Worker)
            .where(silent, Worker.state != "OFFLINE")
            .values(state="OFFLINE", last_modified_at=now)
        )
        runs = list(
            s.scalars(select(Run).where(Run.state.not_in(END_STATES), Run.worker_id.not_in(alive)))
        )
        for run in runs:
            secs = p.settings.worker_timeout_s
            run.state = "CRASHED"
            run.message = (
                f"The worker stopped responding: no heartbeat for more than {secs:g} s (its "
                "process was killed or its machine lost). Schedule the run again."
            )
            run.last_modified_at = now
            s.execute(
                update(ScheduledRun)
                .where(ScheduledRun.id == run.scheduled_id)
                .values(state="DONE", last_modified_at=now)
            )
    return len(runs)
