"""Lightly's real client (``lightly==1.5.26``) against a real server and worker, unchanged.

The client lives in ``.ci/lightly-client/`` (``pip install --no-deps --target``; ``.ci/run``
installs it, else the ``lightly_client`` fixture does) and runs in a subprocess with that folder
first on PYTHONPATH, so it never replaces the ``lightly`` the project trains with. The script
below is the seed's snippets (``shared/mission/first_steps.rst``) as a user runs them, with only
``LIGHTLY_SERVER_LOCATION`` and the token set; it records what it saw and this test asserts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.platform_e2e.conftest import THRESHER, Platform
from thresher import wire
from thresher.stages import STAGES

REPO = Path(__file__).resolve().parents[2]
CLIENT_DIR = REPO / ".ci" / "lightly-client"
LIGHTLY_VERSION = "1.5.26"
#: The install command (``.ci/run`` runs the same). lightly's own dependencies are in the venv
#: already (pydantic 2 with its ``pydantic.v1`` module, urllib3, requests, certifi, six, tqdm,
#: numpy, hydra-core...); only these two are missing.
PIP_INSTALL = [
    *("install", "--quiet", "--no-deps", "--target", str(CLIENT_DIR)),
    *(f"lightly=={LIGHTLY_VERSION}", "aenum", "python-dateutil"),
]


def _client_env(url: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THRESHER_", "LIGHTLY_"))}
    env["PYTHONPATH"] = str(CLIENT_DIR)
    env["LIGHTLY_SERVER_LOCATION"] = url
    env["LIGHTLY_TOKEN"] = token
    return env


def _import_check() -> subprocess.CompletedProcess[str]:
    code = (
        "import lightly; from lightly.api import ApiWorkflowClient; "
        "print(lightly.__version__, lightly.__file__)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=_client_env("http://127.0.0.1:1", "unused"),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def lightly_client() -> Path:
    """``.ci/lightly-client/`` with lightly 1.5.26 in it (installed here if missing)."""
    if not (CLIENT_DIR / f"lightly-{LIGHTLY_VERSION}.dist-info").is_dir():
        try:
            out = subprocess.run(
                [sys.executable, "-m", "pip", *PIP_INSTALL],
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            pytest.skip(f"cannot install lightly=={LIGHTLY_VERSION} into {CLIENT_DIR}: {e}")
        if out.returncode != 0:
            pytest.skip(
                f"cannot install lightly=={LIGHTLY_VERSION} into {CLIENT_DIR} (no PyPI?): "
                + out.stderr.strip()[-500:]
            )
    check = _import_check()
    assert check.returncode == 0, check.stderr
    version, where = check.stdout.split()
    assert version == LIGHTLY_VERSION and where.startswith(str(CLIENT_DIR)), check.stdout
    return CLIENT_DIR


# --- the script the user runs ----------------------------------------------------------------

SCRIPT = r'''
import json, os, sys, time, warnings

OUT, INPUT_PATH, LIGHTLY_PATH, OTHER_TOKEN = sys.argv[1:5]
results = {}


def save():
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)


def failure(call):
    """What ``call`` raised: {type, status, code, message}; None if it raised nothing."""
    try:
        call()
    except Exception as e:
        body = getattr(e, "body", None)
        try:
            code = json.loads(body)["code"] if body else None
        except ValueError:
            code = None
        return {"type": type(e).__name__, "status": getattr(e, "status", None), "code": code,
                "message": str(e)[:600]}
    return None


# The client sleeps 30 s between polls (rate limits at Lightly's); 0.1 s keeps the test short.
_real_sleep = time.sleep
time.sleep = lambda seconds: _real_sleep(min(seconds, 0.1))

import lightly
results["lightly"] = [lightly.__version__, lightly.__file__]

# ---- the seed, as written (token: LIGHTLY_TOKEN; the docs spell it out as token=) ----------

from lightly.api import ApiWorkflowClient
from lightly.openapi_generated.swagger_client.models.dataset_type import DatasetType

# Create the Lightly client to connect to the API.
client = ApiWorkflowClient(token=os.environ["LIGHTLY_TOKEN"])

# Create a new dataset on the Lightly Platform.
client.create_dataset(
    'dataset-name',
    DatasetType.IMAGES  # can be DatasetType.VIDEOS when working with videos
)
dataset_id = client.dataset_id
results["dataset_id"] = dataset_id

from lightly.openapi_generated.swagger_client.models.datasource_purpose import DatasourcePurpose

# Input bucket: a folder inside the worker's --input-mount
client.set_local_config(
    relative_path=INPUT_PATH,
    purpose=DatasourcePurpose.INPUT
)
# Lightly bucket: a folder inside the worker's --lightly-mount
client.set_local_config(
    relative_path=LIGHTLY_PATH,
    purpose=DatasourcePurpose.LIGHTLY
)

# The seed's worker_config keys are Lightly Worker 2 names: lightly 1.5.26 itself refuses them
# (its DockerWorkerConfigV4Docker has no such fields) before it sends anything.
try:
    scheduled_run_id = client.schedule_compute_worker_run(
        worker_config={
            "enable_corruptness_check": True,
            "remove_exact_duplicates": True,
        },
        selection_config={
            "n_samples": 5,
            "strategies": [
                {
                    "input": {
                        "type": "EMBEDDINGS"
                    },
                    "strategy": {
                        "type": "DIVERSITY"
                    }
                }
            ]
        }
    )
except ValueError as e:
    results["v2_worker_config"] = str(e)
else:
    raise SystemExit("lightly 1.5.26 accepted the Worker 2 worker_config keys")

# The same run in the V4 spelling (both switches are on by default, in thresher as in Lightly).
scheduled_run_id = client.schedule_compute_worker_run(
    worker_config={
        "corruptness_check": {"corruption_threshold": 0.1},
    },
    selection_config={
        "n_samples": 5,
        "strategies": [
            {
                "input": {
                    "type": "EMBEDDINGS"
                },
                "strategy": {
                    "type": "DIVERSITY"
                }
            }
        ]
    }
)
results["scheduled_run_id"] = scheduled_run_id
results["scheduled"] = [r.to_dict() for r in client.get_scheduled_compute_worker_runs()]
save()

"""
You can use this code to track and print the state of the compute worker.
The loop will end once the compute worker run has finished, was canceled or aborted/failed.
"""
for run_info in client.compute_worker_run_info_generator(scheduled_run_id=scheduled_run_id):
    print(f"Compute worker run is now in state='{run_info.state}' with message='{run_info.message}'")
    results.setdefault("states", []).append([str(run_info.state), run_info.message])

if run_info.ended_successfully():
    print("SUCCESS")
else:
    print("FAILURE")
results["ended_successfully"] = run_info.ended_successfully()
save()

# download the report as .pdf (1.5.26 names it ..._from_scheduled_run; the seed's docs use the
# older ..._from_scheduled, which 1.5.26 no longer has)
results["has_old_name"] = hasattr(client, "get_compute_worker_run_from_scheduled")
run = client.get_compute_worker_run_from_scheduled_run(scheduled_run_id=scheduled_run_id)
client.download_compute_worker_run_report_pdf(run=run, output_path=os.path.join(OUT, "my_run/artifacts/report.pdf"))

# download the report as .json (deprecated in 1.5.26: it warns)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    client.download_compute_worker_run_report_json(run=run, output_path=os.path.join(OUT, "my_run/artifacts/report.json"))

# download the log file
client.download_compute_worker_run_log(run=run, output_path=os.path.join(OUT, "my_run/artifacts/log.txt"))

# download the memory log file
client.download_compute_worker_run_memory_log(run=run, output_path=os.path.join(OUT, "my_run/artifacts/memlog.txt"))
client.download_compute_worker_run_corruptness_check_information(
    run=run, output_path=os.path.join(OUT, "my_run/artifacts/corruptness_check_information.json")
)
client.download_compute_worker_run_artifacts(run=run, output_dir=os.path.join(OUT, "all"))
results["run"] = run.to_dict()
# no training, so no checkpoint
results["checkpoint"] = failure(lambda: client.download_compute_worker_run_checkpoint(
    run=run, output_path=os.path.join(OUT, "checkpoint.ckpt")))
results["checkpoint_url"] = failure(lambda: client.get_compute_worker_run_checkpoint_url(run=run))
save()

# ---- the neighbouring methods ------------------------------------------------------------

results["runs"] = [r.id for r in client.get_compute_worker_runs()]
results["runs_of_dataset"] = [r.id for r in client.get_compute_worker_runs(dataset_id=dataset_id)]
results["run_by_id"] = client.get_compute_worker_run(run.id).to_dict()
results["run_tags"] = [t.to_dict() for t in client.get_compute_worker_run_tags(run.id)]
results["tags"] = [t.name for t in client.get_all_tags()]
results["initial_tag_files"] = client.get_filenames_in_tag(client.get_tag_by_name("initial-tag"))
results["tag_made"] = client.create_tag_from_filenames(results["initial_tag_files"][:2], "two").id
results["tag_two_files"] = client.get_filenames_in_tag(client.get_tag_by_name("two"))
client.delete_tag_by_name("two")
results["tags_after"] = [t.name for t in client.get_all_tags()]
results["run_info_after"] = str(client.get_compute_worker_run_info(scheduled_run_id).state)
results["scheduled_done"] = [r.id for r in client.get_scheduled_compute_worker_runs(state="DONE")]
results["scheduled_after"] = [r.id for r in client.get_scheduled_compute_worker_runs()]

results["datasets"] = [d.to_dict() for d in client.get_datasets()]
results["datasets_shared"] = [d.id for d in client.get_datasets(shared=True)]
results["datasets_all"] = [d.id for d in client.get_datasets(shared=None)]
results["dataset_by_id"] = client.get_dataset_by_id(dataset_id).name
results["dataset_exists"] = [client.dataset_exists(dataset_id), client.dataset_exists("0" * 24)]
results["dataset_name_exists"] = [client.dataset_name_exists("dataset-name"),
                                  client.dataset_name_exists("no-such-dataset")]
results["dataset_type"] = client.dataset_type
results["create_existing"] = failure(lambda: client.create_dataset("dataset-name"))
client.create_new_dataset_with_unique_name("dataset-name")
second_id = client.dataset_id
results["unique_name"] = client.get_dataset_by_id(second_id).name
client.set_dataset_id_by_name("dataset-name")
results["set_by_name"] = client.dataset_id
results["set_by_name_missing"] = failure(lambda: client.set_dataset_id_by_name("no-such-dataset"))
results["datasource"] = client.get_datasource().to_dict()
results["permissions"] = client.list_datasource_permissions()

# a new client: token from LIGHTLY_TOKEN, dataset from the constructor
again = ApiWorkflowClient(dataset_id=dataset_id)
results["env_token_client"] = [again.dataset_id, again.get_datasource().actual_instance.full_path]

worker_id = client.register_compute_worker(name="extra-worker", labels=["gpu"])
results["register_again"] = client.register_compute_worker(name="extra-worker", labels=["gpu"]) == worker_id
results["worker_ids"] = client.get_compute_worker_ids()
results["workers"] = [w.to_dict() for w in client.get_compute_workers()]
client.delete_compute_worker(worker_id)
results["workers_after_delete"] = [w.name for w in client.get_compute_workers()]

# Cloud datasources: set_* only stores the config (no bucket is touched); reads mask secrets.
client.dataset_id = second_id
client.set_s3_config(
    resource_path="s3://bucket/input/",
    region='eu-central-1',
    access_key='S3-ACCESS-KEY',
    secret_access_key='S3-SECRET-ACCESS-KEY',
    purpose=DatasourcePurpose.INPUT
)
results["set_s3_returned"] = client.set_s3_config(
    resource_path="s3://bucket/lightly/",
    region='eu-central-1',
    access_key='S3-ACCESS-KEY',
    secret_access_key='S3-SECRET-ACCESS-KEY',
    purpose=DatasourcePurpose.LIGHTLY
)
results["s3"] = client.get_datasource().actual_instance.to_dict()
client.set_s3_delegated_access_config(
    resource_path="s3://bucket/input/",
    region='eu-central-1',
    role_arn='arn:aws:iam::123456789012:role/lightly-access',
    external_id='S3-EXTERNAL-ID',
    purpose=DatasourcePurpose.INPUT
)
results["s3_delegated"] = client.get_datasource().actual_instance.to_dict()
client.set_gcs_config(
    resource_path="gs://bucket/input/",
    project_id="PROJECT-ID",
    credentials=json.dumps({"type": "service_account", "private_key": "GCS-SECRET-KEY"}),
    purpose=DatasourcePurpose.INPUT
)
results["gcs"] = client.get_datasource().actual_instance.to_dict()
client.set_azure_config(
    container_name='my-container/input/',
    account_name='ACCOUNT-NAME',
    sas_token='AZURE-SAS-SECRET',
    purpose=DatasourcePurpose.INPUT
)
results["azure"] = client.get_datasource().actual_instance.to_dict()

# Lightly's generated cancel (it has no public method) on an OPEN run no worker can take.
client.dataset_id = dataset_id
cancel_me = client.schedule_compute_worker_run(
    selection_config={"n_samples": 2, "strategies": [
        {"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]},
    priority="HIGH",
    runs_on=["no-worker-has-this-label"],
)
results["cancel_me"] = cancel_me
results["cancel_me_info"] = [str(client.get_compute_worker_run_info(cancel_me).state)]
results["cancel_me_scheduled"] = [r.to_dict() for r in client.get_scheduled_compute_worker_runs()]
client._compute_worker_api.cancel_scheduled_docker_run_state_by_id(
    dataset_id=dataset_id, scheduled_id=cancel_me)
infos = list(client.compute_worker_run_info_generator(scheduled_run_id=cancel_me))
results["cancelled_infos"] = [[str(i.state), i.message] for i in infos]
results["cancelled_ended_successfully"] = infos[-1].ended_successfully()
results["scheduled_canceled"] = [r.id for r in client.get_scheduled_compute_worker_runs(state="CANCELED")]
results["cancel_again"] = failure(lambda: client._compute_worker_api.cancel_scheduled_docker_run_state_by_id(
    dataset_id=dataset_id, scheduled_id=cancel_me))

# errors: Lightly's statuses and codes
results["unknown_dataset"] = failure(lambda: client.get_dataset_by_id("0" * 24))
results["unknown_run"] = failure(lambda: client.get_compute_worker_run("0" * 24))
results["escape"] = failure(lambda: client.set_local_config(relative_path="a/../../x", purpose=DatasourcePurpose.INPUT))
results["bad_selection"] = failure(lambda: client.schedule_compute_worker_run(
    selection_config={"n_samples": 2, "strategies": [
        {"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "NO_SUCH_STRATEGY"}}]}))
client.create_dataset("no-datasources")
results["no_datasource"] = failure(lambda: client.schedule_compute_worker_run(
    selection_config={"n_samples": 2, "strategies": [
        {"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]}))
client.delete_dataset_by_id(client.dataset_id)
client.dataset_id = dataset_id  # delete_dataset_by_id clears it, whichever dataset it deleted
client.delete_dataset_by_id(second_id)
results["after_delete"] = [d.name for d in client.get_datasets()]

# another user's token: refused on this user's dataset, run and scheduled run
other = ApiWorkflowClient(token=OTHER_TOKEN, dataset_id=dataset_id)
results["other_dataset"] = failure(lambda: other.get_dataset_by_id(dataset_id))
results["other_datasource"] = failure(lambda: other.get_datasource())
results["other_run"] = failure(lambda: other.get_compute_worker_run(run.id))
results["other_runs"] = [r.id for r in other.get_compute_worker_runs()]
results["other_run_info"] = failure(lambda: other.get_compute_worker_run_info(scheduled_run_id))

# a wrong token: 403
from lightly.openapi_generated.swagger_client.rest import ApiException
wrong = ApiWorkflowClient(token="not-a-token")
try:
    wrong.get_datasets()
except ApiException as e:
    results["wrong_token"] = {"status": e.status, "body": json.loads(e.body)}

from lightly.openapi_generated.swagger_client.models.api_error_code import ApiErrorCode
codes = {v["code"] for v in results.values() if isinstance(v, dict) and v.get("code")}
results["codes_not_lightlys"] = sorted(c for c in codes if c not in {x.value for x in ApiErrorCode})
save()
print("SCRIPT DONE")
'''


def _start_worker(platform: Platform, name: str, token: str) -> subprocess.Popen[bytes]:
    """``thresher worker start --once`` as ``token``'s user (output in ``logs/<name>.txt``)."""
    env = {**platform.env, "THRESHER_TOKEN": token}
    cmd = [
        *THRESHER,
        *("worker", "start", "--worker-id", name, "--once", "--server", platform.url),
        *("--input-mount", str(platform.input_mount)),
        *("--lightly-mount", str(platform.lightly_mount)),
    ]
    log = open(platform.logs / f"{name}.txt", "ab")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _add_user(platform: Platform, email: str, token: str) -> str:
    subprocess.run(
        [*THRESHER, "user", "add", email, "--token", token],
        env=platform.env,
        check=True,
        capture_output=True,
    )
    return token


def test_the_real_client_runs_the_first_steps(
    platform: Platform, images: str, lightly_client: Path, tmp_path: Path
) -> None:
    # Its own user: the worker and every listing see only this test's objects.
    token = _add_user(platform, "real-client@example.com", "lightly-real-client-0123456789abcdef")
    (platform.lightly_mount / "lightly-real").mkdir(exist_ok=True)
    out = tmp_path / "out"
    out.mkdir()
    worker = _start_worker(platform, "real-client-worker", token)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(out), images, "lightly-real", platform.token],
            env=_client_env(platform.url, token),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=540,
        )
    finally:
        if worker.poll() is None:
            worker.terminate()
        worker.wait(timeout=60)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "SCRIPT DONE" in proc.stdout
    r: dict[str, Any] = json.loads((out / "results.json").read_text())
    dataset_id, scheduled_run_id = r["dataset_id"], r["scheduled_run_id"]

    assert r["lightly"][0] == LIGHTLY_VERSION and r["lightly"][1].startswith(str(CLIENT_DIR))
    assert "enableCorruptnessCheck" in r["v2_worker_config"]  # refused by the client itself
    [scheduled] = r["scheduled"]
    assert scheduled["id"] == scheduled_run_id and scheduled["dataset_id"] == dataset_id
    assert scheduled["state"] in ("OPEN", "LOCKED") and scheduled["priority"] == "MID"
    assert scheduled["runs_on"] == []

    # monitoring: waiting, then Lightly's run states with messages, then COMPLETED
    states = [s for s, _ in r["states"]]
    assert states[-1] == "COMPLETED" and r["ended_successfully"] is True
    assert states[0] in ("DockerRunScheduledState.OPEN", "INITIALIZING"), states
    # The stages' states in their order: polling may miss a short one (the embedding of a few
    # images can take less than a poll), never reorder them; log.txt below has every stage.
    order = list(dict.fromkeys(s.run_state for s in STAGES))
    seen = [order.index(s) for s in states if s in order]
    assert len(set(seen)) >= 2 and seen == sorted(seen), states
    assert all(m for _, m in r["states"]), r["states"]
    assert "selected 5 of" in r["states"][-1][1]
    assert "SUCCESS" in proc.stdout

    # the run and its artifacts
    run = r["run"]
    assert run["state"] == "COMPLETED" and run["scheduled_id"] == scheduled_run_id
    assert run["dataset_id"] == dataset_id
    types = {a["type"] for a in run["artifacts"]}
    assert {"LOG", "MEMLOG", "REPORT_PDF", "REPORT_JSON", "CORRUPTNESS_CHECK_INFORMATION"} <= types
    assert r["has_old_name"] is False
    arts = out / "my_run" / "artifacts"
    assert (arts / "report.pdf").read_bytes().startswith(b"%PDF")
    assert json.loads((arts / "report.json").read_text())
    assert "stage embed" in (arts / "log.txt").read_text()
    assert (arts / "memlog.txt").stat().st_size > 0
    info = json.loads((arts / "corruptness_check_information.json").read_text())
    assert len(info["corrupt_samples"]) > 0
    every = {p.name for p in (out / "all").iterdir()}
    assert {a["file_name"] for a in run["artifacts"]} == every
    produced = platform.lightly_mount / "lightly-real" / ".lightly" / "runs" / run["id"]
    assert (produced / "report.pdf").read_bytes() == (arts / "report.pdf").read_bytes()
    for key in ("checkpoint", "checkpoint_url"):
        assert r[key]["type"] == "ArtifactNotExist", r[key]

    # runs and scheduled runs
    assert r["runs"] == r["runs_of_dataset"] == [run["id"]]
    assert r["run_by_id"] == run
    (tag,) = r["run_tags"]  # the first run made initial-tag, linked to it
    assert tag["name"] == "initial-tag" and tag["run_id"] == run["id"]
    assert tag["prev_tag_id"] is None and tag["tot_size"] == 5
    assert r["tags"] == r["tags_after"] == ["initial-tag"]
    selected = (produced / "filenames" / "selected.txt").read_text().split()
    assert r["initial_tag_files"] == selected
    assert r["tag_two_files"] == selected[:2]
    assert r["run_info_after"] == "COMPLETED"
    assert r["scheduled_done"] == [scheduled_run_id] and r["scheduled_after"] == []

    # datasets
    [dataset] = [d for d in r["datasets"] if d["id"] == dataset_id]
    assert dataset["name"] == "dataset-name" and dataset["type"] == "Images"
    assert r["datasets_shared"] == [] and dataset_id in r["datasets_all"]
    assert r["dataset_by_id"] == "dataset-name" and r["dataset_type"] == "Images"
    assert r["dataset_exists"] == [True, False] and r["dataset_name_exists"] == [True, False]
    assert r["create_existing"]["type"] == "ValueError"
    assert r["unique_name"] == "dataset-name_1"
    assert r["set_by_name"] == dataset_id
    assert "does not exist" in r["set_by_name_missing"]["message"]
    assert r["after_delete"] == ["dataset-name"]

    # datasources
    assert r["datasource"]["type"] == "LOCAL" and r["datasource"]["full_path"] == images
    assert r["permissions"] == {
        "can_read": True,
        "can_write": True,
        "can_list": True,
        "can_overwrite": True,
    }
    assert r["env_token_client"] == [dataset_id, images]
    assert r["set_s3_returned"] is None
    s3 = r["s3"]
    assert (
        s3["type"] == "S3" and s3["purpose"] == "INPUT" and s3["full_path"] == "s3://bucket/input/"
    )
    assert s3["s3_region"] == "eu-central-1" and s3["s3_access_key_id"] == "S3-ACCESS-KEY"
    assert s3["s3_secret_access_key"] == wire.SECRET_MASK
    delegated = r["s3_delegated"]
    assert delegated["type"] == "S3DelegatedAccess"
    assert delegated["s3_arn"] == "arn:aws:iam::123456789012:role/lightly-access"
    assert delegated["s3_external_id"] == "S3-EXTERNAL-ID"
    assert r["gcs"]["gcs_credentials"] == wire.SECRET_MASK
    assert r["gcs"]["gcs_project_id"] == "PROJECT-ID"
    assert r["azure"]["account_key"] == wire.SECRET_MASK
    assert r["azure"]["account_name"] == "ACCOUNT-NAME"
    secrets = ("S3-SECRET-ACCESS-KEY", "GCS-SECRET-KEY", "AZURE-SAS-SECRET")
    server_log = (platform.logs / "server.txt").read_text(errors="replace")
    assert not [s for s in secrets if s in json.dumps(r) or s in server_log]
    assert token not in server_log

    # workers
    assert r["register_again"] is True
    names = {w["name"]: w for w in r["workers"]}
    assert set(names) == {"real-client-worker", "extra-worker"}
    assert sorted(r["worker_ids"]) == sorted(w["id"] for w in r["workers"])
    assert (
        names["extra-worker"]["labels"] == ["gpu"] and names["extra-worker"]["state"] == "OFFLINE"
    )
    assert r["workers_after_delete"] == ["real-client-worker"]

    # cancelling an OPEN run with Lightly's generated API ends monitoring
    [waiting] = [s for s in r["cancel_me_scheduled"] if s["id"] == r["cancel_me"]]
    assert waiting["priority"] == "HIGH" and waiting["runs_on"] == ["no-worker-has-this-label"]
    assert r["cancel_me_info"] == ["DockerRunScheduledState.OPEN"]
    assert [s for s, _ in r["cancelled_infos"]] == ["CANCELED_OR_NOT_EXISTING"]
    assert r["cancelled_ended_successfully"] is False
    assert r["scheduled_canceled"] == [r["cancel_me"]]
    assert r["cancel_again"]["status"] == 409

    # errors
    assert (r["unknown_dataset"]["status"], r["unknown_dataset"]["code"]) == (
        404,
        "DATASET_UNKNOWN",
    )
    assert (r["unknown_run"]["status"], r["unknown_run"]["code"]) == (404, "DOCKER_RUN_UNKNOWN")
    assert (r["escape"]["status"], r["escape"]["code"]) == (400, "BAD_REQUEST")
    assert "'..'" in r["escape"]["message"]
    assert r["bad_selection"]["type"] == "ValidationError"  # the client's own check
    nothing = r["no_datasource"]
    assert (nothing["status"], nothing["code"]) == (422, "DATASET_DATASOURCE_UNKNOWN")
    assert "no INPUT and no LIGHTLY datasource" in nothing["message"]
    # another user's dataset and run answer as unknown ones do: ids cannot be probed
    assert (r["other_dataset"]["status"], r["other_dataset"]["code"]) == (404, "DATASET_UNKNOWN")
    assert (r["other_datasource"]["status"], r["other_datasource"]["code"]) == (
        404,
        "DATASET_UNKNOWN",
    )
    assert (r["other_run"]["status"], r["other_run"]["code"]) == (404, "DOCKER_RUN_UNKNOWN")
    assert run["id"] not in r["other_runs"]
    # both lookups answer 404, which Lightly's client reports as the dataset being gone
    assert r["other_run_info"]["type"] == "DatasetNotFoundError", r["other_run_info"]
    assert r["wrong_token"]["status"] == 403
    assert r["wrong_token"]["body"]["code"] == "FORBIDDEN"
    assert r["codes_not_lightlys"] == []


# --- every response model, as full as it gets, parses with the real client's models ---------

CHECK = r"""
import importlib, json, sys
fails = []
for target, items in json.load(open(sys.argv[1])).items():
    module, name = target.rsplit(".", 1)
    klass = getattr(importlib.import_module(
        "lightly.openapi_generated.swagger_client.models." + module), name)
    for item in items:
        try:
            # DatasourceConfig is a oneOf wrapper: from_json picks the variant by "type".
            obj = klass.from_json(json.dumps(item)) if name == "DatasourceConfig" else klass.from_dict(item)
            assert obj is not None, "parsed to None"
        except Exception as e:
            fails.append([target, item, f"{type(e).__name__}: {e}"[:600]])
print(json.dumps(fails))
"""


def _full_payloads() -> dict[str, list[dict[str, Any]]]:
    """Each response model of ``thresher.wire`` with every optional field set, every enum value."""
    i, t, w = "a" * 24, 1_700_000_000_000, wire
    kms = "arn:aws:kms:eu-central-1:123456789012:key/abc"
    out: dict[str, list[dict[str, Any]]] = {}

    def add(target: str, model: wire.WireModel) -> None:
        out.setdefault(target, []).append(model.wire())

    add("create_entity_response.CreateEntityResponse", w.CreateEntityResponse(id=i))
    add(
        "api_error_response.ApiErrorResponse",
        w.ApiErrorResponse(code="FORBIDDEN", error="e", request_id="r", error_labels=["x"]),
    )
    for dataset_type in w.DatasetType:
        for img_type in ("full", "thumbnail", "meta"):
            add(
                "dataset_data.DatasetData",
                w.DatasetData(
                    id=i,
                    name="abc",
                    user_id="u",
                    type=dataset_type,
                    n_samples=3,
                    size_in_bytes=4,
                    created_at=t,
                    last_modified_at=t,
                    img_type=img_type,  # type: ignore[arg-type]
                    access_type="WRITE",
                    datasource_processed_until_timestamp=5,
                ),
            )
    ds = "datasource_config.DatasourceConfig"
    for purpose in w.DatasourcePurpose:
        base: dict[str, Any] = {"purpose": purpose, "id": i, "thumb_suffix": "t"}
        add(ds, w.DatasourceConfigLocal(**base, full_path="a/b", web_server_location="http://x"))
        add(
            ds,
            w.DatasourceConfigS3(
                **base,
                full_path="s3://b/p/",
                s3_region="eu-central-1",
                s3_access_key_id="k",
                s3_secret_access_key=w.SECRET_MASK,
                s3_server_side_encryption_kms_key=kms,
            ),
        )
        add(
            ds,
            w.DatasourceConfigS3DelegatedAccess(
                **base,
                full_path="s3://b/p/",
                s3_region="us-east-1",
                s3_external_id="external-id",
                s3_arn="arn:aws:iam::123456789012:role/r",
                s3_server_side_encryption_kms_key=kms,
            ),
        )
        add(
            ds,
            w.DatasourceConfigGCS(
                **base, full_path="gs://b/p/", gcs_project_id="p", gcs_credentials=w.SECRET_MASK
            ),
        )
        add(
            ds,
            w.DatasourceConfigAzure(
                **base, full_path="c/p/", account_name="a", account_key=w.SECRET_MASK
            ),
        )
    errors = w.DatasourceVerifyErrors(can_read="a", can_write="b", can_list="c", can_overwrite="d")
    for e in (errors, None):
        add(
            "datasource_config_verify_data.DatasourceConfigVerifyData",
            w.DatasourceRawSamplesPermissions(
                can_read=e is None,
                can_write=False,
                can_list=False,
                can_overwrite=False,
                errors=e,
            ),
        )
    for state in w.DockerWorkerState:
        add(
            "docker_worker_registry_entry_data.DockerWorkerRegistryEntryData",
            w.DockerWorkerRegistryEntryData(
                id=i,
                user_id="u",
                name="abc",
                state=state,
                created_at=t,
                last_modified_at=t,
                labels=["x"],
                is_default=False,
                docker_version="1",
            ),
        )
    for sstate in w.DockerRunScheduledState:
        for priority in w.DockerRunScheduledPriority:
            add(
                "docker_run_scheduled_data.DockerRunScheduledData",
                w.DockerRunScheduledData(
                    id=i,
                    dataset_id=i,
                    config_id=i,
                    priority=priority,
                    runs_on=["x"],
                    state=sstate,
                    created_at=t,
                    last_modified_at=t,
                    user_id="u",
                    owner=i,
                ),
            )
    artifacts = [
        w.DockerRunArtifactData(
            id=i, type=kind, file_name="f", storage_location=where, created_at=t
        )
        for kind in w.DockerRunArtifactType
        for where in ("LIGHTLY", "DATASOURCE")
    ]
    for a in artifacts:
        add("docker_run_artifact_data.DockerRunArtifactData", a)
    for rstate in w.DockerRunState:
        add(
            "docker_run_data.DockerRunData",
            w.DockerRunData(
                id=i,
                user_id="u",
                docker_version="1",
                state=rstate,
                created_at=t,
                last_modified_at=t,
                dataset_id=i,
                config_id=i,
                scheduled_id=i,
                message="m",
                artifacts=artifacts,
                archived=False,
            ),
        )
    for prev, run_id in ((None, None), (i, i)):
        add(
            "tag_data.TagData",
            w.TagData(
                id=i,
                dataset_id=i,
                prev_tag_id=prev,
                name="initial-tag",
                bit_mask_data="0x1f",
                tot_size=5,
                created_at=t,
                last_modified_at=t,
                run_id=run_id,
            ),
        )
    return out


def test_every_response_model_parses_with_the_real_client(
    lightly_client: Path, tmp_path: Path
) -> None:
    """The real client validates with ``extra="forbid"``, its enums and patterns: a field, enum
    value or shape added to ``thresher.wire`` that it cannot read fails here, not at a user's."""
    payloads = tmp_path / "payloads.json"
    payloads.write_text(json.dumps(_full_payloads()))
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, str(payloads)],
        env=_client_env("http://127.0.0.1:1", "unused"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout) == []


def test_the_wire_refuses_configs_the_real_client_could_not_read_back() -> None:
    """Lightly's datasource constraints hold on our side too (a PUT that breaks one is a 400)."""
    from pydantic import ValidationError

    base: dict[str, Any] = {"full_path": "s3://b/p/", "s3_region": "eu-central-1"}
    bad: list[tuple[type[wire.WireModel], dict[str, Any]]] = [
        (
            wire.DatasourceConfigS3DelegatedAccess,
            {**base, "s3_external_id": "external-id", "s3_arn": "not-an-arn-of-a-role"},
        ),
        (
            wire.DatasourceConfigS3DelegatedAccess,
            {
                **base,
                "s3_external_id": "has spaces in it",
                "s3_arn": "arn:aws:iam::123456789012:role/r",
            },
        ),
        (
            wire.DatasourceConfigS3,
            {
                **base,
                "s3_access_key_id": "k",
                "s3_secret_access_key": "s",
                "s3_server_side_encryption_kms_key": "k",
            },
        ),
        (wire.DatasourceConfigS3, {**base, "s3_access_key_id": "", "s3_secret_access_key": "s"}),
        (wire.DatasourceConfigAzure, {"full_path": "c/", "account_name": "a", "account_key": ""}),
        (wire.DatasourceConfigLocal, {"full_path": "a", "web_server_location": "localhost:3456"}),
    ]
    for model, fields in bad:
        with pytest.raises(ValidationError):
            model(**fields)
