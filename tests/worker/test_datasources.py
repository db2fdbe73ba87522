"""Where a run reads and writes: local folders stay inside the mounts; cloud credentials go into
the flow process's environment."""

import json
import os
import stat
from pathlib import Path

import pytest

from thresher.wire import (
    DatasourceConfigAzure,
    DatasourceConfigGCS,
    DatasourceConfigLocal,
    DatasourceConfigS3,
)
from thresher.worker.datasources import DatasourceError, resolve, resolve_local


def test_local_paths_resolve_inside_the_mount(tmp_path):
    (tmp_path / "in" / "images").mkdir(parents=True)
    mount = str(tmp_path / "in")
    assert resolve_local("images", mount, "INPUT", "--input-mount") == str(tmp_path / "in/images")
    assert resolve_local("", mount, "INPUT", "--input-mount") == str(tmp_path / "in")
    assert resolve_local("./images/", mount, "INPUT", "--input-mount").endswith("in/images")


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../secret", "'..'"),
        ("images/../../x", "'..'"),
        ("/etc", "absolute"),
        ("s3://b/x", "absolute"),
    ],
)
def test_escapes_are_refused(tmp_path, path, why):
    with pytest.raises(DatasourceError, match=why):
        resolve_local(path, str(tmp_path), "INPUT", "--input-mount")


def test_a_symlink_out_of_the_mount_is_refused(tmp_path):
    (tmp_path / "mount").mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "mount" / "link")
    with pytest.raises(DatasourceError, match="symbolic link"):
        resolve_local("link", str(tmp_path / "mount"), "LIGHTLY", "--lightly-mount")


def test_no_mount_names_the_flag():
    with pytest.raises(DatasourceError, match="--lightly-mount"):
        resolve_local("out", None, "LIGHTLY", "--lightly-mount")


def test_cloud_credentials_go_to_the_environment_not_the_urls(tmp_path):
    s3 = DatasourceConfigS3(
        purpose="INPUT",
        full_path="s3://bucket/input/",
        s3_region="eu-central-1",
        s3_access_key_id="AKIA",
        s3_secret_access_key="SECRET",
    )
    az = DatasourceConfigAzure(
        purpose="LIGHTLY", full_path="container/lightly/", account_name="acc", account_key="?sv=x"
    )
    loc = resolve(s3, az, None, None)
    assert (loc.input_url, loc.lightly_url) == ("s3://bucket/input", "az://container/lightly")
    assert loc.env["AWS_SECRET_ACCESS_KEY"] == "SECRET"
    assert loc.env["AZURE_STORAGE_SAS_TOKEN"] == "sv=x"
    assert "SECRET" not in repr(loc)


def test_gcs_key_is_a_private_temporary_file(tmp_path):
    gcs = DatasourceConfigGCS(
        purpose="INPUT",
        full_path="gs://bucket/in",
        gcs_project_id="p",
        gcs_credentials=json.dumps({"type": "service_account"}),
    )
    lightly = DatasourceConfigLocal(purpose="LIGHTLY", full_path="out")
    loc = resolve(gcs, lightly, None, str(tmp_path))
    key = loc.env["GOOGLE_APPLICATION_CREDENTIALS"]
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert json.loads(Path(key).read_text()) == {"type": "service_account"}
    loc.cleanup()
    assert not os.path.exists(key)


def test_a_wrong_scheme_is_refused():
    s3 = DatasourceConfigS3(
        purpose="INPUT",
        full_path="gs://b/x",
        s3_region="r",
        s3_access_key_id="k",
        s3_secret_access_key="s",
    )
    with pytest.raises(DatasourceError, match="not a s3:// URL"):
        resolve(s3, s3, None, None)


def test_the_worker_resolves_buckets_through_the_platform_locations(monkeypatch):
    """One mechanism: the worker takes the URL and options of platform.locations."""
    import thresher.worker.datasources as worker_ds
    from thresher.platform import locations

    assert worker_ds.fsspec_target is locations.fsspec_target
    assert not hasattr(worker_ds, "_assume_role")
    assert not hasattr(worker_ds, "_bucket_url")


def test_delegated_access_assumes_the_role_and_passes_temporary_credentials(monkeypatch):
    server_mod = pytest.importorskip("moto.server")
    import socket

    from thresher.wire import DatasourceConfigS3DelegatedAccess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "worker-identity")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-identity-secret")
        cfg = DatasourceConfigS3DelegatedAccess(
            purpose="INPUT",
            full_path="bucket/in/",
            s3_region="eu-west-1",
            s3_arn="arn:aws:iam::123456789012:role/customer",
            s3_external_id="external-id",
        )
        loc = resolve(cfg, cfg, None, None)
    finally:
        moto.stop()
    assert loc.input_url == "s3://bucket/in"
    assert loc.env["AWS_ACCESS_KEY_ID"].startswith("ASIA")  # temporary, not the worker's
    assert loc.env["AWS_SECRET_ACCESS_KEY"] != "worker-identity-secret"
    assert loc.env["AWS_SESSION_TOKEN"]
    assert loc.env["AWS_DEFAULT_REGION"] == "eu-west-1"


def test_a_refused_role_is_a_datasource_error_naming_the_role(monkeypatch):
    from thresher.wire import DatasourceConfigS3DelegatedAccess

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    cfg = DatasourceConfigS3DelegatedAccess(
        purpose="INPUT",
        full_path="s3://bucket/in",
        s3_region="us-east-1",
        s3_arn="arn:aws:iam::111111111111:role/r",
        s3_external_id="external-id",
    )
    with pytest.raises(
        DatasourceError, match="Could not assume role arn:aws:iam::111111111111:role/r"
    ):
        resolve(cfg, cfg, None, None)


def test_an_azure_endpoint_becomes_a_sas_connection_string(monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", "http://127.0.0.1:10000/devstoreaccount1/")
    az = DatasourceConfigAzure(
        purpose="LIGHTLY", full_path="az://container/x", account_name="acc", account_key="?sv=y"
    )
    loc = resolve(az, az, None, None)
    assert loc.env["AZURE_STORAGE_CONNECTION_STRING"] == (
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=sv=y"
    )
    assert "AZURE_STORAGE_SAS_TOKEN" not in loc.env


def test_a_gcs_token_name_passes_as_is(tmp_path):
    gcs = DatasourceConfigGCS(
        purpose="INPUT", full_path="bucket/in", gcs_project_id="p", gcs_credentials="anon"
    )
    loc = resolve(gcs, DatasourceConfigLocal(purpose="LIGHTLY", full_path="o"), None, str(tmp_path))
    assert loc.input_url == "gs://bucket/in"
    assert loc.env["FSSPEC_GS_TOKEN"] == "anon"
    assert loc.env["FSSPEC_GS_PROJECT"] == "p"
    assert not loc.temp_files


def test_broken_gcs_json_is_refused_without_echoing_it():
    gcs = DatasourceConfigGCS(
        purpose="INPUT",
        full_path="gs://b/in",
        gcs_project_id="p",
        gcs_credentials='{"private_key": "TOP-SECRET-KEY',
    )
    with pytest.raises(DatasourceError, match="not valid JSON") as e:
        resolve(gcs, gcs, None, None)
    assert "TOP-SECRET" not in str(e.value)


def test_an_option_without_an_environment_variable_is_refused(monkeypatch):
    monkeypatch.setattr(
        "thresher.worker.datasources.fsspec_target",
        lambda cfg: ("s3://b/x", {"key": "k", "secret": "s", "endpoint_url": "http://x"}),
    )
    s3 = DatasourceConfigS3(
        purpose="INPUT",
        full_path="s3://b/x",
        s3_region="r",
        s3_access_key_id="k",
        s3_secret_access_key="s",
    )
    with pytest.raises(DatasourceError, match="endpoint_url"):
        resolve(s3, s3, None, None)
