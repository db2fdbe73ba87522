"""Flaky storage: S3 (the moto server) behind a proxy that throttles, resets and stalls.

Transient faults are retried with backoff by the backend (s3fs around botocore), so a run through
the proxy gives exactly the clean run's result; when the retries run out, or an object always
fails, the error names the object: a run ends with one paragraph and exit code 2, no traceback.
The client's timeouts are shortened here (``FSSPEC_S3``) so that a stall costs seconds.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from faulty_proxy import FAULTS, Faults, faulty_proxy

from thresher.errors import StorageError, StorageUnavailableError
from thresher.storage.location import Location

BUCKET = "thresher-flaky"
# The client gives up on a request after 2 s (s3fs's default read timeout is 15 s); the proxy
# stalls for 3 s, so a stall is a real client timeout, and retried.
TIMEOUTS = {"connect_timeout": 2, "read_timeout": 2}
FILENAME_LISTS = ("selected", "removed", "duplicate", "corrupt", "filtered")


@dataclass
class Moto:
    """The S3 emulator: its endpoint, an fsspec filesystem on it (no faults), the dataset."""

    endpoint: str
    fs: object
    names: list[str]
    corrupt: list[str]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_dataset(tmp: Path) -> Iterator[Moto]:
    """The moto server (in this process), a bucket, and a tiny planted dataset in ``input/``."""
    server_mod = pytest.importorskip("moto.server")
    import fsspec

    from thresher.examples import make_example_dataset

    port = free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("AWS_ACCESS_KEY_ID", "flaky-access-key")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "flaky-secret-key")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        # Moto's servers in one process share their state: start from an empty one.
        httpx.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()
        fs = fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True)
        fs.mkdir(BUCKET)
        ds = make_example_dataset(tmp / "input", n_clusters=3, per_cluster=6)
        for name in ds.all_files:
            fs.pipe_file(f"{BUCKET}/input/{name}", (Path(ds.root) / name).read_bytes())
        yield Moto(endpoint, fs, list(ds.all_files), sorted(ds.corrupt))
    finally:
        server.stop()
        mp.undo()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """The S3 emulator with the dataset, for this module."""
    with moto_dataset(tmp_path_factory.mktemp("flaky")) as m:
        yield m


def cli_env(endpoint: str, **extra: str) -> dict[str, str]:
    """The environment of a ``thresher run`` on S3 at ``endpoint``: credentials only here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FSSPEC_"))}
    env.pop("PREFECT_API_URL", None)
    env.update(
        AWS_ACCESS_KEY_ID="flaky-access-key",
        AWS_SECRET_ACCESS_KEY="flaky-secret-key",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        FSSPEC_S3='{"config_kwargs": {"connect_timeout": 2, "read_timeout": 2}}',
        THRESHER_PROGRESS="0",
    )
    env.update(extra)
    return env


def thresher_run(
    input_url: str, lightly_url: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``thresher run INPUT --lightly LIGHTLY --n-samples 4`` as a user types it."""
    cmd = [sys.executable, "-m", "thresher", "run", input_url, "--lightly", lightly_url]
    return subprocess.run(
        [*cmd, "--n-samples", "4", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
    )


def results(moto: Moto, lightly: str) -> dict[str, list[str]]:
    """The run's file lists (read from the emulator directly, without the proxy)."""
    moto.fs.invalidate_cache()  # type: ignore[attr-defined]
    runs = moto.fs.glob(f"{BUCKET}/{lightly}/.lightly/runs/*/filenames")  # type: ignore[attr-defined]
    assert len(runs) == 1, runs
    return {
        which: moto.fs.cat_file(f"{runs[0]}/{which}.txt").decode().splitlines()  # type: ignore[attr-defined]
        for which in FILENAME_LISTS
    }


def _location(proxy_url: str, rel: str = "loc") -> Location:
    options = {"endpoint_url": proxy_url, "config_kwargs": TIMEOUTS, "skip_instance_cache": True}
    return Location(f"s3://{BUCKET}/{rel}", options, writable=True)


# --- the storage layer ---------------------------------------------------------------------


def test_transient_faults_are_retried_by_every_read_and_write(moto: Moto) -> None:
    with faulty_proxy(moto.endpoint, Faults(rate=0.35, seed=3, stall_s=3)) as proxy:
        loc = _location(proxy.url, "transient")
        for i in range(8):
            loc.write_bytes(f"f{i}.png", bytes([i]) * 100)
        assert [f.name for f in loc.list_files()] == [f"f{i}.png" for i in range(8)]
        assert [loc.read_bytes(f"f{i}.png") for i in range(8)] == [
            bytes([i]) * 100 for i in range(8)
        ]
        names = [f"f{i}.png" for i in range(8)]
        assert [i for i, _ in loc.read_many(names)] == list(range(8))
    counts = proxy.counts()
    assert all(counts.get(kind, 0) >= 1 for kind in FAULTS), counts


def test_retries_that_run_out_end_with_an_error_naming_the_object(moto: Moto) -> None:
    # Every request is reset: the backend retries, then gives up. Before the fix, botocore's
    # EndpointConnectionError escaped the storage layer (a traceback, no file name).
    faults = Faults(rate=1.0, kinds=("reset",), max_in_a_row=10**6)
    with faulty_proxy(moto.endpoint, faults) as proxy:
        loc = _location(proxy.url, "dead")
        with pytest.raises(StorageUnavailableError) as written:
            loc.write_bytes("nested/out.json", b"{}")
        with pytest.raises(StorageUnavailableError) as read:
            loc.read_bytes("photo 1.png")
    assert proxy.counts()["reset"] >= 2  # retried
    for err, name in ((written, "nested/out.json"), (read, "photo 1.png")):
        text = str(err.value)
        assert f"{name} in s3://{BUCKET}/dead" in text, text
        assert "connection failures" in text and "run the same command again" in text, text
        # Not an OSError: the corruption check must not count a healthy file as unreadable.
        assert not isinstance(err.value, OSError)


def test_an_object_that_always_fails_is_named_and_a_forbidden_one_is_its_own_problem(
    moto: Moto,
) -> None:
    faults = Faults(always={"loc500/a.png": 500, "loc500/b.png": 403})
    moto.fs.pipe_file(f"{BUCKET}/loc500/a.png", b"a")  # type: ignore[attr-defined]
    moto.fs.pipe_file(f"{BUCKET}/loc500/b.png", b"b")  # type: ignore[attr-defined]
    with faulty_proxy(moto.endpoint, faults) as proxy:
        loc = _location(proxy.url, "loc500")
        with pytest.raises(StorageUnavailableError, match=r"a\.png in s3://.*HTTP 500"):
            loc.read_bytes("a.png")
        with pytest.raises(StorageError, match=r"b\.png in s3://") as forbidden:
            loc.read_bytes("b.png")
    assert proxy.counts()["always-500"] >= 2  # retried before giving up
    assert proxy.counts()["always-403"] == 1  # a 403 is not retried
    assert isinstance(forbidden.value, PermissionError | OSError)


# --- whole runs ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_through_flaky_storage_gives_the_clean_runs_result(moto: Moto) -> None:
    url = f"s3://{BUCKET}/input"
    clean = thresher_run(url, f"s3://{BUCKET}/clean", cli_env(moto.endpoint))
    assert clean.returncode == 0, clean.stderr[-3000:]
    with faulty_proxy(moto.endpoint, Faults(rate=0.12, seed=14, stall_s=3)) as proxy:
        flaky = thresher_run(url, f"s3://{BUCKET}/flaky", cli_env(proxy.url))
    assert flaky.returncode == 0, flaky.stderr[-3000:]
    counts = proxy.counts()
    assert all(counts.get(kind, 0) >= 1 for kind in FAULTS), counts
    expected = results(moto, "clean")
    assert results(moto, "flaky") == expected
    assert expected["corrupt"] == moto.corrupt
    assert len(expected["selected"]) == 4
    # The same counts in the CLI summary (every line but the timing ones).
    assert len(_counts(clean.stdout)) == 6, clean.stdout
    assert _counts(flaky.stdout) == _counts(clean.stdout)


def _counts(summary: str) -> list[str]:
    """The summary's count rows (``  selected        4``), without run ids, paths or memory."""
    return [line for line in summary.splitlines() if re.fullmatch(r"  [a-z ()]+ +\d+", line)]


@pytest.mark.slow
def test_an_object_that_always_fails_ends_the_run_with_one_paragraph(moto: Moto) -> None:
    victim = next(n for n in moto.names if n not in moto.corrupt)
    faults = Faults(always={f"input/{victim}": 500})
    with faulty_proxy(moto.endpoint, faults) as proxy:
        proc = thresher_run(f"s3://{BUCKET}/input", f"s3://{BUCKET}/broken", cli_env(proxy.url))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    message = proc.stderr.split("thresher: error:", 1)[1].strip()
    assert "\n\n" not in message, message  # one paragraph
    flat = " ".join(message.split())
    assert f"{victim} in s3://{BUCKET}/input" in flat, flat
    assert "HTTP 500" in flat and "run the same command again" in flat, flat
    assert proxy.counts()["always-500"] >= 2
    # Nothing pretends the run finished: no results were written.
    moto.fs.invalidate_cache()  # type: ignore[attr-defined]
    assert not moto.fs.glob(f"{BUCKET}/broken/.lightly/runs/*/filenames")  # type: ignore[attr-defined]
