"""Exports, sample read URLs and embeddings in the service layer (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.platform.helpers import ready_dataset, schedule, user, worker
from thresher.platform import datasets, embeddings, exports, runs, samples, tags
from thresher.platform.core import Platform
from thresher.platform.errors import Forbidden, Invalid, NotFound, Unprocessable
from thresher.platform.models import Sample, User
from thresher.wire import DatasetCreateRequest, RunStateUpdate

BASE = "http://testserver/"


@dataclasses.dataclass
class Planted:
    user: User
    dataset: str
    initial: str  # initial-tag: c, a, b, d (sample order)
    second: str  # the second run's tag: a, d
    runs: list[str]
    mount: Path


def _run(p: Platform, u: User, d: str, w: str, picks: list[str]) -> tuple[str, str]:
    schedule(p, u, d)
    claimed = runs.claim(p, u, w)
    assert claimed is not None
    tag = tags.record_run_selection(p, u, claimed.run.id, picks)
    runs.update_state(p, u, claimed.run.id, RunStateUpdate(state="COMPLETED"))
    return claimed.run.id, tag


@pytest.fixture
def planted(platform: Platform, tmp_path: Path) -> Planted:
    """Two completed runs; the server sees the mount (INPUT ``in``, LIGHTLY ``out``)."""
    mount = tmp_path / "mount"
    (mount / "in" / "sub").mkdir(parents=True)
    for name in ("c.png", "a.png", "b.png", "sub/d.png"):
        (mount / "in" / name).write_bytes(b"\x89PNG original bytes of " + name.encode())
    platform.settings = dataclasses.replace(platform.settings, local_root=mount, lightly_root=mount)
    u = user(platform)
    d = ready_dataset(platform, u)
    w = worker(platform, u)
    r1, initial = _run(platform, u, d, w, ["c.png", "a.png", "b.png"])
    time.sleep(0.002)  # distinct created_at, so "latest" is well defined
    r2, second = _run(platform, u, d, w, ["sub/d.png", "a.png"])
    return Planted(u, d, initial, second, [r1, r2], mount)


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["publicToken"][0]


def _sample_id(url: str) -> str:
    return urlsplit(url).path.split("/samples/")[1].split("/")[0]


def _read(p: Platform, d: str, url: str) -> bytes:
    _, _, chunks = samples.open_original(p, d, _sample_id(url), _token(url))
    return b"".join(chunks)


def test_filenames_in_sample_order_and_paged(platform: Platform, planted: Planted) -> None:
    u, d = planted.user, planted.dataset
    everything = ["c.png", "a.png", "b.png", "sub/d.png"]
    assert exports.filenames(platform, u, d, planted.initial, BASE) == everything
    # The second run picked d then a; the export follows the samples' order, as Lightly's.
    assert exports.filenames(platform, u, d, planted.second, BASE) == ["a.png", "sub/d.png"]
    pages = [
        exports.filenames(platform, u, d, planted.initial, BASE, page=exports.Page(3, off))
        for off in (0, 3, 6)
    ]
    assert pages == [everything[:3], everything[3:], []]
    full = exports.filenames(platform, u, d, planted.initial, BASE, "DATASOURCE_FULL")
    assert full == [str(planted.mount / "in" / n) for n in everything]
    with pytest.raises(Invalid, match="fileNameFormat"):
        exports.filenames(platform, u, d, planted.initial, BASE, "THUMBNAIL")
    with pytest.raises(Invalid, match="pageSize"):
        exports.filenames(platform, u, d, planted.initial, BASE, page=exports.Page(0, 0))


def test_read_urls_serve_the_originals_unchanged(platform: Platform, planted: Planted) -> None:
    u, d = planted.user, planted.dataset
    urls = exports.filenames(platform, u, d, planted.initial, BASE, "REDIRECTED_READ_URL")
    assert all(
        x.startswith(f"http://testserver/v1/datasets/{d}/samples/") and "readurlRedirect" in x
        for x in urls
    )
    for name, url in zip(["c.png", "a.png", "b.png", "sub/d.png"], urls, strict=True):
        assert _read(platform, d, url) == (planted.mount / "in" / name).read_bytes()
    rows = exports.filenames_and_read_urls(platform, u, d, planted.second, BASE)
    assert [r.wire()["fileName"] for r in rows] == ["a.png", "sub/d.png"]
    assert rows[1].datasource_url == str(planted.mount / "in" / "sub" / "d.png")
    assert _read(platform, d, rows[1].read_url).startswith(b"\x89PNG original bytes of sub/d")


def test_label_tool_formats(platform: Platform, planted: Planted) -> None:
    u, d = planted.user, planted.dataset
    tasks = [t.wire() for t in exports.label_studio_tasks(platform, u, d, planted.second, BASE)]
    assert [(t["id"], t["data"]["lightlyFileName"]) for t in tasks] == [
        (1, "a.png"),  # ids are the samples' positions: stable across pages and exports
        (3, "sub/d.png"),
    ]
    assert _read(platform, d, tasks[0]["data"]["image"]).endswith(b"a.png")
    v3 = [r.wire() for r in exports.label_box_data_rows(platform, u, d, planted.second, BASE)]
    assert [sorted(r) for r in v3] == [["externalId", "imageUrl"]] * 2
    v4 = [r.wire() for r in exports.label_box_v4_data_rows(platform, u, d, planted.second, BASE)]
    assert [sorted(r) for r in v4] == [["global_key", "media_type", "row_data"]] * 2
    assert [(r["global_key"], r["media_type"]) for r in v4] == [
        ("a.png", "IMAGE"),
        ("sub/d.png", "IMAGE"),
    ]


def test_sample_read_url_signature_expiry_and_scope(platform: Platform, planted: Planted) -> None:
    u, d = planted.user, planted.dataset
    ids = tags.mappings(platform, u, d, "_id")
    url = samples.read_url(platform, u, d, ids[0], BASE)
    assert _read(platform, d, url) == (planted.mount / "in" / "c.png").read_bytes()
    token = _token(url)
    with pytest.raises(Forbidden, match="signature"):  # another sample's token
        samples.open_original(platform, d, ids[1], token)
    expires, _, sig = token.partition(".")
    with pytest.raises(Forbidden, match="signature"):  # a longer lifetime, same signature
        samples.open_original(platform, d, ids[0], f"{int(expires) + 60}.{sig}")
    with pytest.raises(Forbidden, match="malformed"):
        samples.open_original(platform, d, ids[0], "garbage")
    with pytest.raises(NotFound):  # the right token, the wrong dataset
        samples.open_original(platform, "0" * 24, ids[0], token)
    short = samples.read_url(platform, u, d, ids[0], BASE, expires_in=1)
    assert int(_token(short).split(".")[0]) <= time.time() + 1
    time.sleep(2.1)
    with pytest.raises(Forbidden, match="expired"):
        samples.open_original(platform, d, ids[0], _token(short))
    with pytest.raises(Invalid, match="expiresIn"):
        samples.read_url(platform, u, d, ids[0], BASE, expires_in=0)
    with pytest.raises(NotFound):
        samples.read_url(platform, u, d, "0" * 24, BASE)
    # The lifetime setting is the default.
    platform.settings = dataclasses.replace(platform.settings, read_url_seconds=100.0)
    default = samples.read_url(platform, u, d, ids[0], BASE)
    assert abs(int(_token(default).split(".")[0]) - (time.time() + 100)) < 5


def test_originals_that_cannot_be_served(platform: Platform, planted: Planted) -> None:
    u, d = planted.user, planted.dataset
    ids = tags.mappings(platform, u, d, "_id")
    (planted.mount / "in" / "b.png").unlink()
    with pytest.raises(NotFound, match=r"b\.png is missing"):
        _read(platform, d, samples.read_url(platform, u, d, ids[2], BASE))
    platform.settings = dataclasses.replace(platform.settings, local_root=None)
    with pytest.raises(Unprocessable, match="THRESHER_LOCAL_ROOT"):
        _read(platform, d, samples.read_url(platform, u, d, ids[0], BASE))


def test_a_sample_name_outside_the_datasource_is_never_read(
    platform: Platform, planted: Planted
) -> None:
    u, d = planted.user, planted.dataset
    (planted.mount / "secret.txt").write_text("outside INPUT")
    w = worker(platform, u, "gpu-2")
    # A worker's selection naming such files is refused when it is reported ...
    with pytest.raises(Invalid, match="not a path relative to the INPUT datasource"):
        _run(platform, u, d, w, ["../secret.txt", "/etc/hostname"])
    # ... and rows that hold them anyway (written before that check) are never read.
    ids = tags.mappings(platform, u, d, "_id")[:2]
    with platform.session() as s:
        for sample_id, name in zip(ids, ["../secret.txt", "/etc/hostname"], strict=True):
            row = s.get(Sample, sample_id)
            assert row is not None
            row.file_name = name
    for sample_id in ids:
        with pytest.raises(Invalid, match="not a plain relative path"):
            _read(platform, d, samples.read_url(platform, u, d, sample_id, BASE))


def test_embeddings_of_completed_runs(platform: Platform, planted: Planted) -> None:
    u, d = planted.user, planted.dataset
    listed = embeddings.list_embeddings(platform, u, d)
    assert [e.id for e in listed] == planted.runs
    assert all(e.name.startswith("default_") and e.is_processed for e in listed)
    latest = listed[-1]
    csv = planted.mount / "out" / ".lightly" / "runs" / latest.id / "embeddings.csv"
    csv.parent.mkdir(parents=True)
    csv.write_bytes(b"filenames,embedding_0,labels\na.png,0.5,0\n")
    url = embeddings.read_url(platform, u, d, latest.id, BASE)
    name, size, chunks = embeddings.open_csv(platform, d, latest.id, _token(url))
    assert b"".join(chunks) == csv.read_bytes() and size == csv.stat().st_size
    assert name == latest.name + ".csv"
    with pytest.raises(Forbidden):  # a sample's token does not open embeddings
        embeddings.open_csv(
            platform, d, latest.id, _token(samples.signed_url(platform, d, latest.id, BASE))
        )
    with pytest.raises(NotFound, match="missing"):
        first = embeddings.read_url(platform, u, d, listed[0].id, BASE)
        embeddings.open_csv(platform, d, listed[0].id, _token(first))
    with pytest.raises(NotFound, match="get_all_embedding_data"):
        embeddings.read_url(platform, u, d, "0" * 24, BASE)


def test_only_those_allowed_may_export_or_download(platform: Platform, planted: Planted) -> None:
    u, d = planted.user, planted.dataset
    bob = user(platform, "bob@example.com")
    sample_id = tags.mappings(platform, u, d, "_id")[0]
    for call in (
        lambda: exports.filenames(platform, bob, d, planted.initial, BASE),
        lambda: exports.label_studio_tasks(platform, bob, d, planted.initial, BASE),
        lambda: exports.label_box_v4_data_rows(platform, bob, d, planted.initial, BASE),
        lambda: samples.read_url(platform, bob, d, sample_id, BASE),
        lambda: embeddings.list_embeddings(platform, bob, d),
        lambda: embeddings.read_url(platform, bob, d, planted.runs[0], BASE),
    ):
        with pytest.raises(NotFound):  # a stranger is told the dataset does not exist
            call()
    other = datasets.create(platform, u, DatasetCreateRequest(name="other"))
    with pytest.raises(NotFound) as e:  # a tag of another dataset
        exports.filenames(platform, u, other, planted.initial, BASE)
    assert e.value.code == "TAG_UNKNOWN"
    with pytest.raises(NotFound):  # a sample of another dataset
        samples.read_url(platform, u, other, sample_id, BASE)
