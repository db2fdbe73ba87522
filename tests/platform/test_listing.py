"""Datasource listing and ``processedUntilTimestamp`` in the service layer (no HTTP).

alice owns the dataset, bob is the collaborator, carol a stranger. The datasources are LOCAL
folders the "server" sees (``local_root``/``lightly_root``); every test runs on SQLite and on
PostgreSQL (the ``platform`` fixture).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.platform.helpers import ready_dataset, user
from thresher.platform import datasets, listing, sharing
from thresher.platform.core import Platform
from thresher.platform.errors import Forbidden, Invalid, NotFound, Unprocessable
from thresher.platform.models import User

T0 = 1_700_000_000  # a file's last-modified time (Unix seconds)


@pytest.fixture
def seen(platform: Platform, tmp_path: Path) -> Iterator[Platform]:
    """The same database, with a server that sees the workers' mount (``tmp_path/mnt``)."""
    mnt = tmp_path / "mnt"
    (mnt / "in").mkdir(parents=True)
    (mnt / "out").mkdir(parents=True)
    p = Platform(replace(platform.settings, local_root=mnt, lightly_root=mnt))
    yield p
    p.close()


def _touch(path: Path, when: int, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (when, when))


def _mnt(p: Platform) -> Path:
    assert p.settings.local_root is not None
    return p.settings.local_root


def _all(
    p: Platform, u: User, d: str, kind: listing.Kind = "samples", shards: int = 1, **kw: object
) -> list[str]:
    """Every name of a listing, following each shard's cursors (as Lightly's client does)."""
    dnc = listing.divide_and_conquer(p, u, d, kind, dnc_shards=shards, **kw)  # type: ignore[arg-type]
    names: list[str] = []
    for cursor in dnc.cursors:
        while True:
            page = listing.list_page(p, u, d, kind, "http://testserver", cursor=cursor)
            assert len(page.data) <= listing.PAGE_SIZE
            names += [row.file_name for row in page.data]
            if not page.has_more:
                break
            cursor = page.cursor
    return names


def test_shards_and_pages_cover_every_file_once(
    seen: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "PAGE_SIZE", 4)
    alice = user(seen)
    d = ready_dataset(seen, alice)
    names = sorted([f"img_{i:02d}.png" for i in range(23)] + ["sub/deep/a.JPG"])
    for n in names:
        _touch(_mnt(seen) / "in" / n, T0)
    _touch(_mnt(seen) / "in" / "notes.txt", T0)  # not an image
    _touch(_mnt(seen) / "in" / ".lightly" / "x.png", T0)  # thresher's own folder
    for shards in (1, 3, 7):
        got = _all(seen, alice, d, shards=shards)
        assert sorted(got) == names, shards
        assert len(got) == len(set(got))
    # The shards split the work: none is empty here, and each is in name order.
    for cursor in listing.divide_and_conquer(seen, alice, d, "samples", dnc_shards=3).cursors:
        part = [
            r.file_name
            for r in listing.list_page(seen, alice, d, "samples", "h", cursor=cursor).data
        ]
        assert part and part == sorted(part)
    # Without divide and conquer: one shard, same answer, in name order.
    page = listing.list_page(seen, alice, d, "samples", "http://h")
    assert [r.file_name for r in page.data] == names[:4] and page.has_more


def test_pages_survive_a_lost_listing(seen: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cursor whose in-memory listing is gone (a restart, another process) lists again."""
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    alice = user(seen)
    d = ready_dataset(seen, alice)
    for i in range(5):
        _touch(_mnt(seen) / "in" / f"{i}.png", T0)
    [cursor] = listing.divide_and_conquer(seen, alice, d, "samples", dnc_shards=1).cursors
    first = listing.list_page(seen, alice, d, "samples", "http://h", cursor=cursor)
    listing._cache.clear()
    rest = listing.list_page(seen, alice, d, "samples", "http://h", cursor=first.cursor)
    assert [r.file_name for r in first.data + rest.data] == ["0.png", "1.png", "2.png", "3.png"]
    assert rest.has_more


def test_from_and_to_filter_by_last_modified_time(seen: Platform) -> None:
    alice = user(seen)
    d = ready_dataset(seen, alice)
    for i, when in enumerate((T0 - 10, T0, T0 + 5, T0 + 10)):
        _touch(_mnt(seen) / "in" / f"{i}.png", when)
    assert _all(seen, alice, d, from_=T0, to=T0 + 5) == ["1.png", "2.png"]  # both inclusive
    assert _all(seen, alice, d, from_=T0 + 1) == ["2.png", "3.png"]  # to: now
    assert _all(seen, alice, d) == ["0.png", "1.png", "2.png", "3.png"]
    assert _all(seen, alice, d, to=T0 - 11) == []
    with pytest.raises(Invalid, match="Unix seconds"):
        _all(seen, alice, d, from_=-1)


def test_relevant_filenames_file(seen: Platform) -> None:
    alice = user(seen)
    d = ready_dataset(seen, alice)
    for n in ("a.png", "b.png", "sub/c.png", "sub/d.png"):
        _touch(_mnt(seen) / "in" / n, T0)
    _touch(_mnt(seen) / "out" / ".lightly" / "relevant.txt", T0, b"a.png\nsub/*\n")
    got = _all(seen, alice, d, shards=2, relevant_filenames_file_name=".lightly/relevant.txt")
    assert sorted(got) == ["a.png", "sub/c.png", "sub/d.png"]
    with pytest.raises(Invalid, match=r"missing\.txt"):
        _all(seen, alice, d, relevant_filenames_file_name="missing.txt")
    with pytest.raises(Invalid, match="plain relative path"):
        _all(seen, alice, d, relevant_filenames_file_name="../etc/passwd")


def test_predictions_and_metadata(seen: Platform) -> None:
    alice = user(seen)
    d = ready_dataset(seen, alice)
    out = _mnt(seen) / "out" / ".lightly"
    for rel in (
        "predictions/det/schema.json",
        "predictions/det/a.json",
        "predictions/det/sub/b.json",
        "predictions/seg/a.json",
        "metadata/schema.json",
        "metadata/a.json",
        "embeddings/e.csv",
    ):
        _touch(out / rel, T0)
    assert sorted(_all(seen, alice, d, "predictions", shards=2, task_name="det")) == [
        ".lightly/predictions/det/a.json",
        ".lightly/predictions/det/schema.json",
        ".lightly/predictions/det/sub/b.json",
    ]
    assert sorted(_all(seen, alice, d, "metadata")) == [
        ".lightly/metadata/a.json",
        ".lightly/metadata/schema.json",
    ]
    # A task with no folder lists nothing; a task name is one folder name.
    assert _all(seen, alice, d, "predictions", task_name="none") == []
    with pytest.raises(Invalid, match="taskName"):
        _all(seen, alice, d, "predictions")
    with pytest.raises(Invalid):
        _all(seen, alice, d, "predictions", task_name="../det")
    # Relevant filenames keep the predictions of the relevant images (and the schema).
    _touch(out / "relevant.txt", T0, b"sub/b.png\n")
    got = _all(
        seen,
        alice,
        d,
        "predictions",
        task_name="det",
        relevant_filenames_file_name=".lightly/relevant.txt",
    )
    assert sorted(got) == [
        ".lightly/predictions/det/schema.json",
        ".lightly/predictions/det/sub/b.json",
    ]


def test_read_urls_stream_the_file(seen: Platform) -> None:
    alice = user(seen)
    d = ready_dataset(seen, alice)
    _touch(_mnt(seen) / "in" / "dir" / "a b.png", T0, b"PIXELS")
    _touch(_mnt(seen) / "out" / ".lightly" / "metadata" / "m.json", T0, b"{}")
    [row] = listing.list_page(seen, alice, d, "samples", "http://h").data
    assert row.file_name == "dir/a b.png"
    url = urlsplit(row.read_url)
    assert url.path == f"/v1/datasets/{d}/datasource/readurlRedirect"
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert unquote(q["path"]) == "dir/a b.png" and q["purpose"] == "INPUT"
    name, size, chunks = listing.open_file(seen, d, "INPUT", q["path"], q["publicToken"])
    assert (name, size, b"".join(chunks)) == ("a b.png", 6, b"PIXELS")
    # The token is for that one file of that datasource of that dataset.
    with pytest.raises(Forbidden):
        listing.open_file(seen, d, "INPUT", "dir/other.png", q["publicToken"])
    with pytest.raises(Forbidden):
        listing.open_file(seen, d, "LIGHTLY", q["path"], q["publicToken"])
    token = q["publicToken"]
    altered = token[:-1] + ("1" if token[-1] == "0" else "0")  # always a different token
    with pytest.raises(Forbidden):
        listing.open_file(seen, d, "INPUT", q["path"], altered)
    [meta] = listing.list_page(seen, alice, d, "metadata", "http://h").data
    mq = {k: v[0] for k, v in parse_qs(urlsplit(meta.read_url).query).items()}
    assert mq["purpose"] == "LIGHTLY"
    _, _, chunks = listing.open_file(seen, d, "LIGHTLY", mq["path"], mq["publicToken"])
    assert b"".join(chunks) == b"{}"


def test_links_out_of_the_datasource_are_not_listed(seen: Platform, tmp_path: Path) -> None:
    alice = user(seen)
    d = ready_dataset(seen, alice)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    _touch(_mnt(seen) / "in" / "ok.png", T0)
    (_mnt(seen) / "in" / "leak.png").symlink_to(secret)
    assert _all(seen, alice, d) == ["ok.png"]


def test_a_datasource_the_server_cannot_see(platform: Platform) -> None:
    alice = user(platform)
    d = ready_dataset(platform, alice)  # LOCAL, and no local_root: the server cannot see it
    with pytest.raises(Unprocessable, match="THRESHER_LOCAL_ROOT"):
        listing.divide_and_conquer(platform, alice, d, "samples", dnc_shards=1)


def test_bad_cursors_and_shards(seen: Platform) -> None:
    alice = user(seen)
    d = ready_dataset(seen, alice)
    with pytest.raises(Invalid, match="cursor"):
        listing.list_page(seen, alice, d, "samples", "http://h", cursor="garbage!")
    [cursor] = listing.divide_and_conquer(seen, alice, d, "samples", dnc_shards=1).cursors
    with pytest.raises(Invalid, match="metadata"):
        listing.list_page(seen, alice, d, "metadata", "http://h", cursor=cursor)
    for shards in (0, listing.MAX_SHARDS + 1):
        with pytest.raises(Invalid, match="dncShards"):
            listing.divide_and_conquer(seen, alice, d, "samples", dnc_shards=shards)


def test_processed_until_and_who_may_list(seen: Platform) -> None:
    alice, bob, carol = user(seen), user(seen, "bob@example.com"), user(seen, "carol@example.com")
    d = ready_dataset(seen, alice)
    _touch(_mnt(seen) / "in" / "a.png", T0)
    sharing.share_only_with(seen, alice, d, ["bob@example.com"])
    assert listing.processed_until(seen, alice, d) == 0
    assert datasets.get(seen, alice, d).datasource_processed_until_timestamp is None
    listing.set_processed_until(seen, alice, d, T0)
    assert listing.processed_until(seen, bob, d) == T0
    assert datasets.get(seen, bob, d).datasource_processed_until_timestamp == T0
    # The collaborator lists, reads and sets the timestamp ("schedule").
    assert _all(seen, bob, d) == ["a.png"]
    listing.set_processed_until(seen, bob, d, T0 + 1)
    assert listing.processed_until_response(seen, alice, d).wire() == {
        "processedUntilTimestamp": T0 + 1
    }
    with pytest.raises(Invalid):
        listing.set_processed_until(seen, alice, d, -1)
    # A stranger is told the dataset does not exist, whatever they try.
    for call in (
        lambda: listing.processed_until(seen, carol, d),
        lambda: listing.set_processed_until(seen, carol, d, 1),
        lambda: listing.divide_and_conquer(seen, carol, d, "samples", dnc_shards=1),
        lambda: listing.list_page(seen, carol, d, "samples", "http://h"),
    ):
        with pytest.raises(NotFound) as e:
            call()
        assert e.value.code == "DATASET_UNKNOWN"
    # So is bob once the dataset is no longer shared with him.
    sharing.share_only_with(seen, alice, d, [])
    with pytest.raises(NotFound):
        listing.list_page(seen, bob, d, "samples", "http://h")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """An S3 emulator (moto) on 127.0.0.1, one per module: s3fs caches its clients by their
    options, so every test here must see the same endpoint."""
    server_mod = pytest.importorskip("moto.server")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    mp = pytest.MonkeyPatch()
    endpoint = f"http://127.0.0.1:{port}"
    mp.setenv("AWS_ENDPOINT_URL", endpoint)
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield endpoint
    mp.undo()
    server.stop()


def test_an_s3_datasource(platform: Platform, moto_endpoint: str) -> None:
    """S3 (moto): objects' LastModified drive from/to; read URLs stream them."""
    import fsspec

    from thresher.platform import datasources
    from thresher.wire import DatasetCreateRequest, DatasourceConfigS3

    fs = fsspec.filesystem(
        "s3",
        key="testing",
        secret="testing",
        client_kwargs={"endpoint_url": moto_endpoint},
        skip_instance_cache=True,
    )
    bucket = "listing-" + os.urandom(4).hex()  # moto's state is the process's
    fs.mkdir(bucket)
    for name in ("in/a.png", "in/sub/b.png", "in/c.txt", "out/.lightly/metadata/a.json"):
        fs.pipe(f"{bucket}/{name}", name.encode())
    alice = user(platform)
    d = datasets.create(platform, alice, DatasetCreateRequest(name="s3-listing"))
    for purpose, folder in (("INPUT", "in"), ("LIGHTLY", "out")):
        cfg = DatasourceConfigS3(
            purpose=purpose,
            full_path=f"s3://{bucket}/{folder}/",
            s3_region="us-east-1",
            s3_access_key_id="testing",
            s3_secret_access_key="testing",
        )
        datasources.put(platform, alice, d, cfg)
    got = _all(platform, alice, d, shards=2)
    assert sorted(got) == ["a.png", "sub/b.png"]
    assert _all(platform, alice, d, "metadata") == [".lightly/metadata/a.json"]
    assert _all(platform, alice, d, to=T0) == []  # written now, not before T0
    row = listing.list_page(platform, alice, d, "samples", "h").data[0]
    q = {k: v[0] for k, v in parse_qs(urlsplit(row.read_url).query).items()}
    _, _, chunks = listing.open_file(platform, d, "INPUT", q["path"], q["publicToken"])
    assert b"".join(chunks) == b"in/a.png"
