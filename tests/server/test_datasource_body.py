"""``PUT /v1/datasets/{d}/datasource``: the body's errors as Lightly's client users see them."""

from __future__ import annotations

from tests.server.conftest import Api
from tests.server.test_http import _dataset

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


def test_an_unsupported_type_is_named(api: Api) -> None:
    """Lightly's client can send OBS (set_obs_config); thresher serves five types."""
    d = _dataset(api)
    body = {
        "type": "OBS",
        "purpose": "INPUT",
        "fullPath": "obs://bucket/input/",
        "obsEndpoint": "https://obs.example.com",
        "obsAccessKeyId": "AK",
        "obsSecretAccessKey": SECRET,
    }
    r = api.client.put(f"/v1/datasets/{d}/datasource", params=api.auth(), json=body)
    assert r.status_code == 400
    assert r.json()["code"] == "DATASET_DATASOURCE_ACTION_NOT_IMPLEMENTED"
    assert (
        "'OBS' is not supported" in r.json()["error"] and "S3DelegatedAccess" in r.json()["error"]
    )
    assert SECRET not in r.text


def test_a_bad_field_is_named_without_the_secret(api: Api) -> None:
    d = _dataset(api)
    body = {
        "type": "S3",
        "purpose": "INPUT",
        "fullPath": "s3://bucket/input/",
        "s3Region": "eu-central-1",
        "s3AccessKeyId": "AKIA",
        "s3SecretAccessKey": SECRET,
        "s3ServerSideEncryptionKMSKey": "not-a-key-arn",
    }
    r = api.client.put(f"/v1/datasets/{d}/datasource", params=api.auth(), json=body)
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    assert (
        "The S3 datasource config is not valid: s3ServerSideEncryptionKMSKey" in r.json()["error"]
    )
    assert SECRET not in r.text
    body["s3ServerSideEncryptionKMSKey"] = "arn:aws:kms:eu-central-1:123456789012:key/k"
    r = api.client.put(f"/v1/datasets/{d}/datasource", params=api.auth(), json=body)
    assert r.status_code == 204, r.text


def test_a_body_that_is_no_object_is_400(api: Api) -> None:
    d = _dataset(api)
    r = api.client.put(f"/v1/datasets/{d}/datasource", params=api.auth(), json=["LOCAL"])
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
