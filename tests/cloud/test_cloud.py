"""The storage layer and the whole flow on real object-store emulators, all on 127.0.0.1:
S3 (moto), GCS (gcp-storage-emulator) and Azure Blob (Azurite, installed by .ci/run with npm).

Credentials come only from the environment or fsspec's config, as PRODUCT.md tells users:
nothing secret is a flow parameter, and the tests check that no secret reaches an output.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pytest

from thresher.errors import StorageError
from thresher.storage.location import IMAGE_EXTENSIONS, Location

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / ".ci" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass
class Bucket:
    url: str  # e.g. s3://thresher-test
    fs: fsspec.AbstractFileSystem
    path: str  # the same root as an fs path
    secret: str


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _configure(protocols: tuple[str, ...], options: dict) -> None:
    for proto in protocols:
        fsspec.config.conf[proto] = dict(options)
    fsspec.filesystem(protocols[0], skip_instance_cache=True).clear_instance_cache()


@pytest.fixture(scope="module")
def s3() -> Iterator[Bucket]:
    server_mod = pytest.importorskip("moto.server")
    secret = "s3-secret-for-tests-xyz"
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", secret)
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = _port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    _configure(("s3",), {"endpoint_url": f"http://127.0.0.1:{port}"})
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    # moto keeps its buckets in this process: a second module using the fixture finds it made
    fs.makedirs("thresher-test", exist_ok=True)
    yield Bucket("s3://thresher-test", fs, "thresher-test", secret)
    server.stop()
    fsspec.config.conf.pop("s3", None)
    mp.undo()


@pytest.fixture(scope="module")
def gcs() -> Iterator[Bucket]:
    pytest.importorskip("gcsfs")
    emulator = pytest.importorskip("gcp_storage_emulator.server")
    port = _port()
    server = emulator.create_server(
        "127.0.0.1", port, in_memory=True, default_bucket="thresher-test"
    )
    server.start()
    _configure(
        ("gs", "gcs"),
        {"endpoint_url": f"http://127.0.0.1:{port}", "token": "anon", "project": "thresher-test"},
    )
    fs = fsspec.filesystem("gs", skip_instance_cache=True)
    yield Bucket("gs://thresher-test", fs, "thresher-test", "anon-token-unused")
    server.stop()
    fsspec.config.conf.pop("gs", None)
    fsspec.config.conf.pop("gcs", None)


@pytest.fixture(scope="module")
def azure(tmp_path_factory) -> Iterator[Bucket]:
    pytest.importorskip("adlfs")
    if not AZURITE.exists() or not shutil.which("node"):
        pytest.skip(f"Azurite is not installed ({AZURITE}); .ci/run installs it with npm")
    port = _port()
    data = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(data),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_port(port)
        conn = (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
        _configure(("az", "abfs"), {"connection_string": conn})
        fs = fsspec.filesystem("az", skip_instance_cache=True)
        fs.mkdir("thresher-test")
        yield Bucket("az://thresher-test", fs, "thresher-test", AZURE_KEY)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        fsspec.config.conf.pop("az", None)
        fsspec.config.conf.pop("abfs", None)


@pytest.fixture(params=["s3", "gcs", "azure"])
def bucket(request) -> Bucket:
    return request.getfixturevalue(request.param)


def test_location_suite(bucket):
    rw = Location(f"{bucket.url}/loc", writable=True)
    for name in ["b.png", "a/Z.JPG", "c/d/e.TIFF", "notes.txt", ".lightly/x.png"]:
        rw.write_bytes(name, b"x")
    assert [f.name for f in Location(f"{bucket.url}/loc").list_files(IMAGE_EXTENSIONS)] == [
        "a/Z.JPG",
        "b.png",
        "c/d/e.TIFF",
    ]
    rw.write_text("r/report.json", "{}")
    rw.write_text("r/report.json", '{"a": 1}')
    assert rw.read_text("r/report.json") == '{"a": 1}'
    assert not [f for f in rw.list_files() if ".tmp-" in f.name]
    with pytest.raises(StorageError, match="read-only"):
        Location(f"{bucket.url}/loc").write_bytes("x.png", b"1")


def test_flow(bucket, prefect_server, example_dataset):
    from thresher.flows import curate

    for name in example_dataset.all_files:
        bucket.fs.pipe_file(
            f"{bucket.path}/input/{name}", (example_dataset.root / name).read_bytes()
        )
    result = curate(
        input=f"{bucket.url}/input",
        lightly=f"{bucket.url}/lightly",
        selection_config={"n_samples": 5},
    )
    assert result.sizes["n_corrupt"] == len(example_dataset.corrupt)
    assert result.sizes["n_duplicate"] == len(example_dataset.duplicates)
    run = f"{bucket.path}/lightly/.lightly/runs/{result.run_id}"
    assert len(bucket.fs.cat_file(f"{run}/filenames/selected.txt").decode().split()) == 5
    assert bucket.fs.exists(f"{run}/report.pdf")
    assert bucket.fs.exists(f"{bucket.path}/lightly/.lightly/tags/initial-tag.txt")
    # INPUT was only read: exactly the files put there.
    found = sorted(p.split("/input/", 1)[1] for p in bucket.fs.find(f"{bucket.path}/input"))
    assert found == example_dataset.all_files
    for name in ("report.json", "config.json", "log.txt"):
        assert bucket.secret not in bucket.fs.cat_file(f"{run}/{name}").decode()
    assert json.loads(bucket.fs.cat_file(f"{run}/config.json"))["input"] == f"{bucket.url}/input"
