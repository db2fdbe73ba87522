"""Read every user file the configs name before a run writes anything.

The predictions, metadata, tags and embeddings CSVs a run uses live in the LIGHTLY location
and are read by the ``embed`` and ``select`` stages, hours into a run and after the earlier
stages have stored their results. A truncated JSON or a CSV with a NaN found there costs those
hours and leaves a half-made run behind. :func:`check_user_files` reads the same files with
the same readers up front, so a bad file fails in seconds, as one message naming the file and
field, and nothing is written. It costs one extra listing of INPUT and one read of the files,
and only when the configs use such files.

Example:
    >>> from thresher.config import load_configs
    >>> cfg = load_configs(selection_config={"n_samples": 5})
    >>> check_user_files(cfg, "/data/images", "/data/images-lightly")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from thresher.config import RunConfig
from thresher.config.selection import (
    BUILTIN_METADATA_PREFIXES,
    BalanceStrategy,
    EmbeddingsInput,
    MetadataInput,
    PredictionsInput,
    ScoresInput,
    StrategyEntry,
)
from thresher.errors import ConfigError, InputError, SchemaError
from thresher.stages import _store
from thresher.stages.list_input import read_relevant
from thresher.stages.objects import check_boxes, object_task
from thresher.storage._json import unmatched_files, where
from thresher.storage.embeddings_csv import match_embeddings, read_embeddings_csv
from thresher.storage.embeddings_npy import check_npy_input, is_npy
from thresher.storage.location import IMAGE_EXTENSIONS, Location
from thresher.storage.metadata import metadata_path, read_metadata, read_metadata_schema
from thresher.storage.predictions import read_predictions, read_tasks

_SHOWN = 5
META_DIR = ".lightly/metadata"


def check_user_files(cfg: RunConfig, input_url: str, lightly_url: str) -> None:
    """Read every file in LIGHTLY that ``cfg`` names, as the run would; write nothing.

    Checks ``worker_config.relevant_filenames_file`` (readable, and matching an image),
    ``worker_config.embeddings`` (no row for a file that is not in INPUT), and for each
    strategy input: the prediction task (``tasks.json``, its
    ``schema.json``, every per-file JSON, ``categories`` and BALANCE ``target`` against the
    schema's categories), custom metadata (``schema.json``, every per-file JSON, numeric keys
    for WEIGHTS/THRESHOLD and categorical ones for BALANCE), a tag, or a query embeddings CSV.
    Per-file JSONs that belong to no image of INPUT are refused too.

    Args:
        cfg: The validated configs.
        input_url: The INPUT location (listed, never written).
        lightly_url: The LIGHTLY location (read only here).

    Raises:
        ConfigError: a key names a file, task, tag, category or metadata key that is not there
            or does not fit the strategy (the message names the key).
        SchemaError: a file does not match its format (the message names the file and field).
        InputError: the embeddings CSV names files that are not in INPUT, or the relevant
            filenames match none.
        StorageError: a file exists but cannot be read.
    """
    w = cfg.worker
    lightly = _store.lightly_location(lightly_url)
    entries = list(enumerate(cfg.selection.effective_strategies()))
    objects = object_task(cfg)  # object level: refuses what it cannot honour (ConfigError)
    rules = read_relevant(lightly, w.relevant_filenames_file) if w.relevant_filenames_file else None
    uses_files = (
        bool(w.embeddings)
        or any(
            isinstance(e.input, (ScoresInput, PredictionsInput))
            or (
                isinstance(e.input, MetadataInput)
                and not e.input.key.startswith(BUILTIN_METADATA_PREFIXES)
            )
            or (isinstance(e.input, EmbeddingsInput) and e.input.tag_name is not None)
            for _, e in entries
        )
        or (objects is not None and objects.auto is None)
    )
    listed: list[str] = []
    names: list[str] = []
    if uses_files or rules is not None:
        source = Location(input_url)
        listed = [f.name for f in source.list_files(IMAGE_EXTENSIONS)]
        names = rules.filter(listed)[0] if rules is not None else listed
        if not names:
            raise InputError(
                f"worker_config.relevant_filenames_file: {w.relevant_filenames_file} matches "
                f"none of the {len(listed)} images in {source.display}. Correct the names: they "
                "are relative to the INPUT root, e.g. 'subdir/image_1.png'."
            )
    dim = _check_embeddings_csv(lightly, w.embeddings, names) if w.embeddings else None
    if objects is not None:  # its boxes, before the SCORES and PREDICTIONS that read them
        check_boxes(objects, input_url, lightly_url, names, listed)
    _check_predictions(lightly, entries, names, listed)
    _check_metadata(lightly, entries, names, listed)
    for i, entry in entries:
        inp = entry.input
        if isinstance(inp, EmbeddingsInput) and inp.tag_name is not None:
            _check_tag(lightly, f"selection_config.strategies[{i}].input.tag_name", inp, listed)
        elif isinstance(inp, EmbeddingsInput) and inp.query_embeddings is not None:
            key = f"selection_config.strategies[{i}].input.query_embeddings"
            _, queries = _read_csv(lightly, key, inp.query_embeddings, need_rows=True)
            if dim is not None and queries.shape[1] != dim:
                raise ConfigError(
                    f"{key}: '{inp.query_embeddings}' has {queries.shape[1]} embedding columns, "
                    f"but the run's embeddings (worker_config.embeddings '{w.embeddings}') have "
                    f"{dim}. Queries must come from the same model: recompute them with it."
                )


def _read_csv(
    lightly: Location, key: str, name: str, *, need_rows: bool = False
) -> tuple[list[str], np.ndarray]:
    rel = f".lightly/embeddings/{name}"
    if not lightly.exists(rel):
        raise ConfigError(
            f"{key}: '{name}' was not found at {lightly.child(rel).display}. Put the CSV in "
            ".lightly/embeddings/ of the LIGHTLY location, or correct the name."
        )
    names, emb = read_embeddings_csv(lightly, rel)
    if need_rows and not names:
        raise SchemaError(
            lightly.child(rel).display, "<file>", "lists no embeddings; add at least one row"
        )
    return names, emb


def _check_embeddings_csv(lightly: Location, name: str, names: Sequence[str]) -> int:
    """Check the CSV of ``worker_config.embeddings``; return its embedding size."""
    if is_npy(name):  # thresher's .npy input: checked from its header and filenames file
        return check_npy_input(
            lightly, f".lightly/embeddings/{name}", names, "worker_config.embeddings"
        )
    csv_names, emb = _read_csv(lightly, "worker_config.embeddings", name)
    # Rows for files not in INPUT are wrong now. A file without a row may still be corrupt or
    # a duplicate, which the run drops (thresher's own embeddings.csv has no rows for those):
    # the embed stage, which knows the kept files, checks that every one has a row.
    listed = set(names)
    present = [f for f in csv_names if f in listed]
    match_embeddings(csv_names, emb, present)
    return int(emb.shape[1])


def _unmatched_error(lightly: Location, folder: str, files: list[str], what: str) -> SchemaError:
    shown = ", ".join(files[:_SHOWN]) + (
        f" and {len(files) - _SHOWN} more" if len(files) > _SHOWN else ""
    )
    return SchemaError(
        where(lightly, f"{folder}/{files[0]}"),
        "<file>",
        f"no image in INPUT has this path ({len(files)} such file(s) in {folder}/: {shown}). "
        f"The {what} of INPUT/a/b.jpg must be {folder}/a/b.json: rename or remove these",
    )


def _check_predictions(
    lightly: Location,
    entries: list[tuple[int, StrategyEntry]],
    names: Sequence[str],
    listed: Sequence[str],
) -> None:
    checked: dict[str, list[str]] = {}
    tasks_json = ""
    for i, entry in entries:
        inp = entry.input
        if not isinstance(inp, (ScoresInput, PredictionsInput)):
            continue
        key = f"selection_config.strategies[{i}].input"
        if inp.task not in checked:
            tasks = read_tasks(lightly)
            tasks_json = where(lightly, ".lightly/predictions/tasks.json")
            if inp.task not in tasks:
                raise ConfigError(
                    f"{key}.task: task '{inp.task}' is not listed in {tasks_json} (listed: "
                    f"{', '.join(tasks) or 'none'}). Add it there, with its predictions in "
                    f".lightly/predictions/{inp.task}/, or correct the name."
                )
            folder = f".lightly/predictions/{inp.task}"
            orphans = unmatched_files(lightly, folder, listed)
            if orphans:
                raise _unmatched_error(lightly, folder, orphans, "predictions")
            checked[inp.task] = read_predictions(lightly, names, inp.task).category_names
        categories = checked[inp.task]
        schema = where(lightly, f".lightly/predictions/{inp.task}/schema.json")
        wanted: list[tuple[str, list[str]]] = []
        if isinstance(inp, PredictionsInput) and inp.categories is not None:
            wanted.append((f"{key}.categories", list(inp.categories)))
        strategy = entry.strategy
        if isinstance(strategy, BalanceStrategy) and strategy.target:
            wanted.append(
                (f"selection_config.strategies[{i}].strategy.target", list(strategy.target))
            )
        for where_key, cats in wanted:
            unknown = [c for c in cats if c not in categories]
            if unknown:
                raise ConfigError(
                    f"{where_key}: {', '.join(repr(c) for c in unknown)} is not a category of "
                    f"task '{inp.task}' ({schema} has {', '.join(categories)}). Use those names."
                )


def _check_metadata(
    lightly: Location,
    entries: list[tuple[int, StrategyEntry]],
    names: Sequence[str],
    listed: Sequence[str],
) -> None:
    custom = [
        (i, e)
        for i, e in entries
        if isinstance(e.input, MetadataInput)
        and not e.input.key.startswith(BUILTIN_METADATA_PREFIXES)
    ]
    if not custom:
        return
    orphans = unmatched_files(lightly, META_DIR, listed)
    if orphans:
        raise _unmatched_error(lightly, META_DIR, orphans, "metadata")
    schema = read_metadata_schema(lightly)
    schema_file = where(lightly, ".lightly/metadata/schema.json")
    for i, entry in custom:
        inp = entry.input
        assert isinstance(inp, MetadataInput)
        key = f"selection_config.strategies[{i}].input.key"
        field = schema.get(inp.key)
        if field is None:
            raise ConfigError(
                f"{key}: '{inp.key}' is not in {schema_file} (its paths: "
                f"{', '.join(schema) or 'none'}). Add it there, or use one of those."
            )
        wants_categories = isinstance(entry.strategy, BalanceStrategy)
        if wants_categories == field.numeric:
            kind = "numeric" if field.numeric else "categorical"
            need = "categorical" if wants_categories else "numeric"
            raise ConfigError(
                f"{key}: '{inp.key}' is {kind} ({field.value_type} in {schema_file}), but "
                f"{entry.strategy.type} needs a {need} key. Use a {need} key, or "
                f"{'WEIGHTS or THRESHOLD' if field.numeric else 'BALANCE'} with this one."
            )
    keys = sorted({e.input.key for _, e in custom if isinstance(e.input, MetadataInput)})
    values = read_metadata(lightly, names, keys)
    # A file without a metadata JSON may be corrupt and dropped by the run; one whose JSON
    # lacks a numeric key that has no default is a mistake now.
    written = {f"{META_DIR}/{f.name}" for f in lightly.child(META_DIR).list_files(skip_dirs=())}
    for k in keys:
        if not schema[k].numeric:
            continue
        for row in np.flatnonzero(np.isnan(values[k])):
            rel = metadata_path(names[int(row)])
            if rel in written:
                raise SchemaError(
                    where(lightly, rel),
                    f"metadata.{k}",
                    f"missing, and {schema_file} gives '{k}' no defaultValue; add the value "
                    "here, or a defaultValue to the schema",
                )


def _check_tag(lightly: Location, key: str, inp: EmbeddingsInput, listed: Sequence[str]) -> None:
    rel = f".lightly/tags/{inp.tag_name}.txt"
    if not lightly.exists(rel):
        raise ConfigError(
            f"{key}: tag '{inp.tag_name}' was not found at {lightly.child(rel).display}. "
            "Write the tag there (one filename per line, relative to INPUT), or correct the name."
        )
    tagged = [line.strip() for line in lightly.read_text(rel).splitlines() if line.strip()]
    present = set(listed)
    if not any(t in present for t in tagged):
        raise SchemaError(
            lightly.child(rel).display,
            "<file>",
            f"none of its {len(tagged)} filenames is an image in INPUT; list at least one, "
            "relative to the INPUT root (e.g. cluster_0/img_1.png)",
        )
