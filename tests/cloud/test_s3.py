"""S3 through a real S3 server (moto, on 127.0.0.1): the storage layer and the whole flow.

Credentials come only from the environment (AWS_*) and the endpoint from fsspec's config, the
way PRODUCT.md tells users to configure buckets: nothing secret is a flow parameter.
"""

import json
import socket

import fsspec
import pytest

from thresher.errors import StorageError
from thresher.storage.location import IMAGE_EXTENSIONS, Location

moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-xyz",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        mp.setenv(k, v)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    old = fsspec.config.conf.get("s3")
    fsspec.config.conf["s3"] = {"endpoint_url": f"http://127.0.0.1:{port}"}
    fsspec.filesystem("s3").clear_instance_cache()
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("thresher-test")
    yield fs
    server.stop()
    if old is None:
        fsspec.config.conf.pop("s3", None)
    else:
        fsspec.config.conf["s3"] = old
    mp.undo()


def test_location_suite_on_s3(s3):
    rw = Location("s3://thresher-test/loc", writable=True)
    for name in ["b.png", "a/Z.JPG", "c/d/e.TIFF", "notes.txt", ".lightly/x.png"]:
        rw.write_bytes(name, b"x")
    assert [f.name for f in Location("s3://thresher-test/loc").list_files(IMAGE_EXTENSIONS)] == [
        "a/Z.JPG", "b.png", "c/d/e.TIFF"]
    rw.write_text("r/report.json", "{}")
    assert rw.read_text("r/report.json") == "{}"
    assert not [f for f in rw.list_files() if ".tmp-" in f.name]
    with pytest.raises(StorageError, match="read-only"):
        Location("s3://thresher-test/loc").write_bytes("x.png", b"1")


def test_flow_on_s3(s3, prefect_server, example_dataset):
    from thresher.flows import curate

    for name in example_dataset.all_files:
        s3.pipe_file(f"thresher-test/input/{name}", (example_dataset.root / name).read_bytes())
    result = curate(input="s3://thresher-test/input", lightly="s3://thresher-test/lightly",
                    selection_config={"n_samples": 5})
    assert result.sizes["n_corrupt"] == len(example_dataset.corrupt)
    assert result.sizes["n_duplicate"] == len(example_dataset.duplicates)
    run = f"thresher-test/lightly/.lightly/runs/{result.run_id}"
    assert len(s3.cat_file(f"{run}/filenames/selected.txt").decode().split()) == 5
    assert s3.exists(f"{run}/report.pdf") and s3.exists("thresher-test/lightly/.lightly/tags/initial-tag.txt")
    # The input bucket prefix was only read.
    assert sorted(p.split("input/", 1)[1] for p in s3.find("thresher-test/input")) == example_dataset.all_files
    # Secrets never reach the outputs.
    for path in ("report.json", "config.json", "log.txt"):
        assert "testing-secret-xyz" not in s3.cat_file(f"{run}/{path}").decode()
    assert json.loads(s3.cat_file(f"{run}/config.json"))["input"] == "s3://thresher-test/input"
