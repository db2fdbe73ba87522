"""The platform under load: many scheduled runs, two workers, clients polling (issue 14, item 7).

    .venv/bin/python benchmarks/platform_load.py [--runs 20] [--workers 2] [--pollers 5]
        [--images 24] [--poll-interval 0.2] [--baseline-s 10]
        [--database-url postgresql://...] [--embed-model] [--keep DIR]
    .venv/bin/python benchmarks/platform_load.py --db-contention

Starts a real ``thresher server start`` process (SQLite under a temporary ``THRESHER_HOME``
unless ``--database-url``), creates one dataset per run whose INPUT is a folder of ``--images``
small generated PNGs (local datasources inside the workers' mounts; a dataset takes a second
run only with the datapool), schedules ``--runs`` runs at once (no training, ``n_samples`` 4-7; the
embeddings precomputed in a CSV, ``worker_config.embeddings``, unless ``--embed-model``: the
load is on the platform, not the model) and starts
``--pollers`` client processes that call what Lightly's scripts call,
``ApiWorkflowClient.get_compute_worker_run_info(scheduled_run_id)``, round the scheduled runs,
timing every call and every HTTP request in it.

Baseline, in the same run: the same polls for ``--baseline-s`` seconds while every run is still
OPEN and no worker is started (the server only answers the pollers). Then ``--workers`` real
``thresher worker start`` processes take the runs; the polls made until the last run ends are
the load figures. The machine is shared and noisy: read the load p99 beside the baseline's.

Prints: runs completed / failed / lost / run twice, the consistency problems found (none
expected), total wall time, runs per minute, poll counts and p50/p95/p99/max latency in ms of
one status request (a GET the server answers) and of one ``get_compute_worker_run_info`` call
(one or two requests), and PASS/FAIL against p99 < 100 ms for a status request.

``--db-contention`` times only the database's share, without HTTP or runs: the service-layer
calls of one status request (token check, the run of a scheduled run) from ``--pollers``
processes on SQLite while two processes commit heartbeats and states, alternating rounds with
the polls' reads in ``read_session()`` (as now) and in the write lock (how they read before).

``tests/platform_e2e/test_load.py`` runs a smaller version through :func:`run_load` and asserts
the consistency checks (never the timings).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.server.server_process import running_server  # noqa: E402
from thresher.stages import STAGES  # noqa: E402

THRESHER = [sys.executable, "-m", "thresher"]
DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]
#: Short runs: no training; the checks and the embedding still run.
WORKER_CONFIG = {
    "enable_corruptness_check": True,
    "remove_exact_duplicates": True,
    "enable_training": False,
}
END_STATES = ("COMPLETED", "FAILED", "CRASHED", "ABORTED", "CANCELED_OR_NOT_EXISTING")
#: p99 a status request must stay under while the platform works.
TARGET_P99_MS = 100.0
TAKEN = re.compile(r"run (\w+): taken \(scheduled (\w+)\)")


def _state_ranks() -> dict[str, int]:
    """The order a run's states may go in: OPEN, starting, the stages in order, uploading, end.

    States of one stage share a rank (deduplicate reports CHECKING_CORRUPTNESS like the check).
    """
    order = ["OPEN", "STARTED", "INITIALIZING"]
    order += [s.run_state for s in STAGES]
    order += ["UPLOADING_ARTIFACTS", "UPLOADED_ARTIFACTS"]
    ranks: dict[str, int] = {}
    for state in order:
        ranks.setdefault(state, len(ranks))
    for state in END_STATES:
        ranks[state] = len(order)
    return ranks


STATE_RANK = _state_ranks()


@dataclass
class LoadOptions:
    """What to run: the command line's options."""

    runs: int = 20
    workers: int = 2
    pollers: int = 5
    images: int = 24
    poll_interval_s: float = 0.2
    baseline_s: float = 10.0
    timeout_s: float = 1200.0
    database_url: str | None = None
    #: Embed with the model (each run imports it: tens of seconds on a busy 2-core machine);
    #: by default the runs read precomputed embeddings (``worker_config.embeddings``).
    embed_model: bool = False


@dataclass
class LoadResult:
    """What happened, and the polls' timings."""

    scheduled: list[str]
    #: scheduled run id -> the runs the server made of it (ids, states)
    runs_of: dict[str, list[tuple[str, str]]]
    #: scheduled run id -> the workers whose log says they took it
    taken_by: dict[str, list[str]]
    #: scheduled run id -> its state in the dataset's scheduled runs at the end
    scheduled_state: dict[str, str]
    #: run id -> artifacts missing from its LIGHTLY run folder
    missing_artifacts: dict[str, list[str]]
    #: poller -> scheduled run id -> the states it saw, in order
    seen: list[dict[str, list[str]]]
    baseline_request_ms: list[float] = field(default_factory=list)
    baseline_info_ms: list[float] = field(default_factory=list)
    load_request_ms: list[float] = field(default_factory=list)
    load_info_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    poll_errors: list[str] = field(default_factory=list)

    def completed(self) -> list[str]:
        """Scheduled runs made into exactly one run, which COMPLETED."""
        return [
            s for s in self.scheduled if [st for _, st in self.runs_of.get(s, [])] == ["COMPLETED"]
        ]

    def failed(self) -> list[str]:
        """Scheduled runs made into one run that ended otherwise."""
        return [
            s
            for s in self.scheduled
            if len(self.runs_of.get(s, [])) == 1 and self.runs_of[s][0][1] != "COMPLETED"
        ]

    def lost(self) -> list[str]:
        """Scheduled runs no run was made of."""
        return [s for s in self.scheduled if not self.runs_of.get(s)]

    def run_twice(self) -> list[str]:
        """Scheduled runs made into several runs, or taken by several workers."""
        return [
            s
            for s in self.scheduled
            if len(self.runs_of.get(s, [])) > 1 or len(self.taken_by.get(s, [])) > 1
        ]

    def problems(self) -> list[str]:
        """Every broken promise: each line one scheduled run, run or poller; [] when all held."""
        out: list[str] = []
        for s in self.scheduled:
            runs = self.runs_of.get(s, [])
            if [st for _, st in runs] != ["COMPLETED"]:
                out.append(f"scheduled run {s}: runs {runs} (expected one, COMPLETED)")
            if len(self.taken_by.get(s, [])) != 1:
                out.append(f"scheduled run {s}: taken by workers {self.taken_by.get(s, [])}")
            if self.scheduled_state.get(s) != "DONE":
                out.append(f"scheduled run {s}: left {self.scheduled_state.get(s)}, not DONE")
        for run_id, missing in self.missing_artifacts.items():
            if missing:
                out.append(f"run {run_id}: missing {', '.join(missing)} in its LIGHTLY folder")
        for i, per_run in enumerate(self.seen):
            for s, states in per_run.items():
                unknown = [st for st in states if st not in STATE_RANK]
                if unknown:
                    out.append(f"poller {i}, scheduled run {s}: unknown states {unknown}")
                    continue
                ranks = [STATE_RANK[st] for st in states]
                if ranks != sorted(ranks) or len({st for st in states if st in END_STATES}) > 1:
                    out.append(f"poller {i}, scheduled run {s}: states went back: {states}")
        out += [f"poll error: {e}" for e in self.poll_errors]
        return out


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100, nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def make_images(folder: Path, n: int, seed: int, embeddings_csv: Path | None = None) -> None:
    """Write ``n`` distinct 64x64 PNGs (noise over a colour) into ``folder``.

    With ``embeddings_csv``, also write 16-d random embeddings of them there (Lightly's CSV).
    """
    import numpy as np
    from PIL import Image

    from thresher.storage.embeddings_csv import write_embeddings_csv

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        base = rng.integers(0, 256, size=3)
        noise = rng.integers(-40, 40, size=(64, 64, 3))
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        names.append(f"img_{i:03d}.png")
        Image.fromarray(pixels).save(folder / names[-1])
    if embeddings_csv is not None:
        embeddings_csv.parent.mkdir(parents=True, exist_ok=True)
        write_embeddings_csv(embeddings_csv, names, rng.normal(size=(n, 16)).astype(np.float32))


# --- pollers (separate processes, so their timings do not share one GIL) --------------------


def _poller(
    url: str,
    token: str,
    targets: list[tuple[str, str]],
    interval_s: float,
    ready: Any,
    stop: Any,
    out_path: str,
) -> None:
    """Poll ``get_compute_worker_run_info`` round ``targets`` (dataset, scheduled run) until
    ``stop`` is set; write every call's and request's (time, ms) and the states seen."""
    from thresher import ApiWorkflowClient

    client = ApiWorkflowClient(token=token, server_url=url)
    http = client._http
    untimed = http.request
    requests: list[tuple[float, float]] = []

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return untimed(*args, **kwargs)
        finally:
            requests.append((time.time(), (time.perf_counter() - t0) * 1000))

    http.request = timed  # type: ignore[method-assign]
    ready.set()
    infos: list[tuple[float, float]] = []
    seen: dict[str, list[str]] = defaultdict(list)
    errors: list[str] = []
    done: set[str] = set()
    while not stop.is_set():
        for dataset_id, sid in targets:
            if stop.is_set():
                break
            if sid in done:
                continue
            client.dataset_id = dataset_id
            t0 = time.perf_counter()
            try:
                info = client.get_compute_worker_run_info(sid)
            except Exception as e:  # a poll that breaks is a finding, reported, not a crash
                errors.append(f"{sid}: {type(e).__name__}: {e}")
                continue
            infos.append((time.time(), (time.perf_counter() - t0) * 1000))
            if not seen[sid] or seen[sid][-1] != info.state:
                seen[sid].append(str(info.state))
            if info.state in END_STATES:
                done.add(sid)
            time.sleep(interval_s)
        if len(done) == len(targets):
            stop.wait(interval_s)  # everything ended: keep quiet until told to stop
    Path(out_path).write_text(
        json.dumps({"requests": requests, "infos": infos, "seen": seen, "errors": errors})
    )


# --- the platform ----------------------------------------------------------------------------


@dataclass
class _Platform:
    url: str
    token: str
    env: dict[str, str]
    home: Path
    input_mount: Path
    lightly_mount: Path


@contextmanager
def _platform(work: Path, database_url: str | None) -> Iterator[_Platform]:
    input_mount, lightly_mount = work / "input", work / "lightly"
    input_mount.mkdir(parents=True)
    lightly_mount.mkdir(parents=True)
    env = {
        "THRESHER_LOCAL_ROOT": str(input_mount),
        "THRESHER_LIGHTLY_ROOT": str(lightly_mount),
        "THRESHER_PROGRESS": "0",
    }
    with running_server(work / "home", env=env, database=database_url) as srv:
        full_env = {
            **os.environ,
            **env,
            "THRESHER_HOME": str(srv.home),
            "THRESHER_TOKEN": srv.token,
        }
        full_env.pop("THRESHER_SERVER_URL", None)
        if database_url:
            full_env["THRESHER_DATABASE_URL"] = database_url
        yield _Platform(srv.url, srv.token, full_env, srv.home, input_mount, lightly_mount)


def _start_worker(p: _Platform, name: str, logs: Path) -> subprocess.Popen[bytes]:
    cmd = [*THRESHER, "worker", "start", "--worker-id", name, "--server", p.url]
    cmd += ["--input-mount", str(p.input_mount), "--lightly-mount", str(p.lightly_mount)]
    with (logs / f"{name}.txt").open("ab") as log:
        return subprocess.Popen(cmd, env=p.env, stdout=log, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_load(options: LoadOptions, work: Path, say: Any = print) -> LoadResult:
    """Run the load described by ``options`` in ``work`` (a fresh folder) and check it.

    Args:
        options: Runs, workers, pollers, images, timings, database.
        work: An empty folder for the server's home, the mounts and the logs.
        say: Where progress lines go.

    Returns:
        What happened; ``problems()`` lists the consistency checks that failed.
    """
    from thresher import ApiWorkflowClient, DatasetType, DatasourcePurpose
    from thresher.client.errors import ServerUnreachableError

    logs = work / "logs"
    logs.mkdir(parents=True)
    with ExitStack() as stack:
        p = stack.enter_context(_platform(work, options.database_url))
        client = ApiWorkflowClient(token=p.token, server_url=p.url)
        datasets: list[tuple[str, str]] = []  # (dataset id, LIGHTLY folder under the mount)
        for k in range(options.runs):
            out = p.lightly_mount / f"out-{k}"
            csv = None if options.embed_model else out / ".lightly" / "embeddings" / "load.csv"
            make_images(p.input_mount / f"images-{k}", options.images, seed=k, embeddings_csv=csv)
            out.mkdir(exist_ok=True)
            client.create_dataset(f"load-{k}", DatasetType.IMAGES)
            client.set_local_config(f"images-{k}", purpose=DatasourcePurpose.INPUT)
            client.set_local_config(f"out-{k}", purpose=DatasourcePurpose.LIGHTLY)
            datasets.append((client.dataset_id, f"out-{k}"))
        targets: list[tuple[str, str]] = []
        for i, (dataset_id, _) in enumerate(datasets):
            client.dataset_id = dataset_id
            sid = client.schedule_compute_worker_run(
                worker_config=dict(WORKER_CONFIG)
                if options.embed_model
                else {**WORKER_CONFIG, "embeddings": "load.csv"},
                selection_config={"n_samples": 4 + i % 4, "strategies": DIVERSITY},
            )
            targets.append((dataset_id, sid))
        say(f"scheduled {len(targets)} runs on {len(datasets)} datasets")

        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        pollers = []
        readies = []
        for i in range(options.pollers):
            # Each poller starts at another run, so they do not ask in lock-step.
            shift = i * len(targets) // max(1, options.pollers)
            order = targets[shift:] + targets[:shift]
            dump = str(work / f"poller-{i}.json")
            ready = ctx.Event()
            args = (p.url, p.token, order, options.poll_interval_s, ready, stop, dump)
            proc = ctx.Process(target=_poller, args=args)
            proc.start()
            pollers.append((proc, dump))
            readies.append(ready)
        for ready in readies:  # the pollers import the client before they poll
            if not ready.wait(180):
                raise RuntimeError("a poller did not start in 180 s")
        t_baseline = time.time()
        time.sleep(options.baseline_s)
        t_load = time.time()
        say(f"baseline: {options.baseline_s:.0f} s of polls with every run OPEN, no worker")
        workers = [_start_worker(p, f"load-worker-{i}", logs) for i in range(options.workers)]
        for w in workers:
            stack.callback(_stop, w)
        sids = {sid for _, sid in targets}
        deadline = time.monotonic() + options.timeout_s
        ended: dict[str, str] = {}
        while time.monotonic() < deadline:
            time.sleep(2.0)
            try:
                listed = client.get_compute_worker_runs()
            except ServerUnreachableError as e:
                # Seen once on a machine at load 25: a reused keep-alive connection reset.
                # The pollers' errors are the findings; this loop only waits for the end.
                say(f"listing the runs failed, trying again: {e}")
                continue
            ended = {
                r.scheduled_id: str(r.state)
                for r in listed
                if r.scheduled_id in sids and r.state in END_STATES
            }
            if len(ended) == len(sids):
                break
            if any(w.poll() is not None for w in workers):
                say("a worker exited early; see its log in " + str(logs))
                break
        t_end = time.time()
        say(f"{len(ended)} of {len(sids)} runs ended after {t_end - t_load:.0f} s")
        time.sleep(2 * options.poll_interval_s + 1)  # the pollers see the last end states
        stop.set()
        for proc, _ in pollers:
            proc.join(60)
        for w in workers:
            _stop(w)

        runs_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
        dataset_of: dict[str, str] = {}  # run id -> dataset id
        for r in client.get_compute_worker_runs():
            if r.scheduled_id in sids:
                runs_of[r.scheduled_id].append((r.id, str(r.state)))
                dataset_of[r.id] = str(r.dataset_id)
        scheduled_state: dict[str, str] = {}
        for dataset_id, _ in datasets:
            client.dataset_id = dataset_id
            for state in ("OPEN", "LOCKED", "DONE", "CANCELED"):
                for sr in client.get_scheduled_compute_worker_runs(state=state):
                    scheduled_state[sr.id] = state
        folder_of = {dataset_id: folder for dataset_id, folder in datasets}
        missing: dict[str, list[str]] = {}
        for run_id, dataset_id in dataset_of.items():
            folder = p.lightly_mount / folder_of[dataset_id] / ".lightly" / "runs" / run_id
            missing[run_id] = [
                name
                for name in ("report.pdf", "report.json", "log.txt", "filenames/selected.txt")
                if not (folder / name).is_file()
            ]
        taken_by: dict[str, list[str]] = defaultdict(list)
        for log in sorted(logs.glob("load-worker-*.txt")):
            for _run_id, sid in TAKEN.findall(log.read_text(errors="replace")):
                taken_by[sid].append(log.stem)

    result = LoadResult(
        scheduled=[sid for _, sid in targets],
        runs_of=dict(runs_of),
        taken_by=dict(taken_by),
        scheduled_state=scheduled_state,
        missing_artifacts=missing,
        seen=[],
        wall_s=t_end - t_load,
    )
    for _, dump in pollers:
        if not Path(dump).exists():
            result.poll_errors.append(f"a poller wrote nothing ({dump})")
            continue
        doc = json.loads(Path(dump).read_text())
        result.seen.append(doc["seen"])
        result.poll_errors += doc["errors"]
        for key, base, load in (
            ("requests", result.baseline_request_ms, result.load_request_ms),
            ("infos", result.baseline_info_ms, result.load_info_ms),
        ):
            for t, ms in doc[key]:
                if t_baseline <= t < t_load:
                    base.append(ms)
                elif t_load <= t <= t_end:
                    load.append(ms)
    return result


# --- the database alone: polls while writers commit ------------------------------------------


def _db_platform(home: Path, mode: str) -> Any:
    from thresher.platform.core import Platform
    from thresher.platform.settings import Settings

    if mode == "write lock":
        # The baseline: how every poll read before read_session (BEGIN IMMEDIATE on SQLite).
        Platform.read_session = Platform.session  # type: ignore[method-assign]
    url = f"sqlite:///{home / 'thresher.db'}"
    return Platform(Settings(home=home, database_url=url, worker_timeout_s=600.0))


def _db_setup(home: Path) -> dict[str, Any]:
    from tests.platform.helpers import ready_dataset, schedule, worker
    from thresher.platform import runs, users

    p = _db_platform(home, "read")
    p.migrate()
    u, token = users.add_user(p, "load@example.com")
    d = ready_dataset(p, u)
    info: dict[str, Any] = {"token": token, "workers": [], "runs": [], "scheduled": []}
    for i in range(2):
        w = worker(p, u, f"load-worker-{i}")
        schedule(p, u, d)
        claimed = runs.claim(p, u, w)
        assert claimed is not None
        info["workers"].append(w)
        info["runs"].append(claimed.run.id)
        info["scheduled"].append(claimed.scheduled.id)
    p.close()
    return info


def _db_poller(home: str, mode: str, info: dict[str, Any], seconds: float, out: str) -> None:
    """What one status request does in the service layer, timed: the token, then the run."""
    from thresher.platform import runs, users

    p = _db_platform(Path(home), mode)
    ms: list[float] = []
    end = time.time() + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        u = users.authenticate(p, info["token"])
        runs.get_run_by_scheduled(p, u, info["scheduled"][len(ms) % 2])
        ms.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.02)
    Path(out).write_text(json.dumps(ms))


def _db_writer(home: str, info: dict[str, Any], k: int, seconds: float) -> None:
    """A busy worker: a heartbeat and a state every 50 ms (real ones: a few a second)."""
    from thresher.platform import runs, users, workers
    from thresher.wire import RunStateUpdate

    p = _db_platform(Path(home), "read")
    u = users.authenticate(p, info["token"])
    end, n = time.time() + seconds, 0
    while time.time() < end:
        workers.heartbeat(p, u, info["workers"][k], "BUSY")
        state = RunStateUpdate(state="EMBEDDING", message=f"embedded {n}")
        runs.update_state(p, u, info["runs"][k], state)
        n += 1
        time.sleep(0.05)


def db_contention(rounds: int, seconds: float, pollers: int, work: Path) -> dict[str, list[float]]:
    """Service-layer polls on SQLite while 2 writers commit, with and without read sessions.

    Rounds alternate the two modes (``read session``: the code as it is; ``write lock``:
    ``read_session`` patched to ``session`` in the pollers, how polls read before), so the
    machine's noise falls on both alike. No HTTP, no flows: the database's share alone.

    Returns:
        Mode -> every poll's milliseconds.
    """
    info = _db_setup(work)
    ctx = mp.get_context("spawn")
    ms: dict[str, list[float]] = {"read session": [], "write lock": []}
    for r in range(rounds):
        for mode in list(ms) if r % 2 else list(ms)[::-1]:
            writers = [
                ctx.Process(target=_db_writer, args=(str(work), info, k, seconds + 4))
                for k in range(2)
            ]
            for w in writers:
                w.start()
            time.sleep(2.0)  # the writers import and start writing
            outs = [str(work / f"db-{r}-{i}.json") for i in range(pollers)]
            procs = [
                ctx.Process(target=_db_poller, args=(str(work), mode, info, seconds, o))
                for o in outs
            ]
            for q in procs:
                q.start()
            for q in procs + writers:
                q.join()
            for o in outs:
                ms[mode] += json.loads(Path(o).read_text())
    return ms


def _row(label: str, values: list[float]) -> str:
    qs = "  ".join(f"p{q} {percentile(values, q):7.1f}" for q in (50, 95, 99))
    top = max(values) if values else float("nan")
    return f"  {label:<34} n={len(values):6d}  {qs}  max {top:7.1f} ms"


def report(options: LoadOptions, r: LoadResult) -> bool:
    """Print the figures; True when every run held its promises and p99 < 100 ms."""
    problems = r.problems()
    print(
        f"runs: {len(r.scheduled)} scheduled, {len(r.completed())} completed, "
        f"{len(r.failed())} failed, {len(r.lost())} lost, {len(r.run_twice())} run twice"
    )
    print(f"consistency problems: {len(problems)}")
    for line in problems[:20]:
        print("  " + line)
    ended = sum(1 for runs in r.runs_of.values() for _, state in runs if state in END_STATES)
    rate = 60 * ended / r.wall_s if r.wall_s else 0.0
    print(
        f"wall: {r.wall_s:.1f} s from starting {options.workers} workers to the last run's end "
        f"({rate:.1f} runs ended/min)"
    )
    print(f"polls ({options.pollers} pollers, {options.poll_interval_s} s apart):")
    print(_row("baseline, one status request", r.baseline_request_ms))
    print(_row("under load, one status request", r.load_request_ms))
    print(_row("baseline, get_compute_worker_run_info", r.baseline_info_ms))
    print(_row("under load, get_compute_worker_run_info", r.load_info_ms))
    p99 = percentile(r.load_request_ms, 99)
    base99 = percentile(r.baseline_request_ms, 99)
    print(f"p99 under load / baseline: {p99 / base99:.1f}x")
    fast = p99 < TARGET_P99_MS
    print(f"{'PASS' if fast else 'FAIL'}: status request p99 {p99:.1f} ms (target < 100 ms)")
    return fast and not problems


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the load, print the figures; exit 1 on FAIL."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = LoadOptions()
    ap.add_argument("--runs", type=int, default=d.runs)
    ap.add_argument("--workers", type=int, default=d.workers)
    ap.add_argument("--pollers", type=int, default=d.pollers)
    ap.add_argument("--images", type=int, default=d.images, help="images per dataset")
    ap.add_argument("--poll-interval", type=float, default=d.poll_interval_s, metavar="S")
    ap.add_argument("--baseline-s", type=float, default=d.baseline_s)
    ap.add_argument("--timeout-s", type=float, default=d.timeout_s)
    ap.add_argument("--database-url", help="PostgreSQL URL (default: SQLite in a temp home)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (logs, databases)")
    ap.add_argument(
        "--db-contention",
        action="store_true",
        help="only time service-layer polls on SQLite under writers, with and without read "
        "sessions (no server, no runs)",
    )
    ap.add_argument(
        "--embed-model",
        action="store_true",
        help="embed with the model in every run (default: precomputed embeddings)",
    )
    a = ap.parse_args(argv)
    options = LoadOptions(
        runs=a.runs,
        workers=a.workers,
        pollers=a.pollers,
        images=a.images,
        poll_interval_s=a.poll_interval,
        baseline_s=a.baseline_s,
        timeout_s=a.timeout_s,
        database_url=a.database_url,
        embed_model=a.embed_model,
    )
    if a.db_contention:
        with tempfile.TemporaryDirectory(prefix="thresher-db-") as tmp:
            ms = db_contention(rounds=2, seconds=10.0, pollers=a.pollers, work=Path(tmp))
        print(f"service-layer polls on SQLite, {a.pollers} pollers, 2 writers, 2 x 10 s each:")
        for mode, values in ms.items():
            print(_row(mode, values))
        ratio = percentile(ms["write lock"], 99) / percentile(ms["read session"], 99)
        print(f"p99 write lock / read session: {ratio:.1f}x")
        return 0
    print(f"options: {options}")
    with ExitStack() as stack:
        if a.keep:
            work = Path(a.keep)
            work.mkdir(parents=True, exist_ok=False)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="thresher-load-")))
        result = run_load(options, work)
        ok = report(options, result)
        counts = Counter(s for _, s in (r for runs in result.runs_of.values() for r in runs))
        print(f"run states: {dict(counts)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
