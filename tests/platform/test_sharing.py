"""Sharing: the owner sets who may work with a dataset; every rule in ``access.dataset_for``.

alice owns the dataset, bob is the collaborator, carol a stranger. Each test runs on SQLite and
on PostgreSQL (the ``platform`` fixture).
"""

from __future__ import annotations

from typing import get_args

import pytest

from tests.platform.helpers import config, ready_dataset, schedule, user, worker
from thresher.platform import datasets, datasources, runs, sharing, tags
from thresher.platform.access import Action, dataset_for
from thresher.platform.core import Platform
from thresher.platform.errors import Forbidden, Invalid, NotFound
from thresher.platform.models import User
from thresher.wire import (
    ArtifactCreateRequest,
    DatasourceConfigLocal,
    DockerRunScheduledCreateRequest,
    TagCreateRequest,
)

ACTIONS: tuple[Action, ...] = get_args(Action)


def _people(p: Platform) -> tuple[User, User, User]:
    return user(p), user(p, "bob@example.com"), user(p, "carol@example.com")


def _allowed(p: Platform, u: User, d: str, action: Action) -> bool:
    with p.session() as s:
        try:
            dataset_for(s, u, d, action)
        except (Forbidden, NotFound):
            return False
    return True


def test_who_may_do_what(platform: Platform) -> None:
    alice, bob, carol = _people(platform)
    d = ready_dataset(platform, alice)
    sharing.share_only_with(platform, alice, d, ["bob@example.com"])
    # The table of docs/platform.md, "Sharing and who may do what".
    expected = {
        "alice": dict.fromkeys(ACTIONS, True),
        "bob": {a: a != "own" for a in ACTIONS},
        "carol": dict.fromkeys(ACTIONS, False),
    }
    got = {
        u.email.split("@")[0]: {a: _allowed(platform, u, d, a) for a in ACTIONS}
        for u in (alice, bob, carol)
    }
    assert got == expected
    with platform.session() as s, pytest.raises(NotFound) as e:
        dataset_for(s, bob, "0" * 24, "read")
    assert e.value.code == "DATASET_UNKNOWN"
    with platform.session() as s, pytest.raises(Forbidden, match="only its owner"):
        dataset_for(s, bob, d, "own")
    # A stranger is told what an unknown id is told: ids cannot be found by probing.
    with platform.session() as s, pytest.raises(NotFound, match="share_dataset_only_with"):
        dataset_for(s, carol, d, "read")


def test_share_replaces_the_list_and_empty_revokes(platform: Platform) -> None:
    alice, bob, carol = _people(platform)
    d = ready_dataset(platform, alice)
    assert sharing.shared_users(platform, alice, d) == []
    assert sharing.access_configs(platform, alice, d) == []
    cid = sharing.share_only_with(platform, alice, d, ["BOB@example.com", "bob@example.com"])
    assert sharing.shared_users(platform, alice, d) == ["bob@example.com"]  # stored spelling
    # The seed's second step: read, append, share again.
    emails = sharing.shared_users(platform, alice, d)
    emails.append("carol@example.com")
    assert sharing.share_only_with(platform, alice, d, emails) == cid
    assert sharing.shared_users(platform, alice, d) == ["bob@example.com", "carol@example.com"]
    (cfg,) = sharing.access_configs(platform, alice, d)
    assert (cfg.id, cfg.owner, cfg.access_type, cfg.teams) == (cid, alice.id, "WRITE", [])
    sharing.share_only_with(platform, alice, d, ["carol@example.com"])  # replaces: bob is out
    assert sharing.shared_users(platform, alice, d) == ["carol@example.com"]
    with pytest.raises(NotFound):
        datasets.get(platform, bob, d)
    assert datasets.get(platform, carol, d).id == d
    sharing.share_only_with(platform, alice, d, [])
    assert sharing.shared_users(platform, alice, d) == []
    with pytest.raises(NotFound):
        datasets.get(platform, carol, d)


def test_only_the_owner_shares_and_reads_the_list(platform: Platform) -> None:
    alice, bob, carol = _people(platform)
    d = ready_dataset(platform, alice)
    sharing.share_only_with(platform, alice, d, ["bob@example.com"])
    for u, refusal in ((bob, Forbidden), (carol, NotFound)):  # carol: no such dataset to her
        with pytest.raises(refusal):
            sharing.share_only_with(platform, u, d, ["carol@example.com"])
        with pytest.raises(refusal):
            sharing.shared_users(platform, u, d)
    with pytest.raises(NotFound):
        sharing.share_only_with(platform, alice, "0" * 24, [])
    assert sharing.shared_users(platform, alice, d) == ["bob@example.com"]


@pytest.mark.parametrize(
    ("emails", "match"),
    [
        (["nobody@example.com", "bob@example.com"], r"nobody@example.com.*thresher user add"),
        (["not-an-email"], "Not an e-mail address: 'not-an-email'"),
        (["alice@example.com"], "owner's own e-mail"),
    ],
)
def test_bad_emails_are_refused_and_nothing_changes(
    platform: Platform, emails: list[str], match: str
) -> None:
    alice, _, _ = _people(platform)
    d = ready_dataset(platform, alice)
    sharing.share_only_with(platform, alice, d, ["carol@example.com"])
    with pytest.raises(Invalid, match=match):
        sharing.share_only_with(platform, alice, d, emails)
    assert sharing.shared_users(platform, alice, d) == ["carol@example.com"]


def test_teams_are_refused(platform: Platform) -> None:
    alice, _, _ = _people(platform)
    d = ready_dataset(platform, alice)
    with pytest.raises(Invalid, match="no teams"):
        sharing.share_only_with(platform, alice, d, [], teams=["ml-team"])


def test_listing_follows_lightlys_shared_flag(platform: Platform) -> None:
    alice, bob, _ = _people(platform)
    mine = ready_dataset(platform, alice, "alices")
    bobs = ready_dataset(platform, bob, "bobs")
    sharing.share_only_with(platform, alice, mine, ["bob@example.com"])

    def ids(shared: bool | None, **kw: object) -> set[str]:
        return {x.id for x in datasets.list_datasets(platform, bob, shared=shared, **kw)}  # type: ignore[arg-type]

    assert ids(False) == {bobs}
    assert ids(True) == {mine}
    assert ids(None) == {mine, bobs}
    assert ids(True, name="alices") == {mine}
    assert ids(True, team=True) == set()
    (shared,) = datasets.list_datasets(platform, bob, shared=True)
    assert shared.access_type == "WRITE" and shared.user_id == alice.id
    assert datasets.get(platform, bob, mine).access_type == "WRITE"
    assert datasets.get(platform, alice, mine).access_type is None
    # The owner sees their own dataset as their own, never as shared with them.
    assert {x.id for x in datasets.list_datasets(platform, alice, shared=True)} == set()
    sharing.share_only_with(platform, alice, mine, [])
    assert ids(True) == set() and ids(None) == {bobs}


def test_a_collaborator_works_with_the_dataset_but_does_not_own_it(platform: Platform) -> None:
    alice, bob, carol = _people(platform)
    d = ready_dataset(platform, alice)
    w = worker(platform, alice)
    schedule(platform, alice, d)
    claimed = runs.claim(platform, alice, w)
    assert claimed is not None
    r = claimed.run.id
    first = tags.record_run_selection(platform, alice, r, ["a.png", "b.png"])
    sharing.share_only_with(platform, alice, d, ["bob@example.com"])

    # read
    assert datasources.get(platform, bob, d, "INPUT").full_path == "in"
    assert [t.id for t in tags.list_tags(platform, bob, d)] == [first]
    assert tags.mappings(platform, bob, d, "fileName") == ["a.png", "b.png"]
    assert [t.id for t in tags.run_tags(platform, bob, r)] == [first]
    assert runs.get_run(platform, bob, r).id == r
    assert [x.id for x in runs.list_runs(platform, bob)] == [r]
    assert [x.id for x in runs.list_runs(platform, bob, d)] == [r]
    assert runs.get_run_by_scheduled(platform, bob, claimed.scheduled.id).id == r
    # tag
    req = TagCreateRequest(name="bobs-tag", prev_tag_id=first, bit_mask_data="0x1", tot_size=2)
    t = tags.create_tag(platform, bob, d, req)
    tags.delete_tag(platform, bob, d, t)
    # download: a read URL for an artifact
    a = runs.add_artifact(
        platform,
        alice,
        r,
        ArtifactCreateRequest(type="LOG", file_name="log.txt", storage_location="x/log.txt"),
    )
    assert "signature=" in runs.read_url(platform, bob, r, a, "http://x")

    # own: refused
    for call in (
        lambda: datasets.delete(platform, bob, d),
        lambda: datasources.put(
            platform, bob, d, DatasourceConfigLocal(purpose="INPUT", full_path="x")
        ),
        lambda: sharing.share_only_with(platform, bob, d, []),
    ):
        with pytest.raises(Forbidden, match="only its owner"):
            call()
    # The worker routes stay the worker's: bob reports nothing about alice's worker's run.
    with pytest.raises(Forbidden):
        tags.record_run_selection(platform, bob, r, ["z.png"])
    # carol: nothing
    for refused in (
        lambda: datasets.get(platform, carol, d),
        lambda: tags.list_tags(platform, carol, d),
        lambda: runs.get_run(platform, carol, r),
        lambda: runs.read_url(platform, carol, r, a, "http://x"),
        lambda: runs.get_run_by_scheduled(platform, carol, claimed.scheduled.id),
    ):
        with pytest.raises(NotFound):  # the answer an unknown id gets
            refused()
    assert runs.list_runs(platform, carol) == []

    # Revoked: bob is a stranger again.
    sharing.share_only_with(platform, alice, d, [])
    for revoked in (
        lambda: datasets.get(platform, bob, d),
        lambda: runs.get_run(platform, bob, r),
        lambda: runs.read_url(platform, bob, r, a, "http://x"),
        lambda: tags.list_tags(platform, bob, d),
    ):
        with pytest.raises(NotFound):
            revoked()
    assert runs.list_runs(platform, bob) == []


def test_a_collaborators_run_is_taken_by_the_owners_workers(platform: Platform) -> None:
    alice, bob, _ = _people(platform)
    d = ready_dataset(platform, alice)
    alices_worker = worker(platform, alice)
    bobs_worker = worker(platform, bob, "bobs-gpu")
    sharing.share_only_with(platform, alice, d, ["bob@example.com"])
    bobs_config = config(platform, bob)
    req = DockerRunScheduledCreateRequest(config_id=bobs_config)
    # A config must be the scheduler's own: bob cannot use alice's, nor alice bob's.
    with pytest.raises(Forbidden):
        runs.schedule(
            platform, bob, d, DockerRunScheduledCreateRequest(config_id=config(platform, alice))
        )
    sid = runs.schedule(platform, bob, d, req)
    (listed,) = runs.list_scheduled(platform, alice, d)
    assert (listed.id, listed.user_id) == (sid, bob.id)
    # bob's worker takes no run of alice's dataset: the datasources' credentials are hers.
    assert runs.claim(platform, bob, bobs_worker) is None
    claimed = runs.claim(platform, alice, alices_worker)
    assert claimed is not None and claimed.scheduled.id == sid
    assert claimed.run.config_id == bobs_config
    assert runs.get_run_by_scheduled(platform, bob, sid).id == claimed.run.id
    # Whoever may schedule may cancel: bob cancels, alice's worker is asked to abort.
    assert runs.cancel(platform, bob, d, sid) == "ABORT_REQUESTED"


def test_cancel_checks_the_scheduled_run_is_of_the_dataset(platform: Platform) -> None:
    alice, bob, _ = _people(platform)
    d = ready_dataset(platform, alice, "shared-one")
    other = ready_dataset(platform, alice, "private-one")
    sid = schedule(platform, alice, other)
    sharing.share_only_with(platform, alice, d, ["bob@example.com"])
    # bob may schedule on d, but must not reach other's runs through d's id.
    for cancel in (runs.cancel, runs.cancel_open):
        with pytest.raises(NotFound) as e:
            cancel(platform, bob, d, sid)
        assert e.value.code == "DOCKER_WORKER_SCHEDULE_UNKNOWN"
    assert runs.list_scheduled(platform, alice, other)[0].state == "OPEN"


def test_runs_of_a_deleted_dataset_stay_with_the_owner(platform: Platform) -> None:
    alice, bob, _ = _people(platform)
    d = ready_dataset(platform, alice)
    sharing.share_only_with(platform, alice, d, ["bob@example.com"])
    schedule(platform, bob, d)
    claimed = runs.claim(platform, alice, worker(platform, alice))
    assert claimed is not None
    datasets.delete(platform, alice, d)
    assert [x.id for x in runs.list_runs(platform, alice)] == [claimed.run.id]
    assert runs.get_run(platform, alice, claimed.run.id).id == claimed.run.id
    assert runs.list_runs(platform, bob) == []
    with pytest.raises(NotFound):
        runs.get_run(platform, bob, claimed.run.id)
