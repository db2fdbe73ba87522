"""Crops datasets: where a scheduled object-level run's selected crops become samples.

An object-level run writes its selected crops to ``.lightly/crops/<task>/`` in its LIGHTLY
datasource (``docs/objects.md``). When its worker reports them with the selection, they become
the samples of the run's **crops dataset** (Lightly's §4.3):

* named ``worker_config.object_level.crop_dataset_name``, or ``<dataset name>-crops``;
* of type ``Crops``, owned by the original dataset's owner; created by the first run, found by
  name (among the owner's datasets) by later runs, which add their new crops to it;
* its INPUT and LIGHTLY datasources are the original's LIGHTLY datasource (same type and
  credentials) with ``/.lightly/crops`` appended, set again at each run; a sample is named
  ``<task>/<crop name>``, so its file is ``.lightly/crops/<task>/<crop name>`` in the
  original's LIGHTLY location and reads, exports and downloads work as for any dataset (a
  LOCAL one is read under ``THRESHER_LIGHTLY_ROOT``);
* each run gets a tag, named as in an images dataset (``initial-tag`` first, then the run id).

The crops dataset is not shared with the original's collaborators: share it on its own. Runs
are never scheduled on a crops dataset (schedule the original again).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from thresher.platform import datasources, tags
from thresher.platform.access import require_owner
from thresher.platform.core import Platform
from thresher.platform.datasets import MAX_NAME_LENGTH
from thresher.platform.errors import Conflict, Invalid, NotFound, Unprocessable
from thresher.platform.models import Dataset, Datasource, Run, User, WorkerConfig
from thresher.wire import DatasetType, RunCrops, new_id, now_ms

#: Where a run's crops lie in its LIGHTLY datasource: ``<CROPS_FOLDER>/<task>/<crop name>``.
CROPS_FOLDER = ".lightly/crops"
#: The default name of a dataset's crops dataset: ``<dataset name><DEFAULT_SUFFIX>``.
DEFAULT_SUFFIX = "-crops"


def crop_dataset_name(worker_config: dict[str, Any], dataset_name: str) -> str:
    """``object_level.crop_dataset_name`` of a stored worker config, else the default name."""
    from thresher.config import parse_config
    from thresher.config.worker import WorkerConfig as WorkerConfigModel

    cfg = parse_config(WorkerConfigModel, worker_config or None, "worker_config")
    named = cfg.object_level.crop_dataset_name if cfg.object_level is not None else ""
    return named or dataset_name + DEFAULT_SUFFIX


def check_task(task: str) -> str:
    """``task`` if it is one folder name (it names ``.lightly/crops/<task>/``).

    Raises:
        Invalid: empty, ``.``/``..``, a slash or a backslash, or a control character.
    """
    if (
        not task
        or task in (".", "..")
        or any(c in task for c in "/\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in task)
    ):
        raise Invalid(
            f"The crops' task {task[:300]!r} must be one folder name of .lightly/crops/ "
            "(no '/', '\\', '.', '..' or control characters); nothing was recorded."
        )
    return task


def record_run_picks(
    p: Platform, user: User, run_id: str, filenames: list[str], crops: RunCrops | None
) -> str:
    """Record a completed run's selection, then its crops (``POST .../selection``).

    The names of both are checked first: a hostile name records nothing. The selection is
    recorded before the crops, in its own transaction, so a crops dataset that cannot be used
    (see :func:`record_run_crops`) leaves the images dataset's new samples and tag in place.

    Returns:
        The id of the run's tag in its (images) dataset.
    """
    tags.check_relative_names(filenames, "selected file name", "the INPUT datasource")
    if crops is not None:
        check_task(crops.task)
        tags.check_relative_names(
            crops.filenames, "crop name", f"the crops folder {CROPS_FOLDER}/{crops.task}/"
        )
    tag_id = tags.record_run_selection(p, user, run_id, filenames)
    if crops is not None:
        record_run_crops(p, user, run_id, crops)
    return tag_id


def record_run_crops(p: Platform, user: User, run_id: str, crops: RunCrops) -> str:
    """Add a run's selected crops to its crops dataset (see the module doc).

    Only the user whose worker took the run may report it. Reporting the same run again
    changes nothing and returns the same tag.

    Returns:
        The id of the run's tag in the crops dataset.

    Raises:
        Invalid: a hostile task or crop name.
        NotFound: the run, its dataset or its config is gone.
        Conflict: ``CROP_DATASET_NAME_TAKEN``: the owner has a dataset of that name that is
            not a crops dataset (or is the original dataset itself).
        Unprocessable: the original dataset has no LIGHTLY datasource any more.
    """
    check_task(crops.task)
    folder = f"{CROPS_FOLDER}/{crops.task}/"
    tags.check_relative_names(crops.filenames, "crop name", f"the crops folder {folder}")
    try:
        return _record(p, user, run_id, crops)
    except IntegrityError:  # another run created the dataset or a sample meanwhile: once more
        return _record(p, user, run_id, crops)


def _record(p: Platform, user: User, run_id: str, crops: RunCrops) -> str:
    with p.session() as s:
        r = require_owner(s.get(Run, run_id), user.id, "run", "DOCKER_RUN_UNKNOWN", run_id)
        original = s.get(Dataset, r.dataset_id)
        cfg = s.get(WorkerConfig, r.config_id)
        if original is None or cfg is None:
            raise NotFound(
                f"The run {run_id}'s dataset or worker config was deleted; its crops were "
                "not recorded.",
                "DATASET_UNKNOWN",
            )
        name = crop_dataset_name(dict(cfg.worker_config), original.name)
        target = _crops_dataset(s, original, name)
        _point_at_crops(s, original, target)
        tag = tags.add_run_samples(
            s, target.id, r.id, [f"{crops.task}/{n}" for n in crops.filenames]
        )
        target.last_modified_at = now_ms()
        return tag.id


def _crops_dataset(s: Session, original: Dataset, name: str) -> Dataset:
    """The owner's crops dataset ``name``, created if missing."""
    if len(name) > MAX_NAME_LENGTH:
        raise Invalid(
            f"The crops dataset name {name[:80]!r}... is {len(name)} characters long; at most "
            f"{MAX_NAME_LENGTH} are allowed. Set worker_config.object_level.crop_dataset_name "
            "to a shorter name."
        )
    found = s.scalar(
        select(Dataset).where(Dataset.user_id == original.user_id, Dataset.name == name)
    )
    if found is not None and (found.type != DatasetType.CROPS or found.id == original.id):
        raise Conflict(
            f"The crops of this run go to the dataset {name!r}, but that name is taken by "
            f"the dataset {found.id} of type {found.type}, which is not a crops dataset. The "
            "selected images were recorded; for the crops, rename that dataset or set "
            "worker_config.object_level.crop_dataset_name to another name and run again.",
            "CROP_DATASET_NAME_TAKEN",
        )
    if found is not None:
        return found
    now = now_ms()
    d = Dataset(
        id=new_id(),
        user_id=original.user_id,
        name=name,
        type=str(DatasetType.CROPS),
        img_type="full",
        created_at=now,
        last_modified_at=now,
    )
    s.add(d)
    s.flush()
    return d


def _point_at_crops(s: Session, original: Dataset, crops: Dataset) -> None:
    """Set the crops dataset's INPUT and LIGHTLY to the original's LIGHTLY + ``CROPS_FOLDER``.

    The row is copied as stored (the secret stays the same encrypted token).
    """
    rows = {
        row.purpose: row
        for row in s.scalars(select(Datasource).where(Datasource.dataset_id == original.id))
    }
    source = next((rows[x] for x in datasources.LIGHTLY_PURPOSES if x in rows), None)
    if source is None:
        raise Unprocessable(
            f"The dataset {original.id} has no LIGHTLY datasource any more, so its crops "
            "dataset cannot point at the crops; set it again and rerun.",
            "DATASET_DATASOURCE_UNKNOWN",
        )
    public = dict(source.public)
    base = str(public.get("full_path", "")).strip().rstrip("/")
    public["full_path"] = f"{base}/{CROPS_FOLDER}" if base else CROPS_FOLDER
    now = now_ms()
    for purpose in ("INPUT", "LIGHTLY"):
        row = s.scalar(
            select(Datasource).where(
                Datasource.dataset_id == crops.id, Datasource.purpose == purpose
            )
        )
        if row is None:
            row = Datasource(id=new_id(), dataset_id=crops.id, purpose=purpose, created_at=now)
            s.add(row)
        row.type = source.type
        row.public = dict(public)
        row.secret = source.secret
        row.last_modified_at = now
    # Purposes the copy replaces: an INPUT_OUTPUT row would shadow INPUT and LIGHTLY.
    for row in s.scalars(
        select(Datasource).where(
            Datasource.dataset_id == crops.id, Datasource.purpose == "INPUT_OUTPUT"
        )
    ):
        s.delete(row)
