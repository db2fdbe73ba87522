"""Kill and resume: SIGKILL ``thresher run`` anywhere, re-run it, get the uninterrupted result.

Each kill starts ``thresher run`` in its own process group under ``kill_points.py``, which
numbers what the run does (stage starts, INPUT reads, LIGHTLY writes, moves into place,
deletes) and SIGKILLs the whole group (the thresher process, its decode workers and Prefect's
embedded API server) at a chosen event, or the thresher process alone as the OOM killer does.
After each kill:

- nothing the run started is still running (within seconds);
- every file in LIGHTLY under a final name is whole (JSON parses, PNG opens, PDF ends with
  ``%%EOF``, .npy loads, manifests list files that exist with the shapes they state); the only
  other files are ``.tmp-<32 hex>`` files (``TEMP_NAME``) of the write the kill interrupted;
- the re-run, with the same Prefect home (the killed run's flow run left in its database),
  completes and gives the reference run's selection, file lists, counts, tags and embeddings;
- it serves every stage whose manifest the killed run wrote from the cache (the summary's
  "from cache" line, Prefect's task state ``Cached``; the listing, which is how a run sees what
  changed, is never cached) and writes nothing in those stages' cache folders; an embed stage
  killed after a shard resumes from its shards.

Every process imports a copy of the package taken when the module starts (``PYTHONPATH``): a
stage's cache key includes its code's version, so a source file saved between a kill and its
re-run (someone editing the working tree) would rightly make the re-run recompute.

The dataset is ``thresher example`` with 3 clusters of 6 (26 files: 18 images, 4 duplicates,
4 corrupt), one uninterrupted reference run for the whole module. The default run kills at
four chosen points; ``-m slow`` kills 20 times at points drawn from a seeded generator over
the reference run's events, half of them after a random delay.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from thresher.storage.location import TEMP_NAME

HARNESS = Path(__file__).with_name("kill_points.py")
N_SAMPLES = 5
#: The stages that keep a cache folder (report and write_results write the run folder).
CACHED_STAGES = (
    "list_input",
    "corruption_check",
    "deduplicate",
    "embed",
    "near_duplicates",
    "select",
)
MARK = "THRESHER_KILL_TEST"


@dataclass
class Run:
    """One ``thresher run`` under the harness."""

    code: int
    output: str
    events: list[str]
    kill: str = ""  # the harness's KILL line: where it died

    @property
    def run_dir(self) -> Path:
        """The finished run's folder, from the summary."""
        m = re.search(r"^  outputs: (.+)$", self.output, re.M)
        assert m, self.output[-3000:]
        return Path(m.group(1))

    @property
    def from_cache(self) -> dict[str, str]:
        """The summary's "from cache" line as stage -> what came from the cache."""
        m = re.search(r"^  from cache: (.+)$", self.output, re.M)
        if not m:
            return {}
        return dict(re.findall(r"(\w+) \(([^)]*)\)", m.group(1)))


@dataclass
class Setup:
    """The dataset, the shared Prefect home and the reference run's result and events."""

    images: Path
    prefect_home: Path
    pythonpath: str
    result: dict[str, Any]
    embeddings: tuple[list[str], np.ndarray]
    events: list[str] = field(default_factory=list)


def _package_copy(root: Path) -> str:
    """Copy the thresher package under ``root``; the folder to put on ``PYTHONPATH``."""
    import shutil

    import thresher

    folder = root / "package"
    shutil.copytree(
        Path(thresher.__file__).parent,
        folder / "thresher",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return str(folder)


def _thresher(
    setup_images: Path,
    lightly: Path,
    prefect_home: Path,
    pythonpath: str,
    record: Path,
    kill_at: str = "",
    delay: float = 0.0,
    scope: str = "group",
    mark: str = "",
    timeout_s: float = 400,
    systmp: Path | None = None,
) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KILL_"))}
    if systmp is not None:
        env["TMPDIR"] = str(systmp)
    env.update(
        PYTHONPATH=pythonpath,
        PREFECT_HOME=str(prefect_home),
        THRESHER_PROGRESS="0",
        KILL_RECORD=str(record),
        KILL_AT=kill_at,
        KILL_DELAY=str(delay),
        KILL_SCOPE=scope,
        **{MARK: mark or secrets.token_hex(8)},
    )
    args = [str(setup_images), "--lightly", str(lightly), "--n-samples", str(N_SAMPLES)]
    # Output to a file, not a pipe: a child that outlives the kill would hold a pipe open.
    output = record.with_suffix(".out")
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(HARNESS), "run", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=lightly.parent,
            start_new_session=True,  # its own process group: the harness kills that, not pytest
        )
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        raise AssertionError(
            f"thresher run did not end in {timeout_s} s:\n{output.read_text()[-3000:]}"
        ) from None
    lines = record.read_text().splitlines() if record.exists() else []
    record.unlink(missing_ok=True)
    kill = next((x for x in lines if x.startswith("KILL ")), "")
    events = [x for x in lines if not x.startswith("KILL ")]
    return Run(proc.returncode, output.read_text(errors="replace"), events, kill)


def _survivors(mark: str, timeout_s: float) -> list[str]:
    """Processes started by the run ``mark`` still alive after ``timeout_s`` (then killed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for p in psutil.process_iter(["pid", "status"]):
            try:
                if p.info["status"] != psutil.STATUS_ZOMBIE and p.environ().get(MARK) == mark:
                    alive.append(p)
            except psutil.Error:
                continue
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    found = []
    for p in alive:  # found: report them, and leave nothing running behind the test
        try:
            found.append(f"{p.pid} {' '.join(p.cmdline()[:6])}")
            p.kill()
        except psutil.Error:
            continue
    return found


def _check_whole(lightly: Path) -> list[str]:
    """Assert every file under a final name is whole; the temporary files left, relative."""
    from PIL import Image

    temporary = []
    for path in sorted(p for p in lightly.rglob("*") if p.is_file()):
        rel = str(path.relative_to(lightly))
        if TEMP_NAME.match(path.name):
            temporary.append(rel)
            continue
        data = path.read_bytes()
        suffix = path.suffix.lower()
        try:
            if suffix == ".json":
                json.loads(data)
            elif suffix == ".npy":
                np.load(io.BytesIO(data), allow_pickle=False)
            elif suffix in (".png", ".jpg", ".jpeg"):
                with Image.open(io.BytesIO(data)) as im:
                    im.load()
            elif suffix == ".pdf":
                assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
            elif suffix == ".parquet":
                import pyarrow.parquet as pq

                pq.read_table(io.BytesIO(data))
            elif suffix == ".csv":
                rows = list(csv.reader(io.StringIO(data.decode())))
                assert len({len(r) for r in rows}) == 1, "rows of different lengths"
            elif suffix == ".txt":
                data.decode("utf-8")
            else:
                raise AssertionError(f"a file thresher does not write: {rel}")
        except Exception as e:  # any failure to read is the finding
            raise AssertionError(f"{rel} is not whole: {e!r}") from e
    for manifest in lightly.glob(".lightly/cache/*/*/manifest.json"):
        _check_manifest(manifest)
    return temporary


def _check_manifest(manifest: Path) -> None:
    folder = manifest.parent
    m = json.loads(manifest.read_text())
    missing = [f for f in m["files"] if not (folder / f).is_file()]
    assert not missing, f"{manifest} lists missing files {missing}"
    if folder.parent.name == "embed":
        emb = np.load(folder / "embeddings.npy")
        assert emb.shape == (m["n"], m["dim"]), (manifest, emb.shape)
        assert len(json.loads((folder / "filenames.json").read_text())) == m["n"]
    if folder.parent.name == "select":
        assert len(np.load(folder / "selected.npy")) == m["n_selected"], manifest


def _finished(lightly: Path) -> set[str]:
    """The stages whose manifest is there (finished, as far as a re-run can tell)."""
    return {m.parent.parent.name for m in lightly.glob(".lightly/cache/*/*/manifest.json")}


def _result(run: Run, lightly: Path) -> tuple[dict[str, Any], tuple[list[str], np.ndarray]]:
    """What must equal the reference: file lists, counts, tags, stage keys; the embeddings."""
    d = run.run_dir
    report = json.loads((d / "report.json").read_text())
    info = report["generalInformation"]
    config = json.loads((d / "config.json").read_text())
    result = {
        "filenames": {p.name: p.read_text() for p in sorted((d / "filenames").glob("*.txt"))},
        "sizes": info["datasetInformation"]["datasetSizes"],
        "n_selected": info["selectedImages"]["nSelected"],
        "corrupt": report["corruptSamples"],
        "duplicates": report["duplicateSamples"],
        "tag": (lightly / ".lightly" / "tags" / f"{d.name}.txt").read_text(),
        "stage_keys": config["stage_keys"],
    }
    rows = list(csv.reader(io.StringIO((d / "embeddings.csv").read_text())))[1:]
    names = [r[0] for r in rows]
    values = np.array([[float(x) for x in r[1:] if _is_number(x)] for r in rows])
    return result, (names, values)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _task_states(prefect_home: Path) -> dict[str, str]:
    """The task states of the newest flow run in Prefect's database: stage -> state name."""
    with sqlite3.connect(prefect_home / "prefect.db") as db:
        (flow_run_id,) = db.execute(
            "SELECT id FROM flow_run ORDER BY start_time DESC LIMIT 1"
        ).fetchone()
        rows = db.execute(
            "SELECT name, state_name FROM task_run WHERE flow_run_id = ?", (flow_run_id,)
        ).fetchall()
    return {name.rsplit("-", 1)[0]: state for name, state in rows}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """The dataset and one uninterrupted reference run (its events number the kill points)."""
    from thresher.examples import make_example_dataset

    root = tmp_path_factory.mktemp("kill")
    images = root / "images"
    make_example_dataset(images, n_clusters=3, per_cluster=6)
    prefect_home = root / "prefect"
    pythonpath = _package_copy(root)
    lightly = root / "reference" / "lightly"
    lightly.parent.mkdir()
    ref = _thresher(images, lightly, prefect_home, pythonpath, root / "reference" / "events.txt")
    assert ref.code == 0, ref.output[-3000:]
    assert ref.from_cache == {}, ref.output
    assert _check_whole(lightly) == []
    result, embeddings = _result(ref, lightly)
    assert result["n_selected"] == N_SAMPLES
    return Setup(images, prefect_home, pythonpath, result, embeddings, ref.events)


def _kill_and_resume(
    setup: Setup, tmp: Path, kill_at: str, delay: float = 0.0, scope: str = "group"
) -> tuple[Run, set[str], list[str], bool]:
    """Kill a run at ``kill_at``, check what it left, re-run, check the result.

    Returns:
        The killed run, the stages it finished, the temporary files it left, and whether the
        file its kill point names existed after the kill.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    lightly = tmp / "lightly"
    systmp = tmp / "systmp"  # the runs' temporary folders
    systmp.mkdir()
    mark = secrets.token_hex(8)
    killed = _thresher(
        setup.images,
        lightly,
        setup.prefect_home,
        setup.pythonpath,
        tmp / "killed.txt",
        kill_at,
        delay,
        scope,
        mark,
        systmp=systmp,
    )
    assert killed.kill, f"the run never reached {kill_at}:\n{killed.output[-3000:]}"
    assert killed.code == -9, (killed.code, killed.output[-3000:])
    survivors = _survivors(mark, timeout_s=15)
    assert survivors == [], f"still running after the kill at {killed.kill}: {survivors}"
    left = _check_whole(lightly) if lightly.exists() else []
    finished = _finished(lightly)
    # The file the kill point names (a commit's final name, a write's temporary one), then.
    point_existed = Path(killed.kill.split()[-1]).exists()
    shards = list(lightly.glob(".lightly/cache/embed/*/shards/*.npy"))
    # What the killed run left there (its log buffer, when killed while it had one).
    orphans = sorted(p.name for p in systmp.glob("thresher-*"))

    again = _thresher(
        setup.images,
        lightly,
        setup.prefect_home,
        setup.pythonpath,
        tmp / "again.txt",
        systmp=systmp,
    )
    where = f"killed at {killed.kill}"
    assert again.code == 0, f"{where}; the re-run failed:\n{again.output[-3000:]}"
    # The re-run swept the killed run's temporary folders and removed its own.
    assert sorted(p.name for p in systmp.glob("thresher-*")) == [], (where, orphans)
    # The stages the killed run finished are served from the cache; nothing else is.
    # (The listing is never cached: listing INPUT is how a run sees what changed.)
    cached = again.from_cache
    reused = finished - {"list_input"}
    assert {s for s, what in cached.items() if what == "cached"} == reused, (where, cached)
    partial = {s: what for s, what in cached.items() if what != "cached"}
    if partial:
        assert list(partial) == ["embed"] and shards, (where, cached)
        assert re.fullmatch(r"\d+ of \d+ images from cache", partial["embed"]), partial
    states = _task_states(setup.prefect_home)
    for stage in reused:
        assert states.get(stage) == "Cached", (where, states)
    for stage in set(CACHED_STAGES) - reused - set(partial):
        assert states.get(stage, "Completed") == "Completed", (where, states)
    # ... and the re-run wrote nothing in their cache folders.
    rewritten = [
        e
        for e in again.events
        if e.split()[1] in ("write", "commit")
        and any(f"/.lightly/cache/{s}/" in e for s in finished)
    ]
    assert rewritten == [], (where, rewritten)
    # Everything is whole, the re-run left no temporary file of its own, and the result is
    # the uninterrupted run's.
    assert _check_whole(lightly) == left, where
    result, (names, values) = _result(again, lightly)
    assert result == setup.result, where
    assert names == setup.embeddings[0], where
    np.testing.assert_allclose(values, setup.embeddings[1], rtol=1e-5, atol=1e-6, err_msg=where)
    return killed, finished, left, point_existed


@pytest.mark.parametrize(
    ("kill_at", "scope", "finished"),
    [
        # mid corruption check: 5 of the 26 files read, the listing finished
        pytest.param("corruption_check/read:5", "group", {"list_input"}, marks=pytest.mark.slow),
        # mid embedding: its first shard committed, embeddings.npy written but not moved
        ("embed/commit:2", "group", {"list_input", "corruption_check", "deduplicate"}),
        # while writing outputs: the 3rd file list written under its temporary name
        pytest.param("write_results/commit:3", "group", set(CACHED_STAGES), marks=pytest.mark.slow),
        # the OOM killer mid-embed: the thresher process alone; what it started must end too
        pytest.param(
            "embed/commit:1",
            "process",
            {"list_input", "corruption_check", "deduplicate"},
            marks=pytest.mark.slow,
        ),
    ],
    ids=["mid-corruption-check", "mid-embed", "mid-write-results", "oom-kill-mid-embed"],
)
def test_kill_at_a_chosen_point_then_resume(
    setup: Setup, tmp_path: Path, kill_at: str, scope: str, finished: set[str]
) -> None:
    killed, done, left, point_existed = _kill_and_resume(setup, tmp_path, kill_at, scope=scope)
    assert done == finished, killed.kill
    if "commit" in kill_at:
        # Killed between the write and the move: the file exists only under its temporary
        # name (the final name never shows half of it).
        assert not point_existed, killed.kill
        assert len(left) == 1 and TEMP_NAME.match(Path(left[0]).name), left
    else:
        assert left == []


@pytest.mark.slow
@pytest.mark.timeout(2400)  # 20 kills and re-runs: about 14 minutes on 2 busy cores
def test_twenty_kills_at_random_points_then_resume(setup: Setup, tmp_path: Path) -> None:
    """20 kills, each stage's turn drawn from a seeded generator, at a random event in it.

    Every stage of the reference run gets two or three kills, at an event drawn from those the
    reference run had in that stage, half of them after a random delay (so the kill lands
    while the run goes on); every fifth kill hits the thresher process alone.
    """
    rng = random.Random(14)
    stages = list(dict.fromkeys(e.split()[2] for e in setup.events))
    n_events = {s: sum(e.split()[2] == s for e in setup.events) for s in stages}
    plan = (stages * 3)[:20]
    rng.shuffle(plan)
    landed: set[str] = set()
    for i, stage in enumerate(plan):
        at = f"{stage}/{rng.randint(1, n_events[stage])}"
        delay = round(rng.uniform(0.0, 0.5), 2) if rng.random() < 0.5 else 0.0
        scope = "process" if i % 5 == 4 else "group"
        killed, _finished, _left, _existed = _kill_and_resume(
            setup, tmp_path / f"kill-{i:02d}", at, delay, scope
        )
        landed.add(killed.kill.split()[3])
    assert landed == set(stages), (plan, landed)


# --- the platform: a server killed and restarted with runs OPEN and LOCKED ----------------

#: Seconds of worker silence after which the server marks its runs CRASHED (short, so the
#: server below stays down longer than it: a restart must not count its own downtime).
WORKER_TIMEOUT_S = 8
SERVER_DOWN_S = 12
RUNNING = {
    "INITIALIZING",
    "LOADING_DATASET",
    "CHECKING_CORRUPTNESS",
    "TRAINING",
    "EMBEDDING",
    "SAMPLING",
    "GENERATING_REPORT",
    "SAVING_RESULTS",
    "UPLOADING_ARTIFACTS",
}
END = {"COMPLETED", "FAILED", "CRASHED", "ABORTED", "CANCELED_OR_NOT_EXISTING"}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """``thresher server start`` on ``port``; returns once it answers."""
    import httpx

    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "thresher", "server", "start", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while True:
        try:
            url = f"http://127.0.0.1:{port}/v1/versions/pip/minimum"
            if httpx.get(url, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, 9)
            raise AssertionError(f"the server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def _state(client: Any, sid: str) -> str:
    return str(client.get_compute_worker_run_info(sid).state)


@dataclass
class Platform:
    """A ``thresher server start`` process (restartable), its user and the workers' mounts."""

    tmp: Path
    env: dict[str, str]
    port: int
    token: str
    server: subprocess.Popen[bytes] | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_server(self) -> None:
        self.server = _start_server(self.env, self.port, self.tmp / "server.txt")
        self.processes.append(self.server)

    def client(self) -> Any:
        from thresher import ApiWorkflowClient, DatasourcePurpose

        client = ApiWorkflowClient(token=self.token, server_url=self.url)
        client.create_dataset("kill-" + secrets.token_hex(3))
        client.set_local_config(relative_path="images", purpose=DatasourcePurpose.INPUT)
        client.set_local_config(relative_path="out", purpose=DatasourcePurpose.LIGHTLY)
        return client

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        """``thresher worker start`` in its own process group; output in ``<name>.txt``."""
        with (self.tmp / f"{name}.txt").open("ab") as out:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "thresher", "worker", "start", "--worker-id", name),
                    *("--server", self.url, "--input-mount", self.env["THRESHER_LOCAL_ROOT"]),
                    *("--lightly-mount", self.env["THRESHER_LIGHTLY_ROOT"]),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc


@pytest.fixture
def platform(tmp_path: Path) -> Any:
    """A server (short worker timeout, no Prefect server) with one user; 68 planted images."""
    from thresher.examples import make_example_dataset

    input_mount, lightly_mount = tmp_path / "input", tmp_path / "lightly"
    lightly_mount.mkdir()
    make_example_dataset(input_mount / "images", n_clusters=3, per_cluster=20)
    token = "kill-" + secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THRESHER_", "PREFECT_"))}
    env.update(
        THRESHER_HOME=str(tmp_path / "home"),
        THRESHER_TOKEN=token,
        THRESHER_PROGRESS="0",
        THRESHER_PREFECT_SERVER="off",
        THRESHER_WORKER_TIMEOUT_S=str(WORKER_TIMEOUT_S),
        THRESHER_LOCAL_ROOT=str(input_mount),
        THRESHER_LIGHTLY_ROOT=str(lightly_mount),
        PREFECT_HOME=str(tmp_path / "prefect"),
        PYTHONPATH=_package_copy(tmp_path),
    )
    subprocess.run(
        [sys.executable, "-m", "thresher", "user", "add", "kill@example.com", "--token", token],
        env=env,
        check=True,
        capture_output=True,
    )
    p = Platform(tmp_path, env, _free_port(), token)
    p.start_server()
    try:
        yield p
    finally:
        for proc in p.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()


SELECTION = {
    "n_samples": N_SAMPLES,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


def _wait_ended(client: Any, sids: list[str], timeout_s: float) -> dict[str, str]:
    ended: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while len(ended) < len(sids):
        for sid in sids:
            if sid not in ended and (state := _state(client, sid)) in END:
                ended[sid] = state
        assert time.monotonic() < deadline, (ended, [_state(client, s) for s in sids])
        time.sleep(0.5)
    return ended


@pytest.mark.slow  # CI runs it (pytest -m slow); a few minutes of platform runs
def test_a_killed_server_restarts_without_losing_or_repeating_a_run(platform: Platform) -> None:
    """SIGKILL the server while one run is LOCKED (running) and two are OPEN; restart it.

    After the restart the running run goes on and completes, the open ones are taken and
    complete, each scheduled run has exactly one run, and the worker took each once. The
    server stays down longer than the worker timeout: its own downtime must not count as the
    worker's silence (it did: the running run was marked CRASHED and its worker stopped it).
    """
    client = platform.client()
    # Three runs on one dataset: the later ones add to its samples, so they use the datapool.
    pool = {"use_datapool": True, "datasource": {"process_all": True}}
    sids = [
        client.schedule_compute_worker_run(worker_config=pool, selection_config=SELECTION)
        for _ in range(3)
    ]
    platform.worker("steady")
    deadline = time.monotonic() + 120
    while (states := [_state(client, s) for s in sids])[0] not in RUNNING:
        assert time.monotonic() < deadline, states
        time.sleep(0.2)
    assert states[1:] == ["OPEN", "OPEN"], states
    assert [r.state for r in client.get_scheduled_compute_worker_runs("LOCKED")] == ["LOCKED"]

    assert platform.server is not None
    os.killpg(platform.server.pid, 9)  # the server and anything it started
    platform.server.wait()
    time.sleep(SERVER_DOWN_S)
    platform.start_server()

    ended = _wait_ended(client, sids, 400)
    logs = (platform.tmp / "steady.txt").read_text(errors="replace")
    assert list(ended.values()) == ["COMPLETED"] * 3, (ended, logs[-3000:])
    runs = client.get_compute_worker_runs(dataset_id=client.dataset_id)
    assert sorted(str(r.scheduled_id) for r in runs) == sorted(sids), runs
    taken = re.findall(r"run (\S+): taken \(scheduled (\S+)\)", logs)
    assert sorted(s for _r, s in taken) == sorted(sids), taken
    assert sorted(r for r, _s in taken) == sorted(r.id for r in runs), taken
    assert client.get_scheduled_compute_worker_runs("OPEN") == []
    assert client.get_scheduled_compute_worker_runs("LOCKED") == []


@pytest.mark.slow  # CI runs it (pytest -m slow); a few minutes of platform runs
def test_a_run_of_a_killed_worker_resumes_from_the_cache_on_a_new_worker(
    platform: Platform,
) -> None:
    """SIGKILL a worker mid-embedding; the run ends CRASHED, LIGHTLY holds only whole files, and
    the same run scheduled again on a new worker completes, reusing the finished stages.

    (tests/platform_e2e/test_reliability.py checks the CRASHED state, its message and timing,
    and that nothing of the killed worker runs on; this adds what the LIGHTLY location holds
    and that the next run resumes there.)
    """
    client = platform.client()
    sid = client.schedule_compute_worker_run(selection_config=SELECTION)
    worker = platform.worker("doomed")
    deadline = time.monotonic() + 240
    while (state := _state(client, sid)) != "EMBEDDING":
        assert time.monotonic() < deadline and state not in END, state
        time.sleep(0.2)
    os.killpg(worker.pid, 9)
    worker.wait()
    assert _wait_ended(client, [sid], 60) == {sid: "CRASHED"}
    lightly = Path(platform.env["THRESHER_LIGHTLY_ROOT"]) / "out"
    time.sleep(3)  # the flow process notices its worker is gone and stops
    left = _check_whole(lightly)
    finished = _finished(lightly)
    assert {"list_input", "corruption_check", "deduplicate"} <= finished, finished

    sid2 = client.schedule_compute_worker_run(selection_config=SELECTION)
    platform.worker("fresh")
    assert _wait_ended(client, [sid2], 300) == {sid2: "COMPLETED"}
    run = client.get_compute_worker_run_from_scheduled_run(scheduled_run_id=sid2)
    log = (lightly / ".lightly" / "runs" / run.id / "log.txt").read_text()
    for stage in finished - {"list_input"}:
        assert f"stage {stage}: cached" in log, (stage, log[-3000:])
    assert _check_whole(lightly) == left
    selected = (lightly / ".lightly" / "runs" / run.id / "filenames" / "selected.txt").read_text()
    assert len(selected.splitlines()) == N_SAMPLES


@pytest.mark.slow  # CI runs it (pytest -m slow); a few minutes of platform runs
def test_a_run_that_ends_while_the_server_is_down_completes_after_the_restart(
    platform: Platform,
) -> None:
    """SIGKILL the server late in a run and keep it down until the worker's run has ended.

    The worker keeps sending the end state, the artifacts and the selection until the server
    answers (sent once, they were lost, and the run stayed GENERATING_REPORT for ever).
    """
    client = platform.client()
    sid = client.schedule_compute_worker_run(selection_config=SELECTION)
    platform.worker("steady")
    deadline = time.monotonic() + 240
    while (state := _state(client, sid)) not in ("GENERATING_REPORT", "SAVING_RESULTS"):
        assert time.monotonic() < deadline and state not in END, state
        time.sleep(0.1)
    assert platform.server is not None
    os.killpg(platform.server.pid, 9)
    platform.server.wait()
    log = platform.tmp / "steady.txt"
    deadline = time.monotonic() + 120
    while "could not report" not in log.read_text(errors="replace").split("finished: selected")[-1]:
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.5)
    platform.start_server()
    assert _wait_ended(client, [sid], 60) == {sid: "COMPLETED"}
    run = client.get_compute_worker_run_from_scheduled_run(scheduled_run_id=sid)
    names = {a.file_name for a in run.artifacts or []}
    assert {"report.pdf", "log.txt"} <= names, names
    assert len(client.get_compute_worker_run_tags(run.id)) == 1
