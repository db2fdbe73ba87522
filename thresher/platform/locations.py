"""From a datasource config to an fsspec URL and storage options; the permission check.

No database here: the worker may use :func:`fsspec_target` too. Messages never contain a
secret: any text from a storage library passes through :func:`scrub` first.
"""

from __future__ import annotations

import contextlib
import json
import os
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


def scrub(text: str, cfg: DatasourceConfig, extra: tuple[str, ...] = ()) -> str:
    """``text`` with every secret of ``cfg`` (and ``extra``) replaced by ``***``.

    A service-account JSON's private key is scrubbed on its own too (libraries quote it alone).
    """
    values = [str(getattr(cfg, name, "") or "") for name in SECRET_FIELDS.get(cfg.type, ())]
    if isinstance(cfg, DatasourceConfigGCS):
        with contextlib.suppress(ValueError, AttributeError):
            info = json.loads(cfg.gcs_credentials)
            values += [str(info.get("private_key") or ""), str(info.get("private_key_id") or "")]
    if isinstance(cfg, DatasourceConfigAzure):
        values.append(cfg.account_key.lstrip("?"))
    for value in sorted([*values, *extra], key=len, reverse=True):
        if len(value) >= 8:
            text = text.replace(value, "***")
    return text


#: The URL schemes each datasource type accepts in ``full_path`` (the first is the one added).
SCHEMES: dict[str, tuple[str, ...]] = {
    "S3": ("s3", "s3a"),
    "S3DelegatedAccess": ("s3", "s3a"),
    "GCS": ("gs", "gcs"),
    "AZURE": ("az", "abfs", "abfss"),
}

#: The environment variable that points Azure datasources at another blob endpoint (Azurite,
#: a sovereign cloud): e.g. ``http://127.0.0.1:10000/devstoreaccount1``. S3 uses boto's own
#: ``AWS_ENDPOINT_URL``, GCS gcsfs's own ``STORAGE_EMULATOR_HOST``.
AZURE_ENDPOINT_ENV = "AZURE_STORAGE_BLOB_ENDPOINT"


def bucket_url(cfg: DatasourceConfig) -> str:
    """``cfg.full_path`` as an fsspec URL (``bucket/prefix`` gets the type's scheme added).

    Raises:
        Invalid: A URL of another scheme (``gs://`` on an S3 datasource).
    """
    schemes = SCHEMES[cfg.type]
    path = cfg.full_path.strip()
    if "://" not in path:
        return f"{schemes[0]}://{posixpath.normpath(path).strip('/')}"
    if path.split("://", 1)[0].lower() not in schemes:
        raise Invalid(
            f"The datasource path {cfg.full_path!r} is not a {schemes[0]}:// URL; "
            f"give it as {schemes[0]}://bucket/prefix/."
        )
    return path.rstrip("/")


def fsspec_target(
    cfg: DatasourceConfig, local_root: Path | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The fsspec URL and storage options of a datasource: the one place that knows each type.

    The server uses them to check permissions and stream artifacts; the worker turns the
    options into its flow process's environment. Endpoints come from the environment of the
    process that calls this: ``AWS_ENDPOINT_URL`` (boto, S3 and STS),
    ``STORAGE_EMULATOR_HOST`` (gcsfs), :data:`AZURE_ENDPOINT_ENV` (here).

    Args:
        cfg: The config, with its secrets.
        local_root: The folder a LOCAL ``full_path`` is relative to; None = LOCAL cannot be
            resolved here (the worker resolves it inside its mounts), and None is returned.

    Raises:
        Invalid: A wrong URL scheme, bad GCS credentials, or STS refused the role.
    """
    if isinstance(cfg, DatasourceConfigLocal):
        if local_root is None:
            return None
        rel = check_local_path(cfg.full_path)
        return str(local_root / rel) if rel else str(local_root), {}
    if cfg.type not in SCHEMES:
        raise Invalid(f"Unknown datasource type {cfg.type!r}.")
    url = bucket_url(cfg)
    if isinstance(cfg, DatasourceConfigS3):
        opts: dict[str, Any] = {
            "key": cfg.s3_access_key_id,
            "secret": cfg.s3_secret_access_key,
            "client_kwargs": {"region_name": cfg.s3_region},
        }
        return url, opts
    if isinstance(cfg, DatasourceConfigS3DelegatedAccess):
        return url, assume_role(cfg)
    if isinstance(cfg, DatasourceConfigGCS):
        return url, {"token": _gcs_token(cfg), "project": cfg.gcs_project_id}
    if isinstance(cfg, DatasourceConfigAzure):
        sas = cfg.account_key.lstrip("?")
        endpoint = os.environ.get(AZURE_ENDPOINT_ENV, "").strip().rstrip("/")
        if endpoint:
            return url, {
                "connection_string": f"BlobEndpoint={endpoint};SharedAccessSignature={sas}"
            }
        return url, {"account_name": cfg.account_name, "sas_token": sas}
    raise Invalid(f"Unknown datasource type {cfg.type!r}.")


def _gcs_token(cfg: DatasourceConfigGCS) -> Any:
    """The service-account JSON as a dict (a token name or a key file's path: a string).

    gcsfs also knows the names ``anon``, ``google_default`` and ``cloud``.
    """
    text = cfg.gcs_credentials.strip()
    if not text.startswith("{"):
        return text
    try:
        info = json.loads(text)
    except ValueError:
        raise Invalid(
            "The GCS credentials are not valid JSON: paste the service account's key file "
            "(the whole JSON) as credentials."
        ) from None
    if not isinstance(info, dict):
        raise Invalid("The GCS credentials must be a JSON object (a service account's key file).")
    return info


def assume_role(cfg: DatasourceConfigS3DelegatedAccess) -> dict[str, Any]:
    """Temporary S3 credentials (fsspec options) from STS AssumeRole with the external id.

    The caller's own AWS identity (boto's usual chain: ``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role) assumes the customer's role,
    as Lightly's platform does; ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_STS``) redirects
    STS like S3.

    Raises:
        Invalid: No boto3, or STS refused (the message names the role, never a secret).
    """
    try:
        import boto3
    except ImportError as e:
        raise Invalid("S3 delegated access needs boto3: pip install 'thresher[cloud]'.") from e
    try:
        sts = boto3.client("sts", region_name=cfg.s3_region or None)
        creds = sts.assume_role(
            RoleArn=cfg.s3_arn, RoleSessionName="thresher", ExternalId=cfg.s3_external_id
        )["Credentials"]
    except Exception as e:  # botocore's error family is wide; the message says what failed
        raise Invalid(
            f"Could not assume role {cfg.s3_arn} with the configured external id "
            f"({type(e).__name__}: {str(e)[:300]}). Check that the role's trust policy names "
            "this process's AWS identity (its AWS_* environment, profile or instance role) and "
            "the external id."
        ) from e
    return {
        "key": creds["AccessKeyId"],
        "secret": creds["SecretAccessKey"],
        "token": creds["SessionToken"],
        "client_kwargs": {"region_name": cfg.s3_region},
    }


def _reason(e: BaseException, cfg: DatasourceConfig, opts: dict[str, Any] | None = None) -> str:
    return scrub(f"{type(e).__name__}: {e}", cfg, option_secrets(opts or {}))[:500]


def option_secrets(opts: dict[str, Any]) -> tuple[str, ...]:
    """The secret strings among fsspec options (temporary keys, tokens, connection strings)."""
    names = ("secret", "token", "sas_token", "connection_string", "account_key")
    return tuple(str(opts[n]) for n in names if isinstance(opts.get(n), str))


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
        reason = _reason(e, cfg, opts)
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
            errors["can_list"] = f"Cannot list {_display(url)}: {_reason(e, cfg, opts)}"
    if "read" in checks:
        _check_read(fs, root, first_file, url, cfg, opts, errors)
    if "write" in checks or "overwrite" in checks:
        if missing_local:
            _check_local_parent(root, errors)
        else:
            _check_write(fs, root, local, url, cfg, opts, errors)
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
    opts: dict[str, Any],
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
        errors["can_read"] = f"Cannot read from {_display(url)}: {_reason(e, cfg, opts)}"


def _check_write(
    fs: Any,
    root: str,
    local: bool,
    url: str,
    cfg: DatasourceConfig,
    opts: dict[str, Any],
    errors: dict[str, str],
) -> None:
    probe = posixpath.join(root, ".thresher-permission-check", uuid.uuid4().hex)
    wrote = False
    try:
        if local:  # object stores have no folders; a local one must exist first
            fs.makedirs(posixpath.dirname(probe), exist_ok=True)
        fs.pipe_file(probe, b"thresher permission check\n")
        wrote = True
    except Exception as e:
        errors["can_write"] = f"Cannot write to {_display(url)}: {_reason(e, cfg, opts)}"
    if wrote:
        try:
            fs.pipe_file(probe, b"thresher permission check (overwritten)\n")
        except Exception as e:
            errors["can_overwrite"] = (
                f"Cannot overwrite in {_display(url)}: {_reason(e, cfg, opts)}"
            )
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
