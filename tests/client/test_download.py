"""download_dataset, embeddings and ``thresher download`` against a real server process.

One ``thresher server start`` process (tests/server/server_process.py) sees a mount with the
originals; a run's selection is reported over HTTP as a worker reports it. Files must come back
byte-identical; names that would land outside the output folder must be refused; a missing
original must make download_dataset raise with a summary and the command exit non-zero. The
seed's "Downloading" snippets run as written, with our client (import line changed) and with
Lightly's real client (unchanged, in a subprocess).
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.platform_e2e.test_lightly_client import _client_env, lightly_client  # noqa: F401
from tests.server.server_process import ServerProcess, running_server
from thresher.client import ApiWorkflowClient
from thresher.client._download import DownloadError, UnsafeFilenameError, target_path

GOOD = ["b.jpg", "a.png", "nested/deeper/c.png"]
EMBEDDINGS = b"filenames,embedding_0,embedding_1,labels\na.png,0.25,-1.5,0\n"


def _image(fmt: str, seed: int) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (16, 12), (seed * 40 % 256, 80, 200))
    buf = io.BytesIO()
    # JPEG with a comment: a re-encoding client would lose it; a byte copy keeps it.
    extra = {"comment": b"thresher original", "quality": 93} if fmt == "JPEG" else {}
    img.save(buf, format=fmt, **extra)
    return buf.getvalue()


@dataclass
class World:
    server: ServerProcess
    mount: Path
    dataset: str  # "cars": two runs of GOOD files; initial-tag holds them
    runs: list[str]
    broken: str  # "broken": a.png, ../escape.png, /abs.png, gone.png in initial-tag
    originals: dict[str, bytes]

    def client(self, dataset: str | None = None) -> ApiWorkflowClient:
        return ApiWorkflowClient(
            token=self.server.token,
            dataset_id=dataset or self.dataset,
            server_url=self.server.url,
        )


def _call(srv: ServerProcess, method: str, path: str, body: object = None) -> object:
    r = httpx.request(method, srv.url + path, params={"token": srv.token}, json=body, timeout=30)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.content else None


def _report_run(srv: ServerProcess, d: str, w: str, picks: list[str]) -> str:
    """Schedule, claim, report the selection and complete a run, as a worker does."""
    body = {
        "config": {"worker_config": {}, "lightly_config": {}},
        "selectionConfig": {"n_samples": 1},
    }
    config = _call(srv, "POST", "/v1/docker/worker/config/v3", body)["id"]  # type: ignore[index]
    _call(srv, "POST", f"/v1/datasets/{d}/docker/worker/schedule", {"configId": config})
    run = _call(srv, "POST", f"/v1/docker/worker/{w}/claim")["run"]["id"]  # type: ignore[index]
    _call(srv, "POST", f"/v1/docker/runs/{run}/selection", {"filenames": picks})
    _call(srv, "PUT", f"/v1/docker/runs/{run}/state", {"state": "COMPLETED"})
    return str(run)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("download")
    mount = base / "mount"
    (mount / "in" / "nested" / "deeper").mkdir(parents=True)
    (mount / "out").mkdir()
    originals = {
        "b.jpg": _image("JPEG", 1),
        "a.png": _image("PNG", 2),
        "nested/deeper/c.png": _image("PNG", 3),
    }
    for name, data in originals.items():
        (mount / "in" / name).write_bytes(data)
    env = {
        "THRESHER_LOCAL_ROOT": str(mount),
        "THRESHER_LIGHTLY_ROOT": str(mount),
        "THRESHER_PREFECT_SERVER": "off",
    }
    with running_server(base / "home", env=env) as srv:
        w = str(_call(srv, "POST", "/v1/docker/worker", {"name": "worker-1"})["id"])  # type: ignore[index]
        made = {}
        for name in ("cars", "broken"):
            d = str(_call(srv, "POST", "/v1/datasets", {"name": name, "type": "Images"})["id"])  # type: ignore[index]
            for purpose, path in (("INPUT", "in"), ("LIGHTLY", "out")):
                body = {"type": "LOCAL", "purpose": purpose, "fullPath": path}
                _call(srv, "PUT", f"/v1/datasets/{d}/datasource", body)
            made[name] = d
        runs = [_report_run(srv, made["cars"], w, GOOD) for _ in range(2)]
        _report_run(srv, made["broken"], w, ["a.png", "escape.png", "abs.png", "gone.png"])
        # The server refuses such names in a selection now (tests/reliability/
        # test_hostile_requests.py); the client must still refuse them from a server that
        # stored them earlier, or from a tampered database.
        with sqlite3.connect(base / "home" / "thresher.db") as db:
            for name, hostile in (("escape.png", "../escape.png"), ("abs.png", "/abs.png")):
                db.execute("UPDATE samples SET file_name = ? WHERE file_name = ?", (hostile, name))
        csv = mount / "out" / ".lightly" / "runs" / runs[1] / "embeddings.csv"
        csv.parent.mkdir(parents=True)
        csv.write_bytes(EMBEDDINGS)
        yield World(srv, mount, made["cars"], runs, made["broken"], originals)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_download_dataset_writes_byte_identical_files(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    world.client().download_dataset(str(out), "initial-tag", max_workers=2, verbose=False)
    assert _files(out) == world.originals  # no temporary files left either
    (out / "a.png").write_bytes(b"stale")  # existing files are replaced
    world.client().download_dataset(str(out), max_workers=1, verbose=False)
    assert _files(out) == world.originals


def test_unknown_tag_is_a_value_error(world: World, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"Dataset with id {world.dataset} has no tag nope!"):
        world.client().download_dataset(str(tmp_path), "nope")


def test_failures_are_summarised_and_nothing_lands_outside(world: World, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    with pytest.raises(DownloadError) as e:
        world.client(world.broken).download_dataset(str(out), verbose=False)
    failed = dict(e.value.failures)
    assert sorted(failed) == ["../escape.png", "/abs.png", "gone.png"]
    assert "outside the output folder" in failed["../escape.png"]
    assert "outside the output folder" in failed["/abs.png"]
    assert "gone.png is missing" in failed["gone.png"]
    message = str(e.value)
    assert message.startswith(f"3 of 4 files could not be downloaded to {out}")
    assert "'../escape.png'" in message and "'gone.png'" in message
    assert _files(out) == {"a.png": world.originals["a.png"]}  # the good file was written
    assert not (tmp_path / "deep" / "escape.png").exists()
    assert not Path("/abs.png").exists()


def test_a_symlinked_folder_is_not_followed(world: World, tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "nested").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DownloadError) as e:
        world.client().download_dataset(str(out), verbose=False)
    assert [name for name, _ in e.value.failures] == ["nested/deeper/c.png"]
    assert "symbolic link" in e.value.failures[0][1]
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    "name",
    [
        "../x.png",
        "/x.png",
        "a/../../x.png",
        "C:x.png",
        "c:/x.png",
        "a\\..\\x.png",
        "",
        "a//b.png",
        "./x.png",
    ],
)
def test_target_path_refuses_escapes(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeFilenameError):
        target_path(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_embeddings(world: World, tmp_path: Path) -> None:
    client = world.client()
    listed = client.get_all_embedding_data()
    assert len(listed) == 2 and all(e.name.startswith("default_") for e in listed)
    assert [e.id for e in listed] == world.runs  # the completed runs, oldest first
    assert client.get_embedding_data_by_name(listed[1].name).id == world.runs[1]
    with pytest.raises(ValueError, match="There are no embeddings with name 'x'"):
        client.get_embedding_data_by_name("x")
    client.download_embeddings_csv(str(tmp_path / "e" / "latest.csv"))
    assert (tmp_path / "e" / "latest.csv").read_bytes() == EMBEDDINGS


def _thresher(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thresher", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_thresher_download_command(world: World, tmp_path: Path) -> None:
    srv = world.server
    common = ["--dataset", world.dataset, "--server", srv.url]
    ok = _thresher(
        "download",
        *common,
        "--tag",
        "initial-tag",
        str(tmp_path / "ok"),
        env={"THRESHER_TOKEN": srv.token},
    )
    assert ok.returncode == 0, ok.stderr
    assert _files(tmp_path / "ok") == world.originals
    assert "Downloading 3 images" in ok.stdout and "3/3" in ok.stderr  # the count, the bar
    emb = _thresher(
        "download",
        *common,
        "--token",
        srv.token,
        "--quiet",
        "--embeddings",
        str(tmp_path / "e.csv"),
        str(tmp_path / "ok2"),
    )
    assert emb.returncode == 0, emb.stderr
    assert (tmp_path / "e.csv").read_bytes() == EMBEDDINGS
    bad = _thresher(
        "download",
        *("--dataset", world.broken, "--server", srv.url, "--token", srv.token),
        "--quiet",
        str(tmp_path / "bad"),
    )
    assert bad.returncode == 1
    assert "3 of 4 files could not be downloaded" in bad.stderr and "gone.png" in bad.stderr
    assert srv.token not in bad.stderr + bad.stdout
    none = _thresher(
        "download", *common, "--token", srv.token, "--tag", "nope", str(tmp_path / "x")
    )
    assert none.returncode == 2 and "has no tag nope" in none.stderr


# --- the seed's "Downloading" snippets (shared/mission/first_steps.rst), as written ----------

SNIPPET_FILENAMES = """\
from lightly.api.api_workflow_client import ApiWorkflowClient

client = ApiWorkflowClient(token='MY_AWESOME_TOKEN', dataset_id='xyz') # replace this with your token
filenames = client.export_filenames_by_tag_name(
    'initial-tag' # name of the datasets tag
)
with open('filenames-of-initial-tag.txt', 'w') as f:
    f.write(filenames)
"""

SNIPPET_FILES = """\
from lightly.api.api_workflow_client import ApiWorkflowClient

client = ApiWorkflowClient(token='MY_AWESOME_TOKEN', dataset_id='xyz') # replace this with your token
client.download_dataset(
    './my/output/path/', # path to where the files should be saved
    'initial-tag'        # name of the datasets tag
)
"""
OUR_IMPORT = "from thresher import ApiWorkflowClient"


def _run_snippet(code: str, world: World, cwd: Path, env: dict[str, str]) -> None:
    code = code.replace("MY_AWESOME_TOKEN", world.server.token).replace(
        "'xyz'", f"'{world.dataset}'"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_seed_downloading_snippets_with_our_client(world: World, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THRESHER_", "LIGHTLY_"))}
    env["THRESHER_SERVER_URL"] = world.server.url
    lightly_import = "from lightly.api.api_workflow_client import ApiWorkflowClient"
    for snippet in (SNIPPET_FILENAMES, SNIPPET_FILES):
        assert snippet.count(lightly_import) == 1
        _run_snippet(snippet.replace(lightly_import, OUR_IMPORT), world, tmp_path, env)
    assert (tmp_path / "filenames-of-initial-tag.txt").read_text() == "\n".join(GOOD)
    assert _files(tmp_path / "my" / "output" / "path") == world.originals


@pytest.mark.usefixtures("lightly_client")
def test_seed_downloading_snippets_with_lightlys_client(world: World, tmp_path: Path) -> None:
    from PIL import Image

    env = _client_env(world.server.url, world.server.token)
    # Lightly's client creates a file's folder with exists()-then-makedirs() in each of its
    # threads, so two threads starting on the same folder race and one file is lost with only
    # a warning ("[Errno 17] File exists"). Its bug, not the server's: the folder is made here.
    (tmp_path / "my" / "output" / "path").mkdir(parents=True)
    for snippet in (SNIPPET_FILENAMES, SNIPPET_FILES):
        _run_snippet(snippet, world, tmp_path, env)  # unchanged
    assert (tmp_path / "filenames-of-initial-tag.txt").read_text() == "\n".join(GOOD)
    out = tmp_path / "my" / "output" / "path"
    assert sorted(_files(out)) == sorted(GOOD)
    for name in GOOD:  # Lightly's client re-encodes with PIL: the files decode, same size
        with Image.open(out / name) as got, Image.open(io.BytesIO(world.originals[name])) as want:
            assert got.size == want.size and got.format == want.format


LIGHTLY_EXPORTS = """\
import json, sys, warnings
from lightly.api import ApiWorkflowClient

client = ApiWorkflowClient(token=sys.argv[1], dataset_id=sys.argv[2])
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    v3 = client.export_label_box_data_rows_by_tag_name("initial-tag")
studio = client.export_label_studio_tasks_by_tag_name("initial-tag")
client.download_embeddings_csv(sys.argv[3])
print(json.dumps({
    "read_urls": client.export_filenames_and_read_urls_by_tag_name("initial-tag"),
    "studio": [t.to_dict(by_alias=True) if hasattr(t, "to_dict") else t for t in studio],
    "v3": v3,
    "v4": client.export_label_box_v4_data_rows_by_tag_name("initial-tag"),
    "embeddings": [e.name for e in client.get_all_embedding_data()],
}))
"""


@pytest.mark.usefixtures("lightly_client")
def test_lightlys_client_reads_every_export_and_the_embeddings(
    world: World, tmp_path: Path
) -> None:
    env = _client_env(world.server.url, world.server.token)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            LIGHTLY_EXPORTS,
            world.server.token,
            world.dataset,
            str(tmp_path / "e.csv"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert [r["fileName"] for r in got["read_urls"]] == GOOD
    assert [r["datasourceUrl"] for r in got["read_urls"]] == [
        str(world.mount / "in" / n) for n in GOOD
    ]
    for row in got["read_urls"]:  # the links fetch the originals, no token
        assert httpx.get(row["readUrl"], timeout=30).content == world.originals[row["fileName"]]
    assert [t["data"]["lightlyFileName"] for t in got["studio"]] == GOOD
    assert [r["externalId"] for r in got["v3"]] == GOOD
    assert [(r["global_key"], r["media_type"]) for r in got["v4"]] == [(n, "IMAGE") for n in GOOD]
    assert len(got["embeddings"]) == 2
    assert (tmp_path / "e.csv").read_bytes() == EMBEDDINGS
