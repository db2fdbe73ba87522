"""Where a claimed run reads and writes: local folders inside the mounts, or bucket URLs.

Local datasources resolve only inside ``--input-mount`` / ``--lightly-mount``: absolute paths,
``..`` and symlinks that lead out are refused. Cloud credentials go into the environment of the
process that runs the flow (never into flow parameters): fsspec's backends read them there.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thresher.errors import ThresherError
from thresher.wire import (
    DatasourceConfigAzure,
    DatasourceConfigGCS,
    DatasourceConfigLocal,
    DatasourceConfigS3,
    DatasourceConfigS3DelegatedAccess,
)


class DatasourceError(ThresherError, ValueError):
    """A datasource cannot be used by this worker (outside its mount, bad path, no access)."""


@dataclass
class RunLocations:
    """The URLs a run uses and the environment its flow process needs.

    Attributes:
        input_url: INPUT (a local path or fsspec URL).
        lightly_url: LIGHTLY.
        env: Variables to add to the flow process's environment (credentials).
        temp_files: Files to delete once the run ended (e.g. a GCS key file).
    """

    input_url: str
    lightly_url: str
    env: dict[str, str] = field(default_factory=dict, repr=False)
    temp_files: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        """Delete the temporary files (credentials)."""
        for path in self.temp_files:
            Path(path).unlink(missing_ok=True)
        self.temp_files.clear()


def resolve_local(full_path: str, mount: str | None, role: str, flag: str) -> str:
    """The absolute folder of a LOCAL datasource, inside ``mount``.

    Args:
        full_path: The datasource's path, relative to the mount.
        mount: The worker's mount folder for this role (None: not given).
        role: ``INPUT`` or ``LIGHTLY`` (for messages).
        flag: The worker's option that sets ``mount`` (for messages).

    Raises:
        DatasourceError: No mount, or the path is absolute, has ``..``, or leads outside.
    """
    if mount is None:
        raise DatasourceError(
            f"The {role} datasource is a local folder ({full_path!r}), but this worker was "
            f"started without {flag}: restart it with {flag} DIR (the folder that "
            f"set_local_config(relative_path=...) is relative to)."
        )
    if "://" in full_path or full_path.startswith(("/", "\\")) or os.path.isabs(full_path):
        raise DatasourceError(
            f"The {role} datasource's path {full_path!r} is absolute; local datasources are "
            f"relative to the worker's {flag}. Use set_local_config(relative_path=...) with a "
            "path relative to that folder."
        )
    parts = full_path.replace("\\", "/").split("/")
    if ".." in parts:
        raise DatasourceError(
            f"The {role} datasource's path {full_path!r} contains '..'; it must stay inside the "
            f"worker's {flag}."
        )
    root = os.path.realpath(mount)
    target = os.path.realpath(os.path.join(root, *[p for p in parts if p not in ("", ".")]))
    if target != root and not target.startswith(root + os.sep):
        raise DatasourceError(
            f"The {role} datasource's path {full_path!r} leads outside the worker's {flag} "
            f"through a symbolic link; point it at a folder inside {mount}."
        )
    return target


_SCHEMES = {"s3": ("s3", "s3a"), "gs": ("gs", "gcs"), "az": ("az", "abfs", "abfss")}


def _bucket_url(full_path: str, scheme: str) -> str:
    """``full_path`` as an fsspec URL of ``scheme`` (``bucket/prefix`` gets the scheme added)."""
    path = full_path.strip()
    if "://" not in path:
        return f"{scheme}://{posixpath.normpath(path).strip('/')}"
    if path.split("://", 1)[0].lower() not in _SCHEMES[scheme]:
        raise DatasourceError(
            f"The datasource path {full_path!r} is not a {scheme}:// URL; "
            f"give it as {scheme}://bucket/prefix/."
        )
    return path.rstrip("/")


def _assume_role(cfg: DatasourceConfigS3DelegatedAccess) -> dict[str, str]:
    try:
        import boto3
    except ImportError as e:
        raise DatasourceError(
            "S3 delegated access needs boto3 on the worker: pip install 'thresher[s3]'"
        ) from e
    sts = boto3.client("sts", region_name=cfg.s3_region)
    try:
        out = sts.assume_role(
            RoleArn=cfg.s3_arn, RoleSessionName="thresher-worker", ExternalId=cfg.s3_external_id
        )
    except Exception as e:  # botocore's error family is wide; the message says what failed
        raise DatasourceError(
            f"Could not assume role {cfg.s3_arn} with the configured external id: {e}. Check the "
            "role's trust policy names this worker's AWS identity and the external id."
        ) from e
    c = out["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
        "AWS_SESSION_TOKEN": c["SessionToken"],
    }


def _cloud(cfg: Any, locations: RunLocations) -> str:
    """The URL of a cloud datasource; its credentials go into ``locations.env``."""
    env = locations.env
    if isinstance(cfg, DatasourceConfigS3):
        env.update(
            AWS_ACCESS_KEY_ID=cfg.s3_access_key_id,
            AWS_SECRET_ACCESS_KEY=cfg.s3_secret_access_key,
            AWS_DEFAULT_REGION=cfg.s3_region,
        )
        env.pop("AWS_SESSION_TOKEN", None)
        return _bucket_url(cfg.full_path, "s3")
    if isinstance(cfg, DatasourceConfigS3DelegatedAccess):
        env.update(_assume_role(cfg), AWS_DEFAULT_REGION=cfg.s3_region)
        return _bucket_url(cfg.full_path, "s3")
    if isinstance(cfg, DatasourceConfigGCS):
        fd, key_path = tempfile.mkstemp(prefix="thresher-gcs-", suffix=".json")
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(json.loads(cfg.gcs_credentials), f)
        locations.temp_files.append(key_path)
        env.update(GOOGLE_APPLICATION_CREDENTIALS=key_path, FSSPEC_GCS_PROJECT=cfg.gcs_project_id)
        env["FSSPEC_GCS_TOKEN"] = "google_default"
        return _bucket_url(cfg.full_path, "gs")
    if isinstance(cfg, DatasourceConfigAzure):
        env.update(
            AZURE_STORAGE_ACCOUNT_NAME=cfg.account_name,
            AZURE_STORAGE_SAS_TOKEN=cfg.account_key.lstrip("?"),
        )
        return _bucket_url(cfg.full_path, "az")
    raise DatasourceError(f"datasource type {getattr(cfg, 'type', '?')!r} is not supported")


def resolve(
    input_cfg: Any, lightly_cfg: Any, input_mount: str | None, lightly_mount: str | None
) -> RunLocations:
    """The run's INPUT and LIGHTLY URLs and its flow process's credentials.

    When INPUT and LIGHTLY are buckets of the same kind with different credentials, the LIGHTLY
    credentials are the ones the run gets (one set per storage kind reaches the flow process):
    they must be able to read INPUT too.

    Raises:
        DatasourceError: A local path outside its mount, a wrong URL, or no credentials.
    """
    locations = RunLocations(input_url="", lightly_url="")
    try:
        if isinstance(input_cfg, DatasourceConfigLocal):
            locations.input_url = resolve_local(
                input_cfg.full_path, input_mount, "INPUT", "--input-mount"
            )
        else:
            locations.input_url = _cloud(input_cfg, locations)
        if isinstance(lightly_cfg, DatasourceConfigLocal):
            mount = lightly_mount
            if mount is None and lightly_cfg.purpose == "INPUT_OUTPUT":
                mount = input_mount  # one folder for both, as Lightly's INPUT_OUTPUT
            locations.lightly_url = resolve_local(
                lightly_cfg.full_path, mount, "LIGHTLY", "--lightly-mount"
            )
        else:
            locations.lightly_url = _cloud(lightly_cfg, locations)
    except BaseException:
        locations.cleanup()
        raise
    return locations
