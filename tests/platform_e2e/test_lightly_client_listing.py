"""Lightly's real client (``lightly==1.5.26``) lists a thresher datasource, unchanged.

``download_raw_samples`` (with divide and conquer, ``from_``/``to`` and a relevant filenames
file), ``download_raw_predictions``, ``download_raw_metadata``, the processed-until timestamp,
and ``download_new_raw_samples`` twice: the second call returns only the file written after
the first. The client runs in a subprocess with ``.ci/lightly-client`` first on PYTHONPATH
(see ``test_lightly_client.py``), against a real ``thresher server start`` process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.platform_e2e.test_lightly_client import _client_env, lightly_client  # noqa: F401
from tests.server.server_process import running_server

T0 = 1_700_000_000

SCRIPT = r"""
import json, sys, time
from pathlib import Path

import requests
from lightly.api import ApiWorkflowClient
from lightly.openapi_generated.swagger_client.models import DatasourcePurpose

mount, out, t0 = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
client = ApiWorkflowClient()
client.create_dataset("lightly-listing")
client.set_local_config("in", purpose=DatasourcePurpose.INPUT)
client.set_local_config("out", purpose=DatasourcePurpose.LIGHTLY)
res = {}
everything = client.download_raw_samples(divide_and_conquer_shards=3)
res["all"] = sorted(n for n, _ in everything)
res["bytes"] = {n: requests.get(u, timeout=30).text for n, u in everything}
res["window"] = sorted(n for n, _ in client.download_raw_samples(from_=t0 + 1, to=t0 + 2))
res["relevant"] = sorted(
    n for n, _ in client.download_raw_samples(relevant_filenames_file_name=".lightly/rel.txt")
)
res["predictions"] = sorted(n for n, _ in client.download_raw_predictions("det"))
res["metadata"] = sorted(n for n, _ in client.download_raw_metadata(divide_and_conquer_shards=2))
res["ts0"] = client.get_processed_until_timestamp()
res["new1"] = sorted(n for n, _ in client.download_new_raw_samples())
res["ts1"] = client.get_processed_until_timestamp()
time.sleep(1.1)  # whole seconds: the next file is newer than the processed-until time
(mount / "in" / "new.png").write_text("new")
res["new2"] = sorted(n for n, _ in client.download_new_raw_samples(divide_and_conquer_shards=2))
res["new3"] = client.download_new_raw_samples()
client.update_processed_until_timestamp(t0 + 1)
res["ts2"] = client.get_processed_until_timestamp()
res["new4"] = sorted(n for n, _ in client.download_new_raw_samples())
out.write_text(json.dumps(res))
"""


def _touch(path: Path, when: int, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    os.utime(path, (when, when))


def test_lightlys_client_lists_the_datasource(
    tmp_path: Path,
    lightly_client: Path,  # noqa: F811
) -> None:
    mount = tmp_path / "mount"
    for i, name in enumerate(("a.png", "b.png", "c.png", "sub/d.jpg")):
        _touch(mount / "in" / name, T0 + i, name)
    lightly = mount / "out" / ".lightly"
    _touch(lightly / "predictions" / "det" / "a.json", T0, "{}")
    _touch(lightly / "predictions" / "other" / "a.json", T0, "{}")
    _touch(lightly / "metadata" / "a.json", T0, "{}")
    _touch(lightly / "metadata" / "schema.json", T0, "{}")
    _touch(lightly / "rel.txt", T0, "a.png\nsub/*\n")
    env = {"THRESHER_PREFECT_SERVER": "off", "THRESHER_LOCAL_ROOT": str(mount)}
    out = tmp_path / "out.json"
    with running_server(tmp_path / "home", env=env) as srv:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(mount), str(out), str(T0)],
            env=_client_env(srv.url, srv.token),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:] + srv.log_text()[-2000:]
    res = json.loads(out.read_text())
    names = ["a.png", "b.png", "c.png", "sub/d.jpg"]
    assert res["all"] == names
    assert res["bytes"] == {n: n for n in names}
    assert res["window"] == ["b.png", "c.png"]
    assert res["relevant"] == ["a.png", "sub/d.jpg"]
    assert res["predictions"] == [".lightly/predictions/det/a.json"]
    assert res["metadata"] == [".lightly/metadata/a.json", ".lightly/metadata/schema.json"]
    assert res["ts0"] == 0
    assert res["new1"] == names
    assert res["ts1"] > T0
    assert res["new2"] == ["new.png"]
    assert res["new3"] == []
    assert res["ts2"] == T0 + 1
    assert res["new4"] == ["c.png", "new.png", "sub/d.jpg"]
