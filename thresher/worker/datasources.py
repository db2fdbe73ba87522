"""Where a claimed run reads and writes: local folders inside the mounts, or bucket URLs.

Local datasources resolve only inside ``--input-mount`` / ``--lightly-mount``: absolute paths,
``..`` and symlinks that lead out are refused. Buckets resolve through
:mod:`thresher.platform.locations`, as on the server; their credentials go into the environment
of the process that runs the flow (never into flow parameters): fsspec's backends read them
there.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thresher.errors import ThresherError
from thresher.platform.errors import Invalid
from thresher.platform.locations import fsspec_target
from thresher.wire import DatasourceConfigLocal


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


def _cloud(cfg: Any, locations: RunLocations) -> str:
    """The URL of a cloud datasource; its credentials go into ``locations.env``.

    :func:`thresher.platform.locations.fsspec_target` knows the datasource types (the URL, the
    fsspec options, STS AssumeRole with this worker's own AWS identity); here its options only
    become the flow process's environment.
    """
    try:
        target = fsspec_target(cfg)
    except Invalid as e:
        raise DatasourceError(e.message) from e
    if target is None:  # LOCAL: resolved inside the mounts by the caller
        raise DatasourceError(f"datasource type {getattr(cfg, 'type', '?')!r} is not a bucket")
    url, opts = target
    protocol = url.split("://", 1)[0].lower()
    to_env = _ENV_MAPPINGS.get(protocol)
    if to_env is None:
        raise DatasourceError(f"the worker cannot pass {protocol}:// credentials to its runs")
    to_env(dict(opts), locations)
    return url


def _s3_env(opts: dict[str, Any], locations: RunLocations) -> None:
    env = locations.env
    env.update(AWS_ACCESS_KEY_ID=opts.pop("key"), AWS_SECRET_ACCESS_KEY=opts.pop("secret"))
    token = opts.pop("token", None)
    if token:
        env["AWS_SESSION_TOKEN"] = token
    else:
        env.pop("AWS_SESSION_TOKEN", None)
    region = (opts.pop("client_kwargs", None) or {}).get("region_name")
    if region:
        env["AWS_DEFAULT_REGION"] = region
    _no_rest(opts, "s3")


def _gs_env(opts: dict[str, Any], locations: RunLocations) -> None:
    env = locations.env
    token = opts.pop("token")
    if isinstance(token, dict):  # a service account's key: a private file for the run
        fd, key_path = tempfile.mkstemp(prefix="thresher-gcs-", suffix=".json")
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(token, f)
        locations.temp_files.append(key_path)
        env["GOOGLE_APPLICATION_CREDENTIALS"] = token = key_path
    env["FSSPEC_GS_TOKEN"] = str(token)  # a key file's path or a token name gcsfs knows
    project = opts.pop("project", None)
    if project:
        env["FSSPEC_GS_PROJECT"] = project
    _no_rest(opts, "gs")


def _az_env(opts: dict[str, Any], locations: RunLocations) -> None:
    names = {
        "connection_string": "AZURE_STORAGE_CONNECTION_STRING",
        "account_name": "AZURE_STORAGE_ACCOUNT_NAME",
        "sas_token": "AZURE_STORAGE_SAS_TOKEN",
    }
    for option, variable in names.items():
        value = opts.pop(option, None)
        if value:
            locations.env[variable] = value
        else:
            locations.env.pop(variable, None)
    _no_rest(opts, "az")


def _no_rest(opts: dict[str, Any], protocol: str) -> None:
    """Every option reached the environment (a new option must get its variable here)."""
    if opts:
        raise DatasourceError(
            f"the worker has no environment variable for the {protocol}:// options {sorted(opts)}"
        )


#: How fsspec options become the flow process's environment, per backend (the variables each
#: backend reads itself: boto's AWS_*, fsspec's FSSPEC_GS_*, adlfs's AZURE_STORAGE_*).
_ENV_MAPPINGS: dict[str, Callable[[dict[str, Any], RunLocations], None]] = {
    "s3": _s3_env,
    "s3a": _s3_env,
    "gs": _gs_env,
    "gcs": _gs_env,
    "az": _az_env,
    "abfs": _az_env,
    "abfss": _az_env,
}


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
