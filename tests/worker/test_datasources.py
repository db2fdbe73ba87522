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
