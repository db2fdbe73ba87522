"""The service layer without HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from tests.platform.helpers import config, ready_dataset, schedule, user, worker
from thresher.platform import configs, datasets, datasources, runs, users, workers
from thresher.platform.core import Platform
from thresher.platform.errors import Conflict, Forbidden, Invalid, NotFound, Unprocessable
from thresher.platform.models import Datasource, Worker
from thresher.platform.settings import Settings
from thresher.wire import (
    SECRET_MASK,
    ArtifactCreateRequest,
    DatasetCreateRequest,
    DatasourceConfigLocal,
    DatasourceConfigS3,
    RunStateUpdate,
)

S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


def test_tokens_authenticate_and_are_stored_hashed(platform: Platform) -> None:
    u, token = users.add_user(platform, "bob@example.com")
    assert len(token) == 48
    assert users.authenticate(platform, token).id == u.id
    with pytest.raises(Forbidden):
        users.authenticate(platform, token + "x")
    with pytest.raises(Forbidden):
        users.authenticate(platform, None)
    with platform.session() as s:
        stored = s.execute(text("SELECT token_hash FROM tokens")).scalars().all()
    assert token not in stored and users.hash_token(token) in stored
    with pytest.raises(Conflict, match="already exists"):
        users.add_user(platform, "bob@example.com")
    kept = "my-existing-token-0123456789"
    u2, t2 = users.add_user(platform, "carol@example.com", kept)
    assert t2 == kept and users.authenticate(platform, kept).id == u2.id


def test_ownership_is_checked_on_every_object(platform: Platform) -> None:
    alice, bob = user(platform), user(platform, "bob@example.com")
    d = ready_dataset(platform, alice)
    w = worker(platform, alice)
    sched = schedule(platform, alice, d)
    claimed = runs.claim(platform, alice, w)
    assert claimed is not None
    run_id = claimed.run.id
    for call in (
        lambda: datasets.get(platform, bob, d),
        lambda: datasets.delete(platform, bob, d),
        lambda: datasources.get(platform, bob, d),
        lambda: datasources.put(platform, bob, d, DatasourceConfigLocal(full_path="x")),
        lambda: runs.list_scheduled(platform, bob, d),
        lambda: runs.cancel(platform, bob, d, sched),
        lambda: runs.get_run(platform, bob, run_id),
        lambda: runs.get_run_by_scheduled(platform, bob, sched),
        lambda: schedule(platform, bob, d),
    ):
        with pytest.raises(NotFound):  # to a stranger, alice's dataset does not exist
            call()
    for call in (
        lambda: runs.update_state(platform, bob, run_id, RunStateUpdate(state="EMBEDDING")),
        lambda: runs.claim(platform, bob, w),
        lambda: workers.heartbeat(platform, bob, w, "IDLE"),
        lambda: workers.delete(platform, bob, w),
    ):
        with pytest.raises(Forbidden):
            call()
    assert datasets.list_datasets(platform, bob) == []
    assert runs.list_runs(platform, bob) == []
    with pytest.raises(NotFound) as e:
        datasets.get(platform, alice, "0" * 24)
    assert e.value.code == "DATASET_UNKNOWN"


def test_dataset_names_are_unique_per_user(platform: Platform) -> None:
    alice, bob = user(platform), user(platform, "bob@example.com")
    datasets.create(platform, alice, DatasetCreateRequest(name="cars"))
    datasets.create(platform, bob, DatasetCreateRequest(name="cars"))  # another user: fine
    with pytest.raises(Conflict) as e:
        datasets.create(platform, alice, DatasetCreateRequest(name="cars"))
    assert e.value.code == "DATASET_NAME_EXISTS"
    names = [x.name for x in datasets.list_datasets(platform, alice, name="ca", exact=False)]
    assert names == ["cars"]
    assert datasets.list_datasets(platform, alice, shared=True) == []


def test_datasource_secrets_are_encrypted_and_never_returned(platform: Platform) -> None:
    alice = user(platform)
    d = datasets.create(platform, alice, DatasetCreateRequest(name="cars"))
    cfg = DatasourceConfigS3(
        purpose="INPUT",
        full_path="s3://bucket/in",
        s3_region="eu-central-1",
        s3_access_key_id="AKIAEXAMPLE",
        s3_secret_access_key=S3_SECRET,
    )
    datasources.put(platform, alice, d, cfg)
    got = datasources.get(platform, alice, d)
    assert isinstance(got, DatasourceConfigS3)
    assert got.s3_secret_access_key == SECRET_MASK and got.s3_access_key_id == "AKIAEXAMPLE"
    assert S3_SECRET not in got.model_dump_json()
    with platform.session() as s:
        row = s.scalars(select(Datasource)).one()
        assert S3_SECRET not in str(row.public) and S3_SECRET not in (row.secret or "")
        back = datasources.resolve(platform, s, d, ("INPUT",))
    assert isinstance(back, DatasourceConfigS3) and back.s3_secret_access_key == S3_SECRET
    with pytest.raises(NotFound):
        datasources.get(platform, alice, d, "LIGHTLY")


@pytest.mark.parametrize("bad", ["/abs", "../up", "a/../../b", "s3://x", "a/./b", "C:/x"])
def test_local_paths_must_stay_inside_the_mount(platform: Platform, bad: str) -> None:
    alice = user(platform)
    d = datasets.create(platform, alice, DatasetCreateRequest(name="cars"))
    with pytest.raises(Invalid, match="relative"):
        datasources.put(platform, alice, d, DatasourceConfigLocal(full_path=bad))


def test_configs_are_validated_with_the_configs_messages(platform: Platform) -> None:
    alice = user(platform)
    with pytest.raises(Invalid, match=r"n_sampels|n_samples"):
        configs.create(platform, alice, {}, {}, {"n_sampels": 3})
    with pytest.raises(Invalid, match="selection_config is required"):
        configs.create(platform, alice, {}, {}, {})
    assert len(config(platform, alice)) == 24
    # Lightly's client posts camelCase keys; they come back as the configs' snake_case.
    w, lc, sel = configs.from_lightly(
        {
            "docker": {"enableTraining": False},
            "selection": {
                "nSamples": 3,
                "strategies": [
                    {
                        "input": {"type": "EMBEDDINGS"},
                        "strategy": {"type": "DIVERSITY", "stoppingConditionMinimumDistance": 0.1},
                    }
                ],
            },
        }
    )
    assert w == {"enable_training": False} and lc == {}
    assert sel["n_samples"] == 3
    assert sel["strategies"][0]["strategy"]["stopping_condition_minimum_distance"] == 0.1
    configs.create(platform, alice, w, lc, sel)


def test_schedule_needs_input_and_lightly(platform: Platform) -> None:
    alice = user(platform)
    d = datasets.create(platform, alice, DatasetCreateRequest(name="cars"))
    datasources.put(platform, alice, d, DatasourceConfigLocal(purpose="INPUT", full_path="in"))
    with pytest.raises(Unprocessable, match="no LIGHTLY datasource"):
        schedule(platform, alice, d)
    datasources.put(platform, alice, d, DatasourceConfigLocal(purpose="LIGHTLY", full_path="out"))
    assert runs.list_scheduled(platform, alice, d) == []
    s = schedule(platform, alice, d)
    assert [r.state for r in runs.list_scheduled(platform, alice, d)] == ["OPEN"]
    assert runs.list_scheduled(platform, alice, d)[0].id == s


def test_schedule_refuses_a_missing_permission(tmp_path: Path, platform: Platform) -> None:
    # The server sees the LOCAL mounts here: INPUT 'in' does not exist -> canList fails.
    (tmp_path / "mount" / "out").mkdir(parents=True)
    p = Platform(
        Settings(
            home=platform.settings.home,
            database_url=platform.settings.database_url,
            local_root=tmp_path / "mount",
            lightly_root=tmp_path / "mount",
        )
    )
    alice = user(p)
    d = ready_dataset(p, alice)
    with pytest.raises(Unprocessable, match="can_list"):
        schedule(p, alice, d)
    perms = datasources.verify(p, alice, d)
    assert not perms.can_list and perms.can_write and perms.can_overwrite
    assert perms.errors is not None and perms.errors.can_list
    (tmp_path / "mount" / "in").mkdir()
    (tmp_path / "mount" / "in" / "a.png").write_bytes(b"x")
    perms = datasources.verify(p, alice, d)
    assert perms.can_list and perms.can_read and perms.errors is None
    assert not (tmp_path / "mount" / "out" / ".thresher-permission-check").exists()
    schedule(p, alice, d)
    p.close()


def test_claim_picks_priority_then_age_within_labels(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice)
    low = schedule(platform, alice, d, "LOW")
    gpu_high = schedule(platform, alice, d, "HIGH", ["gpu"])
    mid1 = schedule(platform, alice, d, "MID")
    mid2 = schedule(platform, alice, d, "MID")
    critical_big = schedule(platform, alice, d, "CRITICAL", ["gpu", "big"])
    plain = worker(platform, alice, "plain")
    gpu = worker(platform, alice, "gpu-box", ["gpu"])

    def take(w: str) -> str | None:
        c = runs.claim(platform, alice, w)
        return None if c is None else c.scheduled.id

    # Worked out by hand: the plain worker may take only runs with no labels: MID (older
    # first), then LOW; the gpu worker takes HIGH[gpu] first; nobody has the 'big' label.
    assert take(gpu) == gpu_high
    assert take(plain) == mid1
    assert take(plain) == mid2
    assert take(gpu) == low
    assert take(plain) is None and take(gpu) is None
    assert [r.state for r in runs.list_scheduled(platform, alice, d, "OPEN")] == ["OPEN"]
    assert runs.list_scheduled(platform, alice, d, "OPEN")[0].id == critical_big


def test_claimed_run_carries_the_decrypted_datasources(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice)
    sched = schedule(platform, alice, d)
    # Replaced after scheduling (no bucket to check here); the claim hands out the new one.
    datasources.put(
        platform,
        alice,
        d,
        DatasourceConfigS3(
            purpose="LIGHTLY",
            full_path="s3://b/out",
            s3_region="eu-central-1",
            s3_access_key_id="AKIA",
            s3_secret_access_key=S3_SECRET,
        ),
    )
    c = runs.claim(platform, alice, worker(platform, alice))
    assert c is not None
    assert c.scheduled.id == sched and c.scheduled.state == "LOCKED"
    assert c.run.state == "INITIALIZING" and c.selection_config == {"n_samples": 2}
    assert isinstance(c.lightly, DatasourceConfigS3) and c.lightly.s3_secret_access_key == S3_SECRET
    assert c.input.full_path == "in"
    assert runs.get_run_by_scheduled(platform, alice, sched).id == c.run.id


def test_two_workers_never_take_the_same_run(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice)
    scheduled = {schedule(platform, alice, d) for _ in range(12)}
    ws = [worker(platform, alice, f"worker-{i}") for i in range(6)]
    taken: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(ws))

    def loop(w: str) -> None:
        try:
            barrier.wait()
            while (c := runs.claim(platform, alice, w)) is not None:
                taken.append(c.scheduled.id)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=loop, args=(w,)) for w in ws]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(taken) == sorted(scheduled)  # each exactly once
    assert len(runs.list_runs(platform, alice)) == 12


def test_states_end_the_scheduled_run_and_cancel_aborts(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice)
    w = worker(platform, alice)
    s1, s2, s3 = (schedule(platform, alice, d) for _ in range(3))
    assert runs.cancel(platform, alice, d, s3) == "CANCELED"  # OPEN -> CANCELED
    r1 = runs.claim(platform, alice, w)
    assert r1 is not None
    runs.update_state(
        platform, alice, r1.run.id, RunStateUpdate(state="EMBEDDING", message="5 img/s")
    )
    runs.update_state(platform, alice, r1.run.id, RunStateUpdate(state="COMPLETED", message="done"))
    assert runs.get_run(platform, alice, r1.run.id).message == "done"
    assert runs.list_scheduled(platform, alice, d, "DONE")[0].id == s1
    with pytest.raises(Conflict, match="ended"):
        runs.update_state(platform, alice, r1.run.id, RunStateUpdate(state="EMBEDDING"))

    r2 = runs.claim(platform, alice, w)
    assert r2 is not None and r2.scheduled.id == s2
    with pytest.raises(Conflict, match="not OPEN"):
        runs.cancel_open(platform, alice, d, s2)
    assert runs.cancel(platform, alice, d, s2) == "ABORT_REQUESTED"
    with pytest.raises(Conflict) as e:
        runs.update_state(platform, alice, r2.run.id, RunStateUpdate(state="SAMPLING"))
    assert e.value.code == "ABORT_REQUESTED"
    runs.update_state(
        platform, alice, r2.run.id, RunStateUpdate(state="ABORTED", message="cancelled")
    )
    assert runs.get_run(platform, alice, r2.run.id).state == "ABORTED"
    assert runs.claim(platform, alice, w) is None  # s3 was canceled


def test_silent_worker_crashes_its_run(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice)
    w = worker(platform, alice)
    sched = schedule(platform, alice, d)
    c = runs.claim(platform, alice, w)
    assert c is not None
    assert workers.detect_crashes(platform) == 0
    with platform.session() as s:  # the worker was last heard from 2 minutes ago
        s.execute(update(Worker).where(Worker.id == w).values(last_seen_at=1))
    assert workers.detect_crashes(platform) == 1
    run = runs.get_run(platform, alice, c.run.id)
    assert run.state == "CRASHED" and run.message and "stopped responding" in run.message
    assert runs.list_scheduled(platform, alice, d, "DONE")[0].id == sched
    assert workers.list_workers(platform, alice)[0].state == "OFFLINE"
    # A new worker can run a new run.
    schedule(platform, alice, d)
    assert runs.claim(platform, alice, worker(platform, alice, "gpu-2")) is not None


def test_artifacts_read_urls_are_signed_and_expire(platform: Platform, tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    (mount / "out" / ".lightly" / "runs").mkdir(parents=True)
    p = Platform(
        Settings(
            home=platform.settings.home,
            database_url=platform.settings.database_url,
            lightly_root=mount,
        )
    )
    alice, bob = user(p), user(p, "bob@example.com")
    d = ready_dataset(p, alice)
    c = runs.claim(p, alice, worker(p, alice)) if schedule(p, alice, d) else None
    assert c is not None
    rel = f".lightly/runs/{c.run.id}/log.txt"
    (mount / "out" / rel).parent.mkdir(parents=True)
    (mount / "out" / rel).write_text("the log\n")
    with pytest.raises(Invalid):
        runs.add_artifact(
            p,
            alice,
            c.run.id,
            ArtifactCreateRequest(type="LOG", file_name="log.txt", storage_location="../x"),
        )
    a = runs.add_artifact(
        p,
        alice,
        c.run.id,
        ArtifactCreateRequest(type="LOG", file_name="log.txt", storage_location=rel),
    )
    runs.update_state(p, alice, c.run.id, RunStateUpdate(state="FAILED", message="boom"))
    run = runs.get_run(p, alice, c.run.id)
    assert run.artifacts is not None and run.artifacts[0].file_name == "log.txt"
    with pytest.raises(NotFound):  # a stranger: the run does not exist to bob
        runs.read_url(p, bob, c.run.id, a, "http://x")
    url = runs.read_url(p, alice, c.run.id, a, "http://server:8360/")
    assert url.startswith(f"http://server:8360/v1/artifacts/{a}?expires=")
    query = dict(kv.split("=") for kv in url.split("?")[1].split("&"))
    name, size, chunks = runs.open_artifact(p, a, int(query["expires"]), query["signature"])
    assert (name, size, b"".join(chunks)) == ("log.txt", 8, b"the log\n")
    with pytest.raises(Forbidden, match="signature"):
        runs.open_artifact(p, a, int(query["expires"]) + 1, query["signature"])
    old = 1000
    with pytest.raises(Forbidden, match="expired"):
        runs.open_artifact(p, a, old, p.secrets.sign(a, old))
    p.close()


def test_deleting_a_dataset_cancels_its_waiting_runs(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice)
    schedule(platform, alice, d)
    datasets.delete(platform, alice, d)
    with pytest.raises(NotFound):
        datasets.get(platform, alice, d)
    assert runs.claim(platform, alice, worker(platform, alice)) is None
