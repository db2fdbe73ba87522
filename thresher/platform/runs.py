"""Scheduled runs and runs: scheduling, claiming, states, cancelling, artifacts.

A scheduled run is OPEN until a worker claims it (LOCKED, and a run exists, INITIALIZING); the
worker reports states until an end state (COMPLETED, FAILED, CRASHED, ABORTED), which makes the
scheduled run DONE. Cancelling an OPEN run makes it CANCELED; cancelling a LOCKED one asks its
worker to abort: its next state update is refused with ``ABORT_REQUESTED`` and it reports
ABORTED.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from thresher import __version__
from thresher.platform import datasets, datasources, samples, workers
from thresher.platform.access import dataset_for, readable_dataset_ids, require_owner, run_for
from thresher.platform.core import Platform
from thresher.platform.datasets import MAX_NAME_LENGTH
from thresher.platform.errors import Conflict, Forbidden, Invalid, NotFound, Unprocessable
from thresher.platform.locations import fsspec_target
from thresher.platform.models import (
    Artifact,
    Dataset,
    Run,
    Sample,
    ScheduledRun,
    User,
    Worker,
    WorkerConfig,
)
from thresher.wire import (
    END_STATES,
    ArtifactCreateRequest,
    ClaimedRun,
    DatasetType,
    DockerRunArtifactData,
    DockerRunData,
    DockerRunScheduledCreateRequest,
    DockerRunScheduledData,
    RunStateUpdate,
    new_id,
    now_ms,
)

#: Lower sorts first: the order in which waiting runs are taken.
PRIORITY_RANK = {"CRITICAL": 0, "HIGH": 1, "MID": 2, "LOW": 3}


# --- wire forms ----------------------------------------------------------------------------


def scheduled_to_wire(r: ScheduledRun) -> DockerRunScheduledData:
    """The wire form of a scheduled run."""
    return DockerRunScheduledData(
        id=r.id,
        dataset_id=r.dataset_id,
        config_id=r.config_id,
        priority=r.priority,
        runs_on=list(r.runs_on),
        state=r.state,
        created_at=r.created_at,
        last_modified_at=r.last_modified_at,
        user_id=r.user_id,
    )


def artifact_to_wire(a: Artifact) -> DockerRunArtifactData:
    """The wire form of an artifact."""
    return DockerRunArtifactData(
        id=a.id,
        type=a.type,
        file_name=a.file_name,
        storage_location="LIGHTLY",
        created_at=a.created_at,
    )


def run_to_wire(s: Session, r: Run) -> DockerRunData:
    """The wire form of a run, with its artifacts."""
    arts = s.scalars(
        select(Artifact).where(Artifact.run_id == r.id).order_by(Artifact.created_at, Artifact.id)
    )
    return DockerRunData(
        id=r.id,
        user_id=r.user_id,
        docker_version=r.docker_version,
        state=r.state,
        created_at=r.created_at,
        last_modified_at=r.last_modified_at,
        dataset_id=r.dataset_id,
        config_id=r.config_id,
        scheduled_id=r.scheduled_id,
        message=r.message,
        artifacts=[artifact_to_wire(a) for a in arts],
    )


def _scheduled_of(s: Session, dataset_id: str, scheduled_id: str) -> ScheduledRun:
    """The scheduled run if it is one of the dataset's (access to the dataset checked before)."""
    r = s.get(ScheduledRun, scheduled_id)
    if r is None or r.dataset_id != dataset_id:
        raise NotFound(
            f"The dataset {dataset_id} has no scheduled run {scheduled_id!r}.",
            "DOCKER_WORKER_SCHEDULE_UNKNOWN",
        )
    return r


def _run_of_worker(s: Session, user: User, run_id: str) -> Run:
    """The run if ``user``'s worker took it: the check of the routes a worker calls."""
    return require_owner(s.get(Run, run_id), user.id, "run", "DOCKER_RUN_UNKNOWN", run_id)


# --- scheduling ----------------------------------------------------------------------------


def schedule(p: Platform, user: User, dataset_id: str, req: DockerRunScheduledCreateRequest) -> str:
    """Schedule a run of the dataset with a stored config.

    The owner and the users the dataset is shared with may schedule, each with a config of
    their own; the dataset owner's workers take the run (the datasources are the owner's).
    Refused up front (Unprocessable, HTTP 422) on a crops dataset (schedule its original
    dataset), and when the dataset lacks an INPUT or a LIGHTLY
    datasource, or a permission a run needs (list and read INPUT, write and overwrite LIGHTLY)
    is missing: the message names each one.
    """
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "schedule")
        if d.type == DatasetType.CROPS:
            raise Unprocessable(
                f"The dataset {dataset_id} ({d.name!r}) is a crops dataset: object-level runs "
                "of another dataset fill it. Schedule the run on that original dataset; its "
                "new crops are added here."
            )
        require_owner(
            s.get(WorkerConfig, req.config_id),
            user.id,
            "worker config",
            "DOCKER_WORKER_CONFIG_UNKNOWN",
            req.config_id,
        )
        inp, out = datasources.run_datasources(p, s, d.id)
    perms = datasources.combine(p, inp, out)
    if perms.errors is not None:
        failed = {k: v for k, v in perms.errors.model_dump().items() if v}
        lines = "; ".join(f"{k}: {v}" for k, v in failed.items())
        raise Unprocessable(
            f"The datasources of dataset {dataset_id} lack permissions a run needs ({lines}). "
            "Fix the credentials or the bucket policy, check with "
            "list_datasource_permissions(), then schedule again."
        )
    with p.session() as s:
        dataset_for(s, user, dataset_id, "schedule")  # it may be deleted (or unshared) now
        now = now_ms()
        priority = str(req.priority)
        r = ScheduledRun(
            id=new_id(),
            user_id=user.id,
            dataset_id=dataset_id,
            config_id=req.config_id,
            priority=priority,
            priority_rank=PRIORITY_RANK[priority],
            runs_on=sorted(set(req.runs_on)),
            state="OPEN",
            worker_id=None,
            abort_requested=False,
            created_at=now,
            last_modified_at=now,
        )
        s.add(r)
    return r.id


def list_scheduled(
    p: Platform, user: User, dataset_id: str, state: str | None = None
) -> list[DockerRunScheduledData]:
    """The dataset's scheduled runs, oldest first; with no state, those not DONE/CANCELED."""
    with p.read_session() as s:
        dataset_for(s, user, dataset_id, "read")
        q = select(ScheduledRun).where(ScheduledRun.dataset_id == dataset_id)
        if state is None:
            q = q.where(ScheduledRun.state.in_(("OPEN", "LOCKED")))
        else:
            q = q.where(ScheduledRun.state == state)
        q = q.order_by(ScheduledRun.created_at, ScheduledRun.id)
        return [scheduled_to_wire(r) for r in s.scalars(q)]


def cancel_open(p: Platform, user: User, dataset_id: str, scheduled_id: str) -> None:
    """Lightly's cancel: an OPEN scheduled run becomes CANCELED; any other state is refused.

    Whoever may schedule runs of the dataset may cancel any of its runs.
    """
    with p.session() as s:
        dataset_for(s, user, dataset_id, "schedule")
        r = _scheduled_of(s, dataset_id, scheduled_id)
        if r.state != "OPEN":
            raise Conflict(
                f"The scheduled run {scheduled_id} is {r.state}, not OPEN: a worker took it. "
                "Use POST .../schedule/{id}/cancel (cancel_compute_worker_run) to abort it.",
                "DOCKER_WORKER_SCHEDULE_UPDATE_FAILED",
            )
        r.state = "CANCELED"
        r.last_modified_at = now_ms()


def cancel(p: Platform, user: User, dataset_id: str, scheduled_id: str) -> str:
    """Cancel a scheduled run whatever its state (whoever may schedule runs of the dataset).

    Returns:
        ``"CANCELED"`` (it was OPEN), ``"ABORT_REQUESTED"`` (its worker will abort it), or
        ``"ENDED"`` (it had finished already; nothing changes).
    """
    with p.session() as s:
        dataset_for(s, user, dataset_id, "schedule")
        r = _scheduled_of(s, dataset_id, scheduled_id)
        now = now_ms()
        if r.state == "OPEN":
            r.state = "CANCELED"
            r.last_modified_at = now
            return "CANCELED"
        if r.state == "LOCKED":
            r.abort_requested = True
            r.last_modified_at = now
            return "ABORT_REQUESTED"
        return "ENDED" if r.state == "DONE" else "CANCELED"


# --- claiming ------------------------------------------------------------------------------


def claim(p: Platform, user: User, worker_id: str) -> ClaimedRun | None:
    """Give the worker the waiting run it should do next, or None.

    Among the OPEN scheduled runs of the datasets the worker's user owns (whoever scheduled
    them: the owner or a user the dataset is shared with) whose ``runs_on`` labels the worker
    all has: highest priority first, then oldest. The run's ``user_id`` is the worker's user.
    Taking it is one ``UPDATE ... WHERE state='OPEN'`` whose row count says whether this worker
    won, so two workers never take the same run (on SQLite the transaction holds the write
    lock; on PostgreSQL the row lock re-checks the state).
    """
    workers.detect_crashes(p)
    while True:
        with p.session() as s:
            w = workers.load(s, user, worker_id)
            now = now_ms()
            w.last_seen_at = now  # a claim is a sign of life
            labels = set(w.labels)
            owned = select(Dataset.id).where(Dataset.user_id == user.id)
            open_runs = s.scalars(
                select(ScheduledRun)
                .where(ScheduledRun.dataset_id.in_(owned), ScheduledRun.state == "OPEN")
                .order_by(ScheduledRun.priority_rank, ScheduledRun.created_at, ScheduledRun.id)
            )
            pick = next((r for r in open_runs if set(r.runs_on) <= labels), None)
            if pick is None:
                return None
            won = s.execute(
                update(ScheduledRun)
                .where(ScheduledRun.id == pick.id, ScheduledRun.state == "OPEN")
                .values(state="LOCKED", worker_id=w.id, last_modified_at=now)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult
                continue  # another worker was faster: look again
            s.refresh(pick)
            run = Run(
                id=new_id(),
                user_id=user.id,
                dataset_id=pick.dataset_id,
                config_id=pick.config_id,
                scheduled_id=pick.id,
                worker_id=w.id,
                docker_version=w.docker_version or __version__,
                state="INITIALIZING",
                message="Taken by worker " + w.name,
                created_at=now,
                last_modified_at=now,
            )
            s.add(run)
            w.state = "BUSY"
            w.last_modified_at = now
            try:
                claimed = _claimed(p, s, run, pick)
            except (Unprocessable, NotFound) as e:
                run.state = "FAILED"
                run.message = e.message
                pick.state = "DONE"
                continue
            return claimed


def _claimed(p: Platform, s: Session, run: Run, sched: ScheduledRun) -> ClaimedRun:
    cfg = s.get(WorkerConfig, sched.config_id)
    d = s.get(Dataset, sched.dataset_id)
    if cfg is None or d is None:
        raise NotFound(
            "The run's dataset or config was deleted before a worker took it.",
            "DATASET_UNKNOWN",
        )
    inp, out = datasources.run_datasources(p, s, d.id)
    s.flush()
    return ClaimedRun(
        run=run_to_wire(s, run),
        scheduled=scheduled_to_wire(sched),
        # nSamples: the worker refuses a run without use_datapool on a dataset with samples.
        dataset=datasets.to_wire(d).model_copy(update={"n_samples": _n_samples(s, d.id)}),
        worker_config=dict(cfg.worker_config),
        selection_config=dict(cfg.selection_config),
        lightly_config=dict(cfg.lightly_config),
        input=inp,
        lightly=out,
    )


def _n_samples(s: Session, dataset_id: str) -> int:
    n = s.scalar(select(func.count()).select_from(Sample).where(Sample.dataset_id == dataset_id))
    return int(n or 0)


# --- runs ----------------------------------------------------------------------------------


def list_runs(
    p: Platform,
    user: User,
    dataset_id: str | None = None,
    page_size: int | None = None,
    page_offset: int = 0,
) -> list[DockerRunData]:
    """The runs the user may see (of one dataset if given), oldest first.

    Without a dataset: the runs of every dataset the user may read (own and shared with them),
    and the runs the user's workers did of datasets deleted since.
    """
    workers.detect_crashes(p)
    with p.read_session() as s:
        if dataset_id is not None:
            dataset_for(s, user, dataset_id, "read")
            q = select(Run).where(Run.dataset_id == dataset_id)
        else:
            orphaned = and_(Run.user_id == user.id, Run.dataset_id.not_in(select(Dataset.id)))
            q = select(Run).where(or_(Run.dataset_id.in_(readable_dataset_ids(user)), orphaned))
        q = q.order_by(Run.created_at, Run.id).offset(max(page_offset, 0))
        if page_size is not None and page_size > 0:
            q = q.limit(page_size)
        return [run_to_wire(s, r) for r in s.scalars(q)]


def get_run(p: Platform, user: User, run_id: str) -> DockerRunData:
    """One run of a dataset the user may read (NotFound ``DOCKER_RUN_UNKNOWN`` / Forbidden)."""
    workers.detect_crashes(p)
    with p.read_session() as s:
        return run_to_wire(s, run_for(s, user, run_id, "read"))


def get_run_by_scheduled(p: Platform, user: User, scheduled_id: str) -> DockerRunData:
    """The run of a scheduled run; ``DOCKER_RUN_UNKNOWN`` until a worker took it."""
    workers.detect_crashes(p)
    with p.read_session() as s:
        r = s.scalar(select(Run).where(Run.scheduled_id == scheduled_id))
        # One answer for "no worker took it", "no such scheduled run" and "not yours": a
        # stranger cannot tell which scheduled run ids exist.
        unknown = NotFound(
            f"No run for the scheduled run {scheduled_id!r}: no worker has taken it yet "
            "(or it does not exist, or its dataset is not shared with you).",
            "DOCKER_RUN_UNKNOWN",
        )
        sched = s.get(ScheduledRun, scheduled_id)
        if sched is not None:
            if s.get(Dataset, sched.dataset_id) is not None:
                try:
                    dataset_for(s, user, sched.dataset_id, "read")
                except NotFound as e:
                    raise unknown from e
            elif sched.user_id != user.id:
                raise unknown
        if r is None:
            raise unknown
        return run_to_wire(s, run_for(s, user, r.id, "read"))


def update_state(p: Platform, user: User, run_id: str, upd: RunStateUpdate) -> None:
    """The worker reports a state; an end state makes the scheduled run DONE.

    Only the user whose worker took the run may report (the run's ``user_id``).

    Raises:
        Conflict: ``ABORT_REQUESTED`` when the run was cancelled (the worker should stop and
            report ABORTED, which is accepted); ``DOCKER_RUN_ENDED`` when the run has ended
            already (e.g. marked CRASHED after its worker went silent).
    """
    state = str(upd.state)
    with p.session() as s:
        r = _run_of_worker(s, user, run_id)
        sched = s.get(ScheduledRun, r.scheduled_id)
        if r.state in END_STATES:
            raise Conflict(
                f"The run {run_id} has ended already ({r.state}); it takes no more updates.",
                "DOCKER_RUN_ENDED",
            )
        now = now_ms()
        if sched is not None and sched.abort_requested and state not in END_STATES:
            raise Conflict(
                f"The run {run_id} was cancelled: stop it and report ABORTED.",
                "ABORT_REQUESTED",
            )
        r.state = state
        if upd.message is not None:
            r.message = upd.message
        if upd.prefect_flow_run_id is not None:
            r.prefect_flow_run_id = upd.prefect_flow_run_id
        r.last_modified_at = now
        w = s.get(Worker, r.worker_id)
        if w is not None:
            w.last_seen_at = now
        if state in END_STATES and sched is not None:
            sched.state = "DONE"
            sched.last_modified_at = now


# --- artifacts -----------------------------------------------------------------------------


def _check_storage_location(rel: str) -> str:
    parts = rel.split("/")
    if (
        "\x00" in rel
        or rel.startswith("/")
        or "://" in rel
        or "\\" in rel
        or any(x in ("", ".", "..") for x in parts)
    ):
        raise Invalid(
            f"storageLocation {rel!r} must be a path relative to the LIGHTLY datasource, "
            "e.g. '.lightly/runs/<run id>/report.pdf' (no leading '/', no '..')."
        )
    return rel


def add_artifact(p: Platform, user: User, run_id: str, req: ArtifactCreateRequest) -> str:
    """Record a file the run wrote in its LIGHTLY datasource (the run's worker's user only)."""
    rel = _check_storage_location(req.storage_location)
    name = req.file_name
    if (
        not name
        or len(name) > MAX_NAME_LENGTH
        or any(c in name for c in '/\\"')
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    ):
        raise Invalid(
            f"fileName {name[:300]!r} must be a plain file name such as 'report.pdf' (no '/', "
            f"'\\', quotes or control characters, at most {MAX_NAME_LENGTH} characters)."
        )
    with p.session() as s:
        r = _run_of_worker(s, user, run_id)
        a = Artifact(
            id=new_id(),
            run_id=r.id,
            type=str(req.type),
            file_name=req.file_name,
            storage_location=rel,
            created_at=now_ms(),
        )
        s.add(a)
    return a.id


def read_url(p: Platform, user: User, run_id: str, artifact_id: str, base_url: str) -> str:
    """An expiring, signed URL that downloads the artifact without a token.

    Whoever may download from the run's dataset may ask for one. The URL is a bearer link: it
    stays valid until it expires (``THRESHER_READ_URL_SECONDS``), even if the dataset is
    unshared meanwhile.
    """
    with p.session() as s:
        r = run_for(s, user, run_id, "download")
        a = s.get(Artifact, artifact_id)
        if a is None or a.run_id != r.id:
            raise NotFound(
                f"The run {run_id} has no artifact {artifact_id!r}.",
                "DOCKER_RUN_ARTIFACT_UNKNOWN",
            )
    expires = int(time.time() + p.settings.read_url_seconds)
    sig = p.secrets.sign(artifact_id, expires)
    base = (p.settings.public_url or base_url).rstrip("/")
    return f"{base}/v1/artifacts/{artifact_id}?expires={expires}&signature={sig}"


def open_artifact(
    p: Platform, artifact_id: str, expires: int | None, signature: str | None
) -> tuple[str, int | None, Iterator[bytes]]:
    """Check a read URL's signature and open the artifact in the LIGHTLY datasource.

    Returns:
        The file name, its size if known, and an iterator over its bytes.

    Raises:
        Forbidden: a missing or wrong signature, or an expired URL.
        NotFound: the artifact, or its file, is gone.
    """
    if expires is None or not signature:
        raise Forbidden(
            "This link needs its 'expires' and 'signature' parameters: use the whole read URL "
            "(readurl) as it was handed out."
        )
    if not p.secrets.check(artifact_id, expires, signature):
        raise Forbidden("The read URL's signature is wrong; ask for a new one (readurl).")
    if expires < time.time():
        raise Forbidden("The read URL has expired; ask for a new one (readurl).")
    with p.session() as s:
        a = s.get(Artifact, artifact_id)
        run = s.get(Run, a.run_id) if a is not None else None
        if a is None or run is None:
            raise NotFound(f"No artifact {artifact_id!r}.", "DOCKER_RUN_ARTIFACT_UNKNOWN")
        out = datasources.resolve(p, s, run.dataset_id, datasources.LIGHTLY_PURPOSES)
        name, rel = a.file_name, a.storage_location
    if out is None:
        raise NotFound(
            "The run's dataset has no LIGHTLY datasource any more.",
            "DOCKER_RUN_ARTIFACT_UNAVAILABLE",
        )
    target = fsspec_target(out, p.settings.lightly_root)
    if target is None:
        raise Unprocessable(
            "The artifact lies in a LOCAL datasource the server cannot see. Start the server "
            "with THRESHER_LOCAL_ROOT (or THRESHER_LIGHTLY_ROOT) set to the worker's "
            "--lightly-mount folder.",
            "DOCKER_RUN_ARTIFACT_UNAVAILABLE",
        )
    url, opts = target
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(url, **opts)
    path = root.rstrip("/") + "/" + rel
    if not samples.is_served(fs, root, path):
        raise NotFound(
            f"The artifact file {rel} is a link out of the LIGHTLY datasource, or not a regular "
            "file; it is not served.",
            "DOCKER_RUN_ARTIFACT_UNAVAILABLE",
        )
    try:
        size: int | None = int(fs.size(path))
        f = fs.open(path, "rb")
    except FileNotFoundError as e:
        raise NotFound(
            f"The artifact file {rel} is missing from the LIGHTLY datasource.",
            "DOCKER_RUN_ARTIFACT_UNAVAILABLE",
        ) from e

    def chunks() -> Iterator[bytes]:
        with f:
            while block := f.read(1 << 20):
                yield block

    return name, size, chunks()
