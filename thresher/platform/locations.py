"""From a datasource config to an fsspec URL and storage options; the permission check.

No database here: the worker may use :func:`fsspec_target` too. Messages never contain a
secret: any text from a storage library passes through :func:`scrub` first.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import uuid
from pathlib import Path
from typing import Any

from thresher.platform.errors import Invalid
from thresher.wire import (
    SECRET_FIELDS,
    DatasourceConfig,
    DatasourceConfigAzure,
    DatasourceConfigGCS,
    DatasourceConfigLocal,
    DatasourceConfigS3,
    DatasourceConfigS3DelegatedAccess,
    DatasourceRawSamplesPermissions,
    DatasourceVerifyErrors,
)

_SCHEMES = {"S3": "s3", "S3DelegatedAccess": "s3", "GCS": "gs", "AZURE": "az"}


def check_local_path(full_path: str) -> str:
    """``full_path`` of a LOCAL datasource if it is a safe relative path.

    Raises:
        Invalid: absolute, ``..``/``.`` parts, a ``://`` URL or a backslash.
    """
    parts = full_path.replace("\\", "/").split("/")
    if (
        full_path.startswith(("/", "\\", "~"))
        or "://" in full_path
        or "\\" in full_path
        or any(part in (".", "..") for part in parts)
        or (len(full_path) > 1 and full_path[1] == ":")
    ):
        raise Invalid(
            f"The LOCAL datasource path {full_path!r} must be relative to the worker's mount "
            "(--input-mount / --lightly-mount): no leading '/', no '.' or '..' parts, no "
            "'://'. Example: 'images/2024' for /input_mount/images/2024."
        )
    return full_path.strip("/")


def scrub(text: str, cfg: DatasourceConfig) -> str:
    """``text`` with every secret of ``cfg`` replaced by ``***``."""
    for name in SECRET_FIELDS.get(cfg.type, ()):
        value = getattr(cfg, name, "")
        if value:
            text = text.replace(value, "***")
    return text


def _bucket_url(cfg: DatasourceConfig) -> str:
    path = cfg.full_path
    if "://" in path:
        return path.rstrip("/")
    return f"{_SCHEMES[cfg.type]}://{path.strip('/')}"


def fsspec_target(
    cfg: DatasourceConfig, local_root: Path | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The fsspec URL and storage options of a datasource.

    Args:
        cfg: The config, with its secrets.
        local_root: The folder a LOCAL ``full_path`` is relative to; None = LOCAL cannot be
            resolved here (the worker resolves it inside its mounts), and None is returned.
    """
    if isinstance(cfg, DatasourceConfigLocal):
        if local_root is None:
            return None
        rel = check_local_path(cfg.full_path)
        return str(local_root / rel) if rel else str(local_root), {}
    url = _bucket_url(cfg)
    if isinstance(cfg, DatasourceConfigS3):
        opts: dict[str, Any] = {
            "key": cfg.s3_access_key_id,
            "secret": cfg.s3_secret_access_key,
            "client_kwargs": {"region_name": cfg.s3_region},
        }
        return url, opts
    if isinstance(cfg, DatasourceConfigS3DelegatedAccess):
        return url, _assume_role(cfg)
    if isinstance(cfg, DatasourceConfigGCS):
        try:
            token: Any = json.loads(cfg.gcs_credentials)
        except ValueError:
            token = cfg.gcs_credentials  # a path or a token name gcsfs understands
        return url, {"token": token, "project": cfg.gcs_project_id}
    if isinstance(cfg, DatasourceConfigAzure):
        return url, {"account_name": cfg.account_name, "sas_token": cfg.account_key}
    raise Invalid(f"Unknown datasource type {cfg.type!r}.")


def _assume_role(cfg: DatasourceConfigS3DelegatedAccess) -> dict[str, Any]:
    """Temporary S3 credentials from STS AssumeRole with the external id."""
    try:
        import boto3
    except ImportError as e:
        raise Invalid("S3 delegated access needs boto3: pip install 'thresher[cloud]'.") from e
    sts = boto3.client("sts", region_name=cfg.s3_region)
    creds = sts.assume_role(
        RoleArn=cfg.s3_arn, RoleSessionName="thresher", ExternalId=cfg.s3_external_id
    )["Credentials"]
    return {
        "key": creds["AccessKeyId"],
        "secret": creds["SecretAccessKey"],
        "token": creds["SessionToken"],
        "client_kwargs": {"region_name": cfg.s3_region},
    }


def _reason(e: BaseException, cfg: DatasourceConfig) -> str:
    return scrub(f"{type(e).__name__}: {e}", cfg)[:500]


ALL_CHECKS = ("list", "read", "write", "overwrite")


def check_permissions(
    cfg: DatasourceConfig,
    local_root: Path | None = None,
    checks: tuple[str, ...] = ALL_CHECKS,
) -> DatasourceRawSamplesPermissions:
    """Really list, read, write and overwrite at the datasource's location.

    Writes one small file under ``.thresher-permission-check/`` and removes it. A LOCAL
    datasource the server cannot see (``local_root`` None) is reported all-true: the worker
    checks it inside its mounts. A local folder that does not exist yet is not created: its
    nearest existing parent must be writable.

    Args:
        cfg: The datasource, with its secrets.
        local_root: The folder LOCAL paths are relative to (None: not visible here).
        checks: Which of ``list``, ``read``, ``write``, ``overwrite`` to do; the others are
            reported true.
    """
    errors: dict[str, str] = {}
    try:
        target = fsspec_target(cfg, local_root)
    except Exception as e:  # any backend error is a failed check, reported by name
        reason = _reason(e, cfg)
        return DatasourceRawSamplesPermissions(
            can_read=False,
            can_write=False,
            can_list=False,
            can_overwrite=False,
            errors=DatasourceVerifyErrors(
                can_read=reason, can_write=reason, can_list=reason, can_overwrite=reason
            ),
        )
    if target is None:
        return DatasourceRawSamplesPermissions(
            can_read=True, can_write=True, can_list=True, can_overwrite=True
        )
    url, opts = target
    from fsspec.core import url_to_fs

    try:
        fs, root = url_to_fs(url, **opts)
    except Exception as e:  # a missing backend package or bad options
        reason = _reason(e, cfg)
        errors = {k: reason for k in ("can_read", "can_write", "can_list", "can_overwrite")}
        return _result(errors)
    from fsspec.implementations.local import LocalFileSystem

    local = isinstance(fs, LocalFileSystem)
    first_file: str | None = None
    missing_local = local and not fs.isdir(root)
    try:
        if missing_local:
            raise FileNotFoundError(f"no folder {root}")
        if "list" in checks or "read" in checks:
            for path in fs.find(root, maxdepth=2)[:50]:
                if "/.thresher-permission-check/" not in path:
                    first_file = path
                    break
    except Exception as e:
        if "list" in checks:
            errors["can_list"] = f"Cannot list {_display(url)}: {_reason(e, cfg)}"
    if "read" in checks:
        _check_read(fs, root, first_file, url, cfg, errors)
    if "write" in checks or "overwrite" in checks:
        if missing_local:
            _check_local_parent(root, errors)
        else:
            _check_write(fs, root, local, url, cfg, errors)
    return _result(errors)


def _check_local_parent(root: str, errors: dict[str, str]) -> None:
    import os

    parent = Path(root)
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        msg = f"Cannot create {root}: {parent} is not writable."
        errors["can_write"] = msg
        errors["can_overwrite"] = msg


def _check_read(
    fs: Any,
    root: str,
    first_file: str | None,
    url: str,
    cfg: DatasourceConfig,
    errors: dict[str, str],
) -> None:
    try:
        if first_file is not None:
            with fs.open(first_file, "rb") as f:
                f.read(1)
        else:  # nothing to read: a missing file must be "not found", not "denied"
            with contextlib.suppress(FileNotFoundError):
                fs.cat_file(posixpath.join(root, f".thresher-missing-{uuid.uuid4().hex}"))
    except Exception as e:
        errors["can_read"] = f"Cannot read from {_display(url)}: {_reason(e, cfg)}"


def _check_write(
    fs: Any, root: str, local: bool, url: str, cfg: DatasourceConfig, errors: dict[str, str]
) -> None:
    probe = posixpath.join(root, ".thresher-permission-check", uuid.uuid4().hex)
    wrote = False
    try:
        if local:  # object stores have no folders; a local one must exist first
            fs.makedirs(posixpath.dirname(probe), exist_ok=True)
        fs.pipe_file(probe, b"thresher permission check\n")
        wrote = True
    except Exception as e:
        errors["can_write"] = f"Cannot write to {_display(url)}: {_reason(e, cfg)}"
    if wrote:
        try:
            fs.pipe_file(probe, b"thresher permission check (overwritten)\n")
        except Exception as e:
            errors["can_overwrite"] = f"Cannot overwrite in {_display(url)}: {_reason(e, cfg)}"
        try:
            fs.rm(probe)
            if not fs.ls(posixpath.dirname(probe)):
                fs.rmdir(posixpath.dirname(probe))
        except Exception:
            pass
    else:
        errors["can_overwrite"] = "Cannot overwrite: writing failed (see canWrite)."


def _display(url: str) -> str:
    from thresher.storage.location import redact_url

    return redact_url(url)


def _result(errors: dict[str, str]) -> DatasourceRawSamplesPermissions:
    return DatasourceRawSamplesPermissions(
        can_read="can_read" not in errors,
        can_write="can_write" not in errors,
        can_list="can_list" not in errors,
        can_overwrite="can_overwrite" not in errors,
        errors=DatasourceVerifyErrors(**errors) if errors else None,
    )
