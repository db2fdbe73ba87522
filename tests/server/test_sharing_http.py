"""The seed's "Sharing Datasets" snippets against a real server, with our client and Lightly's.

The snippets (``shared/mission/first_steps.rst``) are copied below as they are, and run in a
subprocess with only the import line, the token and the dataset id filled in. One change: the
seed's second snippet prints ``users`` without assigning it (``client.get_shared_users(...)``
then ``print(users)``), so it runs with ``users = `` added. A second user (the seed's
``user@something.com``) then sees the shared dataset (``get_datasets(shared=True)``, by id) and,
after the seed's revocation (``user_emails=[]``), is told it does not exist (404, as to any
stranger).

Lightly's client (lightly 1.5.26 in ``.ci/lightly-client/``) runs with that folder first on
PYTHONPATH, in its own process, so it never meets the project's own ``lightly``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.server_process import ServerProcess, running_server

REPO = Path(__file__).resolve().parents[2]
CLIENT_DIR = REPO / ".ci" / "lightly-client"

#: The seed's first snippet, up to its last step, unchanged.
SHARE = """
# we first need to have an api client (create a new or use an existing one)
client = ApiWorkflowClient(token="MY_AWESOME_TOKEN")

# share a dataset with a user
client.share_dataset_only_with(dataset_id="MY_DATASET_ID", user_emails=["user@something.com"])

# share dataset with a user while keep sharing it with previous users
user_emails = client.get_shared_users(dataset_id="MY_DATASET_ID")
user_emails.append("additional_user2@something.com")
client.share_dataset_only_with(dataset_id="MY_DATASET_ID", user_emails=user_emails)
"""

#: The seed's first snippet, its last step, unchanged.
REVOKE = """
# revoke access to all users
client.share_dataset_only_with(dataset_id="MY_DATASET_ID", user_emails=[])
"""

#: The seed's second snippet, with ``users = `` added (the seed never assigns it).
GET_USERS = """
# we first need to have an api client (create a new or use an existing one)
client = ApiWorkflowClient(token="MY_AWESOME_TOKEN")

# get a list of users that have access to a given dataset
users = client.get_shared_users(dataset_id="MY_DATASET_ID")
print(users)
# ["user@something.com"]
"""

IMPORTS = {
    "ours": "from thresher import ApiWorkflowClient",
    "lightly": "from lightly.api import ApiWorkflowClient",
}

#: Runs the snippets step by step, and what the second user sees between them.
DRIVER = r"""
import contextlib, io, json, sys

{import_line}

TOKEN, SECOND_TOKEN, DATASET_ID, OUT = sys.argv[1:5]
SNIPPETS = json.loads(sys.stdin.read())


# One namespace for all snippets, as when they run one after the other in one script.
NAMESPACE = {{"ApiWorkflowClient": ApiWorkflowClient}}


def run(name):
    code = SNIPPETS[name].replace("MY_AWESOME_TOKEN", TOKEN).replace("MY_DATASET_ID", DATASET_ID)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, NAMESPACE)
    return printed.getvalue()


second = ApiWorkflowClient(token=SECOND_TOKEN)


def sees():
    try:
        dataset = second.get_dataset_by_id(DATASET_ID)
    except Exception as e:  # the client's ApiException: its status
        return {{"status": getattr(e, "status", repr(e))}}
    return {{"name": dataset.name, "owner": dataset.user_id}}


def lists():
    return {{
        "shared": [d.id for d in second.get_datasets(shared=True)],
        "own": [d.id for d in second.get_datasets()],
        "all": [d.id for d in second.get_datasets(shared=None)],
    }}


out = {{"before": sees()}}
out["share_printed"] = run("SHARE")
out["after_share"] = sees()
out["lists_after_share"] = lists()
out["users_printed"] = run("GET_USERS")
out["revoke_printed"] = run("REVOKE")
out["after_revoke"] = sees()
out["lists_after_revoke"] = lists()
with open(OUT, "w") as f:
    json.dump(out, f)
"""


def _thresher(home: Path, *args: str) -> str:
    env = {**os.environ, "THRESHER_HOME": str(home)}
    env.pop("THRESHER_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "thresher", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path / "home", env={"THRESHER_PREFECT_SERVER": "off"}) as srv:
        yield srv


def _run_driver(
    kind: str, srv: ServerProcess, second_token: str, dataset_id: str, out: Path
) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THRESHER_", "LIGHTLY_"))}
    if kind == "lightly":
        env["PYTHONPATH"] = str(CLIENT_DIR)
        env["LIGHTLY_SERVER_LOCATION"] = srv.url
    else:
        env["PYTHONPATH"] = str(REPO)
        env["THRESHER_SERVER_URL"] = srv.url
    snippets = json.dumps({"SHARE": SHARE, "REVOKE": REVOKE, "GET_USERS": GET_USERS})
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            DRIVER.format(import_line=IMPORTS[kind]),
            srv.token,
            second_token,
            dataset_id,
            str(out),
        ],
        input=snippets,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("kind", ["ours", "lightly"])
def test_the_seeds_sharing_snippets(server: ServerProcess, tmp_path: Path, kind: str) -> None:
    if kind == "lightly" and not (CLIENT_DIR / "lightly-1.5.26.dist-info").is_dir():
        pytest.skip(
            f"Lightly's client is not in {CLIENT_DIR}; install it with .ci/run (or run "
            "tests/platform_e2e/test_lightly_client.py once, which installs it)"
        )
    second_token = _thresher(server.home, "user", "add", "user@something.com")
    _thresher(server.home, "user", "add", "additional_user2@something.com")
    t = {"token": server.token}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post("/v1/datasets", params=t, json={"name": "shared-dataset", "type": "Images"})
        assert r.status_code == 201, r.text
        d = r.json()["id"]
        owner = c.get(f"/v1/datasets/{d}", params=t).json()["userId"]

    got = _run_driver(kind, server, second_token, d, tmp_path / "out.json")

    assert got["before"] == {"status": 404}
    assert got["share_printed"] == ""
    assert got["after_share"] == {"name": "shared-dataset", "owner": owner}
    assert got["lists_after_share"] == {"shared": [d], "own": [], "all": [d]}
    assert got["users_printed"] == "['user@something.com', 'additional_user2@something.com']\n"
    assert got["after_revoke"] == {"status": 404}
    assert got["lists_after_revoke"] == {"shared": [], "own": [], "all": []}
    log = server.log_text()
    assert server.token not in log and second_token not in log
