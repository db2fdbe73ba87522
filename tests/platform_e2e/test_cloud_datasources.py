"""GCS, Azure and S3 delegated-access datasources end to end: a real ``thresher server start``,
a real ``thresher worker start --once``, the storage emulators on 127.0.0.1, our client.

Each run: INPUT + LIGHTLY on the emulator, ``list_datasource_permissions()`` all true, the run
COMPLETED, its report downloaded through the client, and no secret (service-account private
key, SAS token, temporary STS credentials, base AWS keys) in the server's database and home,
the server's and the worker's logs, the LIGHTLY bucket's objects or the downloaded files.

What each process needs in its environment (the same for server and worker):

- GCS: ``STORAGE_EMULATOR_HOST`` (gcsfs's own variable; only for an emulator) and
  ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` (the emulator lacks the newer API).
- Azure: ``AZURE_STORAGE_BLOB_ENDPOINT`` (Azurite's ``http://127.0.0.1:PORT/devstoreaccount1``;
  unset = ``https://ACCOUNT.blob.core.windows.net``).
- S3 delegated access: ``AWS_ENDPOINT_URL`` (for the emulator) and the process's OWN AWS
  identity (here ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, a different pair for the
  server and the worker), which assumes the customer's role with the external id.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_reliability import SELECTION, Server, _files_with, _follow, _free_port, _moto, _server

from thresher import ApiWorkflowClient, DatasourcePurpose

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / ".ci" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURE_ACCOUNT = "devstoreaccount1"  # Azurite's well-known development account
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
ALL_TRUE = {"can_read": True, "can_write": True, "can_list": True, "can_overwrite": True}


def _images(tmp: Path) -> Path:
    from thresher.examples import make_example_dataset

    return Path(make_example_dataset(tmp / "images", n_clusters=3, per_cluster=6).root)


def _image_files(root: Path) -> list[tuple[str, bytes]]:
    return [
        (str(p.relative_to(root)), p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()
    ]


def _run_and_download(
    client: ApiWorkflowClient, srv: Server, tmp: Path, worker_env: dict[str, str]
) -> Path:
    """Schedule a run on the dataset's datasources, run one worker, download the artifacts."""
    permissions = client.list_datasource_permissions()
    assert permissions == ALL_TRUE, permissions
    sid = client.schedule_compute_worker_run(
        worker_config={"enable_corruptness_check": True}, selection_config=SELECTION
    )
    worker = srv.worker("cloud-worker", tmp / "worker.txt", once=True, env=worker_env)
    try:
        infos = _follow(client, sid, 100)
    finally:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    worker_log = (tmp / "worker.txt").read_text(errors="replace")[-3000:]
    assert infos[-1].state == "COMPLETED", f"{infos[-1]}\n{worker_log}"
    run = client.get_compute_worker_run_from_scheduled_run(scheduled_run_id=sid)
    out = tmp / "downloaded"
    client.download_compute_worker_run_artifacts(run=run, output_dir=str(out))
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "report.json").is_file()
    assert "stage embed" in (out / "log.txt").read_text()
    return out


def _assert_no_secrets(
    wanted: dict[str, bytes], srv: Server, tmp: Path, bucket_copy: Path, out: Path
) -> None:
    """None of ``wanted`` in the server's home (its DB), the logs, the bucket or the outputs."""
    assert all(len(v) >= 16 for v in wanted.values()), "a short needle proves nothing"
    canary = tmp / "canary.bin"  # the search itself finds what it looks for
    name, value = next(iter(wanted.items()))
    canary.write_bytes(b"x" + value + b"x")
    assert f"{name} in {canary}" in _files_with(wanted, [canary])
    assert (srv.home / "thresher.db").is_file()
    roots = [srv.home, srv.log, tmp / "worker.txt", bucket_copy, out]
    assert any(bucket_copy.rglob("report.pdf")), "the LIGHTLY copy has the run's report"
    assert _files_with(wanted, [r for r in roots if r.exists()]) == []


def _copy_bucket(fs: Any, path: str, target: Path) -> Path:
    """Every object under ``path`` (an fsspec filesystem) into ``target``."""
    for key in fs.find(path):
        local = target / key.split(path.strip("/") + "/", 1)[-1]
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(fs.cat_file(key))
    return target


# --- GCS -----------------------------------------------------------------------------------


@contextmanager
def _oauth_token_server(access_token: str, calls: list[str]) -> Iterator[str]:
    """Google's OAuth token endpoint, as a service account's key file names it (``token_uri``).

    The GCS emulator ignores authorisation, but google-auth exchanges the key's signed JWT for
    an access token before its first request: this answers that exchange.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            calls.append(urllib.parse.parse_qs(form).get("grant_type", [""])[0])
            body = json.dumps(
                {"access_token": access_token, "expires_in": 3600, "token_type": "Bearer"}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


def _service_account(token_uri: str) -> dict[str, str]:
    """A syntactically valid service-account key file with a throwaway RSA key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "thresher-e2e",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": "thresher@thresher-e2e.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }


def test_gcs_service_account_datasources_end_to_end(tmp_path):
    pytest.importorskip("gcsfs")
    pytest.importorskip("cryptography")
    emulator = pytest.importorskip(
        "gcp_storage_emulator.server", reason="gcp-storage-emulator is not installed"
    )
    import fsspec

    port = _free_port()
    gcs = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket="thresher-e2e")
    gcs.start()
    access_token = "ya29.e2e-" + secrets.token_hex(16)
    token_calls: list[str] = []
    try:
        with _oauth_token_server(access_token, token_calls) as token_uri:
            sa = _service_account(token_uri)
            endpoint = {
                "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
                "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
            }
            fs = fsspec.filesystem(
                "gs",
                endpoint_url=endpoint["STORAGE_EMULATOR_HOST"],
                token="anon",
                project="thresher-e2e",
                skip_instance_cache=True,
            )
            for name, data in _image_files(_images(tmp_path)):
                fs.pipe_file(f"thresher-e2e/input/{name}", data)

            with _server(tmp_path, endpoint) as srv:
                client = srv.client()
                client.create_dataset("gcs-dataset")
                for purpose, path in [
                    (DatasourcePurpose.INPUT, "gs://thresher-e2e/input/"),
                    (DatasourcePurpose.LIGHTLY, "gs://thresher-e2e/lightly/"),
                ]:
                    client.set_gcs_config(
                        resource_path=path,
                        project_id="thresher-e2e",
                        credentials=json.dumps(sa),
                        purpose=purpose,
                    )
                out = _run_and_download(client, srv, tmp_path, srv.env)
            fs.invalidate_cache()
            bucket_copy = _copy_bucket(fs, "thresher-e2e/lightly", tmp_path / "bucket-lightly")
    finally:
        gcs.stop()

    # The server and the worker's flow process signed in with the key (a JWT grant each).
    assert len(token_calls) >= 2, token_calls
    assert set(token_calls) == {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, token_calls
    pem_lines = sa["private_key"].splitlines()[1:-1]
    wanted = {
        "private key line": pem_lines[3].encode(),
        "private key line (last)": pem_lines[-2].encode(),
        "private key id": sa["private_key_id"].encode(),
        "access token": access_token.encode(),
        "token": srv.token.encode(),
    }
    _assert_no_secrets(wanted, srv, tmp_path, bucket_copy, out)


# --- Azure ---------------------------------------------------------------------------------


@contextmanager
def _azurite(tmp: Path) -> Iterator[str]:
    """Azurite's blob service on a free port; its endpoint for the development account."""
    pytest.importorskip("adlfs")
    pytest.importorskip("azure.storage.blob")
    if not AZURITE.exists() or not shutil.which("node"):
        pytest.skip(
            f"Azurite is not installed ({AZURITE}): npm install --no-save --no-audit "
            "--no-fund --prefix .ci/azurite azurite (.ci/run does)"
        )
    port = _free_port()
    data = tmp / "azurite"
    data.mkdir()
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
    endpoint = f"http://127.0.0.1:{port}/{AZURE_ACCOUNT}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(endpoint, timeout=2)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Azurite did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        import os

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


def test_azure_sas_datasources_end_to_end(tmp_path):
    with _azurite(tmp_path) as endpoint:
        import fsspec
        from azure.storage.blob import (
            BlobServiceClient,
            ContainerSasPermissions,
            generate_container_sas,
        )

        admin = BlobServiceClient(account_url=endpoint, credential=AZURE_KEY)
        admin.create_container("thresher-e2e")
        container = admin.get_container_client("thresher-e2e")
        for name, data in _image_files(_images(tmp_path)):
            container.upload_blob(f"input/{name}", data)
        # What a customer hands out: a SAS for the one container, not the account key.
        sas = generate_container_sas(
            account_name=AZURE_ACCOUNT,
            container_name="thresher-e2e",
            account_key=AZURE_KEY,
            permission=ContainerSasPermissions(
                read=True, write=True, delete=True, list=True, add=True, create=True
            ),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        extra = {"AZURE_STORAGE_BLOB_ENDPOINT": endpoint}
        with _server(tmp_path, extra) as srv:
            client = srv.client()
            client.create_dataset("azure-dataset")
            for purpose, path in [
                (DatasourcePurpose.INPUT, "thresher-e2e/input/"),
                (DatasourcePurpose.LIGHTLY, "thresher-e2e/lightly/"),
            ]:
                client.set_azure_config(
                    container_name=path, account_name=AZURE_ACCOUNT, sas_token=sas, purpose=purpose
                )
            out = _run_and_download(client, srv, tmp_path, srv.env)
            # Azurite checks the signature: a wrong one is refused, by name.
            client.create_dataset("azure-wrong-sas")
            wrong = sas.replace("sig=", "sig=AAAA")
            for purpose in (DatasourcePurpose.INPUT, DatasourcePurpose.LIGHTLY):
                client.set_azure_config(
                    container_name="thresher-e2e/input/",
                    account_name=AZURE_ACCOUNT,
                    sas_token=wrong,
                    purpose=purpose,
                )
            refused = client.list_datasource_permissions()
            assert not refused["can_list"] and not refused["can_write"], refused
            assert wrong not in json.dumps(refused)
        fs = fsspec.filesystem(
            "az",
            connection_string=(
                f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};"
                f"AccountKey={AZURE_KEY};BlobEndpoint={endpoint};"
            ),
            skip_instance_cache=True,
        )
        bucket_copy = _copy_bucket(fs, "thresher-e2e/lightly", tmp_path / "bucket-lightly")

    signature = urllib.parse.parse_qs(sas)["sig"][0]
    wanted = {
        "SAS token": sas.encode(),
        "SAS signature": signature.encode(),
        "SAS signature (URL-encoded)": urllib.parse.quote(signature, safe="").encode(),
        "token": srv.token.encode(),
    }
    _assert_no_secrets(wanted, srv, tmp_path, bucket_copy, out)


# --- S3 delegated access -------------------------------------------------------------------


def _sts_credentials(endpoint: str) -> dict[str, bytes]:
    """Every temporary credential moto's STS handed out (its state, as JSON)."""
    state = httpx.get(f"{endpoint}/moto-api/data.json", timeout=30).json().get("sts", {})
    found: dict[str, bytes] = {}

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and any(
            part in key.lower() for part in ("secret", "session_token", "access_key")
        ):
            found[f"sts {key} #{len(found)}"] = node.encode()

    walk(state)
    return found


def test_s3_delegated_access_assumes_the_role_with_each_process_own_identity(tmp_path):
    boto3 = pytest.importorskip("boto3")
    server_identity = ("AKIASERVER" + secrets.token_hex(5).upper(), "srv-" + secrets.token_hex(16))
    worker_identity = ("AKIAWORKER" + secrets.token_hex(5).upper(), "wrk-" + secrets.token_hex(16))
    with _moto(tmp_path) as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="customer",
            aws_secret_access_key="customer-secret",
        )
        s3.create_bucket(Bucket="thresher-e2e")
        for name, data in _image_files(_images(tmp_path)):
            s3.put_object(Bucket="thresher-e2e", Key=f"input/{name}", Body=data)

        def aws(identity: tuple[str, str]) -> dict[str, str]:
            return {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": identity[0],
                "AWS_SECRET_ACCESS_KEY": identity[1],
                "AWS_DEFAULT_REGION": "us-east-1",
            }

        role = "arn:aws:iam::123456789012:role/thresher-delegated"
        external_id = "ext-" + secrets.token_hex(8)
        with _server(tmp_path, aws(server_identity)) as srv:
            client = srv.client()
            client.create_dataset("s3-delegated")
            for purpose, path in [
                (DatasourcePurpose.INPUT, "s3://thresher-e2e/input/"),
                (DatasourcePurpose.LIGHTLY, "s3://thresher-e2e/lightly/"),
            ]:
                client.set_s3_delegated_access_config(
                    resource_path=path,
                    region="us-east-1",
                    role_arn=role,
                    external_id=external_id,
                    purpose=purpose,
                )
            out = _run_and_download(client, srv, tmp_path, {**srv.env, **aws(worker_identity)})

        temporary = _sts_credentials(endpoint)
        assert len(temporary) >= 2, "the server and the worker assumed the role"
        bucket_copy = tmp_path / "bucket-lightly"
        for obj in s3.list_objects_v2(Bucket="thresher-e2e", Prefix="lightly/")["Contents"]:
            target = bucket_copy / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket="thresher-e2e", Key=obj["Key"])["Body"].read())

    worker_log = (tmp_path / "worker.txt").read_text(errors="replace")
    assert "Could not assume role" not in worker_log
    wanted = {
        **{k: v for k, v in temporary.items() if len(v) >= 16},
        "server's AWS secret": server_identity[1].encode(),
        "worker's AWS secret": worker_identity[1].encode(),
        "token": srv.token.encode(),
    }
    _assert_no_secrets(wanted, srv, tmp_path, bucket_copy, out)
