"""A ``thresher run`` makes no outbound connection attempt, OpenVINO's telemetry included.

Every Python process of the run (the command, its decode workers, any server it starts) gets
an audit hook through ``sitecustomize`` that records each ``socket.connect`` and
``socket.getaddrinfo`` whose destination is not this machine. The run starts from a fresh
``HOME`` (no telemetry consent file: OpenVINO's converter would send by default) and a fresh
``THRESHER_HOME`` (so the model is converted, and quantized to int8, in this run), with the CI
variables that make OpenVINO silent on CI removed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from thresher.examples import make_example_dataset

HOOK = """
import os, sys

_LOG = os.environ["THRESHER_TEST_NET_LOG"]
_LOCAL = ("localhost", "127.", "::1", "0.0.0.0")


def _record(what):
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {what}\\n")


def _hook(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode()
        if host and not str(host).startswith(_LOCAL):
            _record(f"getaddrinfo {host!r}")
    elif event == "socket.connect":
        addr = args[1]
        if isinstance(addr, tuple) and addr[0] and not str(addr[0]).startswith(_LOCAL):
            _record(f"connect {addr!r}")


sys.addaudithook(_hook)
"""


THRESHER_RUN = [sys.executable, "-m", "thresher", "run"]
INT8 = '{"embedding_precision": "int8"}'


def test_a_run_makes_no_outbound_connection_attempt(tmp_path: Path) -> None:
    images = tmp_path / "images"
    make_example_dataset(images, n_clusters=2, per_cluster=4, n_duplicates=0, size=64)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HOOK)
    log = tmp_path / "net.log"
    log.write_text("")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CI", "TF_BUILD", "JENKINS_URL", "PREFECT_SERVER_ANALYTICS_ENABLED"}
    }
    env.update(
        HOME=str(home),
        THRESHER_HOME=str(tmp_path / "thresher-home"),
        THRESHER_TEST_NET_LOG=str(log),
        PYTHONPATH=os.pathsep.join([str(site), env.get("PYTHONPATH", "")]),
        THRESHER_PROGRESS="0",
    )
    # The hook is live in the child: a planted lookup is recorded.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import socket\ntry: socket.getaddrinfo('example.invalid', 80)\nexcept OSError: pass",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert "example.invalid" in log.read_text()
    log.write_text("")

    run = subprocess.run(
        [*THRESHER_RUN, str(images), "--n-samples", "3", "--worker-config", INT8],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # The model was converted and quantized in this run: the converter's and NNCF's telemetry
    # paths were both exercised (NNCF turns its telemetry off under pytest, not in this child).
    converted = tmp_path / "thresher-home" / "models" / "openvino"
    assert list(converted.glob("[0-9a-f]*/model.xml")) and list(converted.glob("int8-*/model.xml"))
    assert log.read_text() == "", log.read_text()
