"""Samples and tags: what a finished run adds, Lightly's bitmask, created and deleted tags."""

from __future__ import annotations

import pytest

from tests.platform.helpers import ready_dataset, schedule, user, worker
from thresher.platform import runs, tags
from thresher.platform.core import Platform
from thresher.platform.errors import Conflict, Forbidden, Invalid, NotFound
from thresher.platform.models import User
from thresher.wire import TagCreateRequest


def _run(platform: Platform, u: User, d: str, w: str) -> str:
    schedule(platform, u, d)
    claimed = runs.claim(platform, u, w)
    assert claimed is not None
    return claimed.run.id


def _names(platform: Platform, u: User, d: str, bit_mask_data: str) -> list[str]:
    order = tags.mappings(platform, u, d, "fileName")
    return [order[k] for k in tags.from_bitmask(bit_mask_data)]


@pytest.mark.parametrize("bits", [[], [0], [3], [0, 1, 2], [1, 64, 200]])
def test_bitmask_round_trip(bits: list[int]) -> None:
    mask = tags.to_bitmask(bits)
    assert mask.startswith("0x") and mask == hex(int(mask, 16))
    assert tags.from_bitmask(mask) == bits


def test_runs_add_samples_in_order_and_make_tags(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice)
    w = worker(platform, alice)
    r1 = _run(platform, alice, d, w)
    t1 = tags.record_run_selection(platform, alice, r1, ["c.png", "a.png", "b.png", "a.png"])
    assert tags.mappings(platform, alice, d, "fileName") == ["c.png", "a.png", "b.png"]
    assert tags.record_run_selection(platform, alice, r1, ["x.png"]) == t1  # idempotent
    (initial,) = tags.list_tags(platform, alice, d)
    assert (initial.name, initial.prev_tag_id, initial.run_id) == ("initial-tag", None, r1)
    assert (initial.bit_mask_data, initial.tot_size) == ("0x7", 3)
    assert initial.wire()["prevTagId"] is None  # required, nullable: sent as null

    r2 = _run(platform, alice, d, w)
    t2 = tags.record_run_selection(platform, alice, r2, ["d.png", "a.png"])
    order = tags.mappings(platform, alice, d, "fileName")
    assert order == ["c.png", "a.png", "b.png", "d.png"]  # new samples appended, order stable
    assert tags.mappings(platform, alice, d, "fileName", page_size=2, page_offset=2) == order[2:]
    assert len(tags.mappings(platform, alice, d, "_id")) == 4
    second = tags.get_tag(platform, alice, d, t2)
    assert second.name == r2 and second.run_id == r2 and second.prev_tag_id == initial.id
    assert sorted(_names(platform, alice, d, second.bit_mask_data)) == ["a.png", "d.png"]
    assert second.tot_size == 4
    initial = tags.get_tag(platform, alice, d, t1)
    assert _names(platform, alice, d, initial.bit_mask_data) == order  # the root holds all
    assert [t.id for t in tags.run_tags(platform, alice, r2)] == [t2]
    assert [t.name for t in tags.list_tags(platform, alice, d)] == [r2, "initial-tag"]


def test_create_and_delete_tags(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice)
    r = _run(platform, alice, d, worker(platform, alice))
    initial = tags.record_run_selection(platform, alice, r, ["a.png", "b.png", "c.png"])
    req = TagCreateRequest(name="my-tag", prev_tag_id=initial, bit_mask_data="0x5", tot_size=3)
    t = tags.create_tag(platform, alice, d, req)
    assert _names(platform, alice, d, tags.get_tag(platform, alice, d, t).bit_mask_data) == [
        "a.png",
        "c.png",
    ]
    with pytest.raises(Conflict) as e:
        tags.create_tag(platform, alice, d, req)
    assert e.value.code == "TAG_NAME_EXISTS"
    with pytest.raises(Invalid, match="beyond"):
        tags.create_tag(
            platform, alice, d, req.model_copy(update={"name": "x1x", "bit_mask_data": "0x8"})
        )
    with pytest.raises(Invalid) as e2:
        tags.create_tag(
            platform, alice, d, req.model_copy(update={"name": "x2x", "prev_tag_id": "b" * 24})
        )
    assert e2.value.code == "TAG_PREVTAG_NOT_IN_DATASET"
    with pytest.raises(Invalid):
        tags.mappings(platform, alice, d, "thumbName")
    bob = user(platform, "bob@example.com")
    for call in (
        lambda: tags.list_tags(platform, bob, d),
        lambda: tags.get_tag(platform, bob, d, t),
        lambda: tags.delete_tag(platform, bob, d, t),
        lambda: tags.mappings(platform, bob, d, "fileName"),
        lambda: tags.run_tags(platform, bob, r),
    ):
        with pytest.raises(NotFound):  # a stranger: as if the dataset did not exist
            call()
    with pytest.raises(Forbidden):  # the worker's route: the run is not his worker's
        tags.record_run_selection(platform, bob, r, ["z.png"])
    tags.delete_tag(platform, alice, d, t)
    with pytest.raises(NotFound) as e3:
        tags.get_tag(platform, alice, d, t)
    assert e3.value.code == "TAG_UNKNOWN"
    assert len(tags.mappings(platform, alice, d, "fileName")) == 3  # the samples stay
