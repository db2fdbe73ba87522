"""Datasources: one config per dataset and purpose; secrets encrypted at rest.

Read routes get :func:`get` (secrets replaced by :data:`thresher.wire.SECRET_MASK`); only
:func:`resolve` (for the claim and the artifact download) decrypts the secrets. Key ids
(:data:`KEY_ID_FIELDS`: an S3 access key id) are encrypted at rest too, the database holds no
half of a credential in clear text, but read routes show them, as Lightly's do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from thresher.platform.access import dataset_for
from thresher.platform.core import Platform
from thresher.platform.errors import NotFound, Unprocessable
from thresher.platform.locations import ALL_CHECKS, check_local_path, check_permissions
from thresher.platform.models import Datasource, User
from thresher.wire import (
    SECRET_FIELDS,
    SECRET_MASK,
    DatasetType,
    DatasourceConfig,
    DatasourceConfigLocal,
    DatasourceRawSamplesPermissions,
    DatasourceVerifyErrors,
    new_id,
    now_ms,
)

CONFIG: TypeAdapter[DatasourceConfig] = TypeAdapter(DatasourceConfig)

#: The purposes that can serve as a run's INPUT, and as its LIGHTLY location, best first.
INPUT_PURPOSES = ("INPUT", "INPUT_OUTPUT")
LIGHTLY_PURPOSES = ("LIGHTLY", "INPUT_OUTPUT")
#: Fields stored encrypted beside the secrets but shown unmasked by :func:`get`.
KEY_ID_FIELDS: dict[str, tuple[str, ...]] = {"S3": ("s3_access_key_id",)}


def _encrypted_fields(kind: str) -> tuple[str, ...]:
    return SECRET_FIELDS.get(kind, ()) + KEY_ID_FIELDS.get(kind, ())


def _split(cfg: DatasourceConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The config's public fields and its fields stored encrypted (both snake_case)."""
    data = cfg.model_dump(mode="json", exclude_none=True)
    secret = {k: data.pop(k) for k in _encrypted_fields(cfg.type) if k in data}
    data.pop("id", None)
    return data, secret


def _build(row: Datasource, secret: dict[str, Any], *, masked: bool) -> DatasourceConfig:
    """The config of ``row``, its decrypted fields from ``secret``; secrets masked if asked."""
    data = dict(row.public)
    for name in KEY_ID_FIELDS.get(row.type, ()):
        if name in secret:
            data[name] = secret[name]
    for name in SECRET_FIELDS.get(row.type, ()):
        data[name] = SECRET_MASK if masked else secret.get(name, "")
    data["id"] = row.id
    return CONFIG.validate_python(data)


def put(p: Platform, user: User, dataset_id: str, cfg: DatasourceConfig) -> None:
    """Set (or replace) the dataset's datasource for ``cfg.purpose``.

    Raises:
        Invalid: a LOCAL path that is absolute or escapes its mount.
    """
    if isinstance(cfg, DatasourceConfigLocal):
        check_local_path(cfg.full_path)
    public, secret = _split(cfg)
    token = p.secrets.encrypt(secret) if secret else None
    purpose = str(cfg.purpose)
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "own")
        row = s.scalar(
            select(Datasource).where(Datasource.dataset_id == d.id, Datasource.purpose == purpose)
        )
        now = now_ms()
        if row is None:
            row = Datasource(id=new_id(), dataset_id=d.id, purpose=purpose, created_at=now)
            s.add(row)
        row.type = cfg.type
        row.public = public
        row.secret = token
        row.last_modified_at = now
        d.last_modified_at = now


def _rows(s: Session, dataset_id: str) -> dict[str, Datasource]:
    rows = s.scalars(select(Datasource).where(Datasource.dataset_id == dataset_id))
    return {r.purpose: r for r in rows}


def _pick(rows: dict[str, Datasource], purpose: str | None) -> Datasource | None:
    if purpose is not None:
        return rows.get(purpose)
    # Lightly's client never passes a purpose: answer the most general config there is.
    for name in ("INPUT_OUTPUT", "INPUT", "LIGHTLY"):
        if name in rows:
            return rows[name]
    return None


def get(p: Platform, user: User, dataset_id: str, purpose: str | None = None) -> DatasourceConfig:
    """The datasource for ``purpose`` (None: INPUT_OUTPUT, else INPUT, else LIGHTLY), masked.

    The owner and the users the dataset is shared with may read it (secrets are masked).

    Raises:
        NotFound: ``DATASET_DATASOURCE_UNKNOWN`` when none is set.
    """
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "read")
        row = _pick(_rows(s, d.id), purpose)
        if row is None:
            what = f"{purpose} datasource" if purpose else "datasource"
            raise NotFound(
                f"The dataset {dataset_id} has no {what}; set one with set_local_config or "
                "set_s3_config (PUT .../datasource).",
                "DATASET_DATASOURCE_UNKNOWN",
            )
        # Only a config with a key id needs the key: a masked read of the rest never decrypts.
        needs_key = row.secret is not None and row.type in KEY_ID_FIELDS
        secret = p.secrets.decrypt(row.secret) if row.secret and needs_key else {}
        return _build(row, secret, masked=True)


def resolve(
    p: Platform, s: Session, dataset_id: str, purposes: tuple[str, ...]
) -> DatasourceConfig | None:
    """The first configured datasource among ``purposes``, decrypted (no ownership check)."""
    rows = _rows(s, dataset_id)
    for purpose in purposes:
        row = rows.get(purpose)
        if row is not None:
            return _build(row, p.secrets.decrypt(row.secret) if row.secret else {}, masked=False)
    return None


def input_root(p: Platform, dataset_type: str) -> Path | None:
    """Where the server sees a LOCAL INPUT datasource of a dataset of this type.

    ``THRESHER_LOCAL_ROOT`` (the workers' ``--input-mount``), except for a crops dataset,
    whose INPUT is a folder of its original's LIGHTLY location (``THRESHER_LIGHTLY_ROOT``).
    """
    return p.settings.lightly_root if dataset_type == DatasetType.CROPS else p.settings.local_root


def run_datasources(
    p: Platform, s: Session, dataset_id: str
) -> tuple[DatasourceConfig, DatasourceConfig]:
    """A run's INPUT and LIGHTLY datasources, decrypted.

    Raises:
        Unprocessable: one of them is not set.
    """
    inp = resolve(p, s, dataset_id, INPUT_PURPOSES)
    out = resolve(p, s, dataset_id, LIGHTLY_PURPOSES)
    missing = [name for name, c in (("INPUT", inp), ("LIGHTLY", out)) if c is None]
    if inp is None or out is None:
        raise Unprocessable(
            f"The dataset {dataset_id} has no {' and no '.join(missing)} datasource: a run "
            "reads INPUT (or INPUT_OUTPUT) and writes LIGHTLY (or INPUT_OUTPUT). Set them with "
            "set_s3_config(..., purpose=DatasourcePurpose.INPUT) etc. before scheduling.",
            "DATASET_DATASOURCE_UNKNOWN",
        )
    return inp, out


def verify(
    p: Platform, user: User, dataset_id: str, purpose: str | None = None
) -> DatasourceRawSamplesPermissions:
    """Check list/read/write/overwrite at the dataset's datasources.

    With a purpose, that datasource is checked. Without one (Lightly's client), a run's view
    is checked: list and read at INPUT (or INPUT_OUTPUT), write and overwrite at LIGHTLY (or
    INPUT_OUTPUT). LOCAL datasources are all-true unless ``THRESHER_LOCAL_ROOT`` is set.
    Whoever may schedule runs of the dataset may check (it is what scheduling checks).
    """
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "schedule")
        if purpose is not None:
            one = resolve(p, s, d.id, (purpose,))
            if one is None:
                raise NotFound(
                    f"The dataset {dataset_id} has no {purpose} datasource.",
                    "DATASET_DATASOURCE_UNKNOWN",
                )
            root = p.settings.lightly_root if purpose == "LIGHTLY" else input_root(p, d.type)
            pair = (one, one)
        else:
            inp = resolve(p, s, d.id, (*INPUT_PURPOSES, "LIGHTLY"))
            out = resolve(p, s, d.id, (*LIGHTLY_PURPOSES, "INPUT"))
            if inp is None or out is None:
                raise NotFound(
                    f"The dataset {dataset_id} has no datasource to verify; set one first.",
                    "DATASET_DATASOURCE_UNKNOWN",
                )
            pair = (inp, out)
    # Storage calls happen outside the transaction: a slow bucket must not hold the database.
    if purpose is not None:
        [one_result] = check_permissions_in_time(
            [(pair[0], root, ALL_CHECKS)], p.settings.verify_timeout_s
        )
        return one_result
    return combine(p, *pair)


def combine(
    p: Platform, inp: DatasourceConfig, out: DatasourceConfig
) -> DatasourceRawSamplesPermissions:
    """List/read as checked at ``inp``, write/overwrite as checked at ``out``.

    Both checks run side by side, within ``THRESHER_VERIFY_TIMEOUT_S``.
    """
    a, b = check_permissions_in_time(
        [
            (inp, p.settings.local_root, ("list", "read")),
            (out, p.settings.lightly_root, ("write", "overwrite")),
        ],
        p.settings.verify_timeout_s,
    )
    ea = a.errors or DatasourceVerifyErrors()
    eb = b.errors or DatasourceVerifyErrors()
    errors = DatasourceVerifyErrors(
        can_list=ea.can_list,
        can_read=ea.can_read,
        can_write=eb.can_write,
        can_overwrite=eb.can_overwrite,
    )
    has_errors = any(v is not None for v in errors.model_dump().values())
    return DatasourceRawSamplesPermissions(
        can_list=a.can_list,
        can_read=a.can_read,
        can_write=b.can_write,
        can_overwrite=b.can_overwrite,
        errors=errors if has_errors else None,
    )


#: One permission check: the datasource, the folder LOCAL paths are relative to, the checks.
PermissionCheck = tuple[DatasourceConfig, Path | None, tuple[str, ...]]


def check_permissions_in_time(
    checks: Sequence[PermissionCheck], timeout_s: float
) -> list[DatasourceRawSamplesPermissions]:
    """``check_permissions`` for each of ``checks``, side by side, all within ``timeout_s``.

    A storage that does not answer (no network, a wrong endpoint: cloud libraries retry for
    minutes) would hold the HTTP request past the client's own timeout (Lightly's waits 180 s,
    then raises a bare ReadTimeoutError). Instead, each check still running at the deadline
    reports its permissions as failed, saying why; its thread finishes in the background (a
    daemon: it never holds the server's exit).
    """
    results: list[DatasourceRawSamplesPermissions | None] = [None] * len(checks)

    def work(i: int, cfg: DatasourceConfig, root: Path | None, names: tuple[str, ...]) -> None:
        results[i] = check_permissions(cfg, root, names)

    threads = [
        threading.Thread(target=work, args=(i, *c), name="permission-check", daemon=True)
        for i, c in enumerate(checks)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout_s
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    out = []
    for (cfg, _, names), result in zip(checks, results, strict=True):
        if result is None:
            reason = (
                f"No answer from the {cfg.type} datasource {cfg.full_path!r} within "
                f"{timeout_s:g} s: check the network, the endpoint and the credentials "
                "(THRESHER_VERIFY_TIMEOUT_S sets this limit)."
            )
            failed = {f"can_{n}": reason for n in names}
            result = DatasourceRawSamplesPermissions(
                can_read="can_read" not in failed,
                can_write="can_write" not in failed,
                can_list="can_list" not in failed,
                can_overwrite="can_overwrite" not in failed,
                errors=DatasourceVerifyErrors(**failed),
            )
        out.append(result)
    return out
