"""Secrets: deliberately recognisable fake credentials, and every byte of output searched.

Each scenario hands thresher credentials only through the environment (the CLI) or through the
client's ``set_*_config`` (the platform), runs it for real, then searches every file it could
have written: the LIGHTLY location (copied out of the bucket: results, report, log.txt,
memlog.txt), Prefect's home (its database and logs), the server's home (``thresher.db``: the
datasource secrets are Fernet-encrypted, so its raw bytes must not hold them), the captured
stdout and stderr of every process (exception texts and tracebacks included) and the server's
log (its HTTP access lines). Each secret is searched raw, URL-encoded and base64-encoded (at the
three byte alignments); a canary file proves the search finds what it looks for.

The emulators accept any S3 key (moto) and any Google service account (the token exchange is
answered here); Azurite checks SAS signatures against its well-known development key, so the
Azure secret is a SAS made from that key: its signature is what must never appear (and the
account key itself, which thresher is never given, neither).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
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
from faulty_proxy import Faults, faulty_proxy
from test_flaky_storage import BUCKET, Moto, free_port, moto_dataset

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / ".ci" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURE_ACCOUNT = "devstoreaccount1"
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AWS_KEY_ID = "AKIAFAKESECRET0001"
AWS_SECRET = "FAKESECRETKEYabcdefghijklmnopqrstuvwxyz0123"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """The S3 emulator (it accepts any key) with a tiny planted dataset in ``input/``."""
    with moto_dataset(tmp_path_factory.mktemp("secrets")) as m:
        yield m


# --- the search ----------------------------------------------------------------------------


def encodings(secret: str) -> dict[str, bytes]:
    """``secret`` as it could leak: raw, URL-encoded, and base64 at each byte alignment."""
    raw = secret.encode()
    out = {"raw": raw, "url-encoded": urllib.parse.quote(secret, safe="").encode()}
    for k in range(3):
        for name, enc in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            # The first 4 and last 4 characters depend on the bytes around the secret.
            inner = enc(b"\0" * k + raw)[4:-4]
            out[f"{name}+{k}"] = inner
    return out


def search(named: dict[str, str], roots: list[Path], canary_dir: Path) -> list[str]:
    """Where any form of any secret occurs under ``roots``, as ``'<name> (<form>) in <file>'``."""
    needles = {
        f"{name} ({form})": value
        for name, secret in named.items()
        for form, value in encodings(secret).items()
    }
    assert all(len(v) >= 12 for v in needles.values()), "a short needle proves nothing"
    canary = canary_dir / "canary.bin"
    first = next(iter(named.values()))
    canary.write_bytes(b"<<" + base64.b64encode(b"x" + first.encode()) + b">>")
    files = [canary]
    for root in roots:
        assert root.exists(), root
        files += [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    assert len(files) > len(roots), "nothing was written where output was expected"
    found = []
    for path in files:
        data = path.read_bytes()
        found += [f"{name} in {path}" for name, value in needles.items() if value in data]
    assert any(str(canary) in f for f in found), "the search misses a base64-encoded secret"
    return [f for f in found if str(canary) not in f]


def copy_tree(fs: Any, path: str, target: Path) -> Path:
    """Every object under ``path`` on ``fs`` into ``target`` (the LIGHTLY location's bytes)."""
    fs.invalidate_cache()
    for key in fs.find(path):
        local = target / key.split(path.strip("/") + "/", 1)[-1]
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(fs.cat_file(key))
    assert any(target.rglob("*")), f"nothing under {path}"
    return target


def base_env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """This test process's environment without credentials, with its own Prefect home."""
    drop = ("AWS_", "FSSPEC_", "GOOGLE_", "AZURE_", "THRESHER_", "STORAGE_EMULATOR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.pop("PREFECT_API_URL", None)
    prefect_home.mkdir(parents=True, exist_ok=True)
    env.update(PREFECT_HOME=str(prefect_home), THRESHER_PROGRESS="0")
    env.update(extra)
    return env


def cli(out: Path, env: dict[str, str], *args: str) -> int:
    """``thresher run ARGS`` with stdout and stderr in ``out/{stdout,stderr}.txt``."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "stdout.txt").open("wb") as so, (out / "stderr.txt").open("wb") as se:
        cmd = [sys.executable, "-m", "thresher", "run", *args, "--n-samples", "4"]
        return subprocess.run(cmd, stdout=so, stderr=se, env=env, timeout=540).returncode


# --- S3: a run, a failing run, a crashing run (the CLI) ------------------------------------


def s3_env(prefect_home: Path, endpoint: str) -> dict[str, str]:
    return base_env(
        prefect_home,
        AWS_ACCESS_KEY_ID=AWS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=AWS_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        FSSPEC_S3='{"config_kwargs": {"connect_timeout": 2, "read_timeout": 2}}',
    )


@pytest.mark.slow
def test_cli_runs_on_s3_that_finish_fail_or_crash_leak_no_key(moto: Moto, tmp_path: Path) -> None:
    inp = f"s3://{BUCKET}/input"
    done = tmp_path / "done"
    rc = cli(done, s3_env(done / "prefect", moto.endpoint), inp, "--lightly", f"s3://{BUCKET}/ok")
    assert rc == 0, (done / "stderr.txt").read_text()[-3000:]

    # A failing run: one input object always answers 500, so the run ends with an error that
    # names it (an exception text in Prefect's database, log.txt and stderr).
    failed = tmp_path / "failed"
    victim = next(n for n in moto.names if n not in moto.corrupt)
    with faulty_proxy(moto.endpoint, Faults(always={f"input/{victim}": 500})) as proxy:
        env = s3_env(failed / "prefect", proxy.url)
        rc = cli(failed, env, inp, "--lightly", f"s3://{BUCKET}/failed", "--verbose")
    stderr = (failed / "stderr.txt").read_text()
    assert rc == 2 and victim in stderr, stderr[-3000:]

    # A crashing run: SIGKILL the whole process group once the corruption check has finished.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    cmd = [sys.executable, "-m", "thresher", "run", inp, "--lightly", f"s3://{BUCKET}/crashed"]
    with (crashed / "stdout.txt").open("wb") as so, (crashed / "stderr.txt").open("wb") as se:
        proc = subprocess.Popen(
            [*cmd, "--n-samples", "4"],
            stdout=so,
            stderr=se,
            env=s3_env(crashed / "prefect", moto.endpoint),
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 300
            while not moto.fs.glob(f"{BUCKET}/crashed/.lightly/cache/deduplicate/*/manifest.json"):  # type: ignore[attr-defined]
                assert proc.poll() is None, "the run ended before it could be killed"
                assert time.monotonic() < deadline, "the run never got past deduplicate"
                time.sleep(0.3)
                moto.fs.invalidate_cache()  # type: ignore[attr-defined]
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    roots = [done, failed, crashed]
    for prefix in ("ok", "failed", "crashed"):
        roots.append(copy_tree(moto.fs, f"{BUCKET}/{prefix}", tmp_path / "bucket" / prefix))
    assert list((tmp_path / "bucket" / "ok").rglob("memlog.txt")), "the LIGHTLY copy is whole"
    assert list(failed.rglob("*.db")), "Prefect's database is searched"
    named = {"AWS secret key": AWS_SECRET, "AWS access key id": AWS_KEY_ID}
    assert search(named, roots, tmp_path) == []


# --- GCS: a service account's key file (the CLI) -------------------------------------------


@contextmanager
def oauth_token_server(access_token: str, calls: list[str]) -> Iterator[str]:
    """Google's OAuth token endpoint as a key file's ``token_uri`` names it: the emulator
    ignores authorisation, but google-auth trades the key's signed JWT for a token first."""

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

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


def service_account(token_uri: str) -> dict[str, str]:
    """A service-account key with a throwaway RSA key and a recognisable key id."""
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
        "project_id": "thresher-secrets",
        "private_key_id": "FAKESECRETGCSKEYID" + secrets.token_hex(8),
        "private_key": pem,
        "client_email": "thresher@thresher-secrets.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }


@pytest.mark.slow
def test_a_cli_run_on_gcs_leaks_no_part_of_the_service_account_key(tmp_path: Path) -> None:
    pytest.importorskip("gcsfs")
    pytest.importorskip("cryptography")
    emulator = pytest.importorskip("gcp_storage_emulator.server")
    import fsspec

    from thresher.examples import make_example_dataset

    port = free_port()
    gcs = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    gcs.start()
    access_token = "ya29.FAKESECRETGCSTOKEN" + secrets.token_hex(8)
    calls: list[str] = []
    keys = tmp_path / "keys"  # outside every searched folder: the key file holds the key
    keys.mkdir()
    try:
        with oauth_token_server(access_token, calls) as token_uri:
            sa = service_account(token_uri)
            (keys / "sa.json").write_text(json.dumps(sa))
            host = f"http://127.0.0.1:{port}"
            fs = fsspec.filesystem(
                "gs",
                endpoint_url=host,
                token="anon",
                project=sa["project_id"],
                skip_instance_cache=True,
            )
            ds = make_example_dataset(tmp_path / "images", n_clusters=3, per_cluster=6)
            for name in ds.all_files:
                fs.pipe_file(f"{BUCKET}/input/{name}", (Path(ds.root) / name).read_bytes())
            run = tmp_path / "run"
            env = base_env(
                run / "prefect",
                STORAGE_EMULATOR_HOST=host,
                GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false",
                GOOGLE_APPLICATION_CREDENTIALS=str(keys / "sa.json"),
                FSSPEC_GS_TOKEN=str(keys / "sa.json"),
                FSSPEC_GS_PROJECT=sa["project_id"],
            )
            rc = cli(run, env, f"gs://{BUCKET}/input", "--lightly", f"gs://{BUCKET}/lightly")
            assert rc == 0, (run / "stderr.txt").read_text()[-3000:]
            bucket = copy_tree(fs, f"{BUCKET}/lightly", tmp_path / "bucket")
    finally:
        gcs.stop()
    assert "urn:ietf:params:oauth:grant-type:jwt-bearer" in calls, calls  # the key was used
    pem_lines = sa["private_key"].splitlines()[1:-1]
    named = {
        "private key line 2": pem_lines[2],
        "private key line (last)": pem_lines[-2],
        "private key id": sa["private_key_id"],
        "access token": access_token,
    }
    assert search(named, [run, bucket], tmp_path) == []


# --- Azure: a container SAS (the CLI) ------------------------------------------------------


@contextmanager
def azurite(tmp: Path) -> Iterator[str]:
    """Azurite's blob service on a free port; the development account's endpoint."""
    pytest.importorskip("adlfs")
    pytest.importorskip("azure.storage.blob")
    if not AZURITE.exists() or not shutil.which("node"):
        pytest.skip(f"Azurite is not installed ({AZURITE}); .ci/run installs it with npm")
    port = free_port()
    (tmp / "azurite").mkdir()
    proc = subprocess.Popen(
        [
            *(str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port)),
            *("--location", str(tmp / "azurite"), "--skipApiVersionCheck", "--loose"),
            *("--silent", "--disableTelemetry"),
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
                assert proc.poll() is None and time.monotonic() < deadline, "Azurite did not start"
                time.sleep(0.2)
        yield endpoint
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


@pytest.mark.slow
def test_a_cli_run_on_azure_leaks_no_sas(tmp_path: Path) -> None:
    from thresher.examples import make_example_dataset

    with azurite(tmp_path) as endpoint:
        import fsspec
        from azure.storage.blob import (
            BlobServiceClient,
            ContainerSasPermissions,
            generate_container_sas,
        )

        admin = BlobServiceClient(account_url=endpoint, credential=AZURE_KEY)
        admin.create_container(BUCKET)
        container = admin.get_container_client(BUCKET)
        ds = make_example_dataset(tmp_path / "images", n_clusters=3, per_cluster=6)
        for name in ds.all_files:
            container.upload_blob(f"input/{name}", (Path(ds.root) / name).read_bytes())
        sas = generate_container_sas(
            account_name=AZURE_ACCOUNT,
            container_name=BUCKET,
            account_key=AZURE_KEY,
            permission=ContainerSasPermissions(
                read=True, write=True, delete=True, list=True, add=True, create=True
            ),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        run = tmp_path / "run"
        env = base_env(
            run / "prefect",
            AZURE_STORAGE_CONNECTION_STRING=f"BlobEndpoint={endpoint};SharedAccessSignature={sas}",
        )
        rc = cli(run, env, f"az://{BUCKET}/input", "--lightly", f"az://{BUCKET}/lightly")
        assert rc == 0, (run / "stderr.txt").read_text()[-3000:]
        fs = fsspec.filesystem(
            "az",
            connection_string=(
                f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};"
                f"AccountKey={AZURE_KEY};BlobEndpoint={endpoint};"
            ),
            skip_instance_cache=True,
        )
        bucket = copy_tree(fs, f"{BUCKET}/lightly", tmp_path / "bucket")
    signature = urllib.parse.parse_qs(sas)["sig"][0]
    named = {"SAS": sas, "SAS signature": signature, "account key": AZURE_KEY}
    assert search(named, [run, bucket], tmp_path) == []


# --- the platform: a scheduled run with S3 keys set through the client ---------------------


@pytest.mark.slow
def test_a_scheduled_platform_run_leaks_no_key_and_read_urls_expire(
    moto: Moto,
    tmp_path: Path,
) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "platform_e2e"))
    from test_reliability import SELECTION, _follow, _server, _stop

    from thresher import DatasourcePurpose
    from thresher.platform.crypto import Secrets, load_or_create_key

    with _server(tmp_path, {"AWS_ENDPOINT_URL": moto.endpoint}) as srv:
        client = srv.client()
        client.create_dataset("secrets")
        for purpose, path in (
            (DatasourcePurpose.INPUT, f"s3://{BUCKET}/input/"),
            (DatasourcePurpose.LIGHTLY, f"s3://{BUCKET}/platform/"),
        ):
            client.set_s3_config(
                resource_path=path,
                region="us-east-1",
                access_key=AWS_KEY_ID,
                secret_access_key=AWS_SECRET,
                purpose=purpose,
            )
        assert AWS_SECRET not in client.get_datasource().model_dump_json()
        sid = client.schedule_compute_worker_run(selection_config=SELECTION)
        worker_env = {**srv.env, "PREFECT_HOME": str(tmp_path / "worker-prefect")}
        worker = srv.worker("secrets-worker", tmp_path / "worker.txt", once=True, env=worker_env)
        try:
            infos = _follow(client, sid, 400)
        finally:
            try:
                worker.wait(timeout=60)
            finally:
                _stop(worker)
        assert infos[-1].state == "COMPLETED", (tmp_path / "worker.txt").read_text()[-3000:]
        run = client.get_compute_worker_run_from_scheduled_run(scheduled_run_id=sid)
        out = tmp_path / "downloaded"
        client.download_compute_worker_run_artifacts(run=run, output_dir=str(out))

        # A read URL works until it expires; an expired one, correctly signed, is refused.
        artifact = next(a for a in run.artifacts or [] if a.type == "LOG")
        url = client._read_url(run.id, artifact.id)
        assert httpx.get(url, timeout=30).status_code == 200
        signer = Secrets(load_or_create_key(srv.home))
        old = int(time.time()) - 5
        expired = httpx.get(
            f"{srv.url}/v1/artifacts/{artifact.id}",
            params={"expires": old, "signature": signer.sign(artifact.id, old)},
            timeout=30,
        )
        assert expired.status_code == 403 and "expired" in expired.text, expired.text
        tampered = httpx.get(
            f"{srv.url}/v1/artifacts/{artifact.id}",
            params={"expires": old + 10**6, "signature": signer.sign(artifact.id, old)},
            timeout=30,
        )
        assert tampered.status_code == 403, tampered.text

    bucket = copy_tree(moto.fs, f"{BUCKET}/platform", tmp_path / "bucket")
    roots = [srv.home, srv.log, tmp_path / "worker.txt", tmp_path / "worker-prefect", bucket, out]
    assert (srv.home / "thresher.db").is_file()
    named = {"AWS secret key": AWS_SECRET, "API token": srv.token}
    assert search(named, roots, tmp_path) == []
    # The access key id is an identifier, stored in clear like Lightly's (and shown to the
    # dataset's readers); it still reaches no log, no Prefect record and no output.
    others = [r for r in roots if r != srv.home]
    assert search({"AWS access key id": AWS_KEY_ID}, others, tmp_path) == []


# --- how tokens and signatures are compared ------------------------------------------------


def test_tokens_and_signatures_are_compared_in_constant_time() -> None:
    import inspect

    from thresher.platform import crypto, samples, users

    # API tokens: only their sha256 is stored, and the lookup is by that hash, so no
    # comparison ever runs over the token's own characters.
    auth = inspect.getsource(users.authenticate)
    assert "hash_token(token)" in auth and "== token" not in auth
    assert users.hash_token("x") != "x" and len(users.hash_token("x")) == 64
    # Read URL signatures (artifacts and samples' public tokens) go through one check, which
    # uses hmac.compare_digest.
    assert "hmac.compare_digest" in inspect.getsource(crypto.Secrets.check)
    assert "secrets.check(" in inspect.getsource(samples.check_public_token)
    secret = crypto.Secrets(crypto.Fernet.generate_key())
    good = secret.sign("a", 10)
    assert secret.check("a", 10, good) and not secret.check("a", 11, good)


def test_storage_error_texts_carry_no_credentials() -> None:
    from thresher.errors import StorageError
    from thresher.storage.location import Location, scrub

    sig = "FAKESECRETSIG" + "x" * 20
    texts = [
        f"GET https://acct.blob.core.windows.net/c/a.png?sv=2024-01-01&sig={sig}%3D: 403",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={AWS_SECRET};",
        f"BlobEndpoint=http://h/acct;SharedAccessSignature=sv=1&sig={sig}",
        f"cannot reach s3://{AWS_KEY_ID}:{AWS_SECRET}@bucket/key",
        f"https://storage.googleapis.com/b/o?X-Goog-Credential=c&X-Goog-Signature={sig}",
    ]
    for text in texts:
        clean = scrub(text)
        assert sig not in clean and AWS_SECRET not in clean and AWS_KEY_ID not in clean, clean
    # A location whose URL carries a SAS: its errors name the file, not the SAS.
    loc = Location(f"memory://thresher-secrets/in?sig={sig}")
    with pytest.raises(StorageError) as err:
        loc.read_bytes("missing.png")
    assert "missing.png" in str(err.value) and sig not in str(err.value)
