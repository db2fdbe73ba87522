"""``gather_inputs``: read what a selection config needs, for the flow.

Predictions and metadata come from ``<lightly_url>/.lightly/``, built-in ``lightly.*``
metadata is computed from the images at ``<input_url>/<filename>``, SIMILARITY queries from
``.lightly/tags/<tag>.txt`` or ``.lightly/embeddings/<file>.csv``. All I/O goes through
``fsspec.core.url_to_fs``; nothing branches on the URL scheme.
"""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Mapping
from typing import Any

import numpy as np
from fsspec.core import url_to_fs
from numpy.typing import NDArray

from thresher.config.selection import (
    EmbeddingsInput,
    MetadataInput,
    PredictionsInput,
    ScoresInput,
    SelectionConfig,
)
from thresher.errors import SchemaError
from thresher.selection.api import parse_selection_config
from thresher.selection.image_metadata import compute_lightly_metadata
from thresher.storage.metadata import read_metadata
from thresher.storage.predictions import read_predictions


def gather_inputs(
    selection_config: SelectionConfig | Mapping[str, Any],
    *,
    input_url: str,
    lightly_url: str,
    filenames: list[str],
    embeddings: NDArray[np.float32],
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read every input the config uses; return the keyword arguments for ``select()``.

    Args:
        selection_config: The user's selection config.
        input_url: The INPUT location (images, for ``lightly.*`` metadata).
        lightly_url: The LIGHTLY location (``.lightly/predictions``, ``metadata``, ``tags``).
        filenames: The N filenames in embedding row order, relative to INPUT.
        embeddings: (N, D) float32 embeddings of those files.
        storage_options: Passed to fsspec for both locations.

    Returns:
        ``{"embeddings", "filenames", "scores", "predictions", "metadata", "queries"}``: pass
        them as ``select(cfg, **inputs, seed=...)``.

    Raises:
        SchemaError: a predictions, metadata, tag or query file does not match its format.
        ConfigError: the config is invalid.
    """
    cfg = parse_selection_config(selection_config)
    tasks: set[str] = set()
    custom_keys: list[str] = []
    lightly_keys: list[str] = []
    queries: dict[str, Any] = {}
    for entry in cfg.effective_strategies():
        inp = entry.input
        if isinstance(inp, (ScoresInput, PredictionsInput)):
            tasks.add(inp.task)
        elif isinstance(inp, MetadataInput):
            target = lightly_keys if inp.key.startswith("lightly.") else custom_keys
            if inp.key not in target:
                target.append(inp.key)
        elif isinstance(inp, EmbeddingsInput):
            if inp.tag_name is not None:
                queries[inp.tag_name] = read_tag(lightly_url, inp.tag_name, storage_options)
            elif inp.query_embeddings is not None:
                queries[inp.query_embeddings] = read_query_embeddings(
                    lightly_url, inp.query_embeddings, storage_options
                )
    predictions = {
        t: read_predictions(lightly_url, filenames, t, storage_options) for t in sorted(tasks)
    }
    metadata: dict[str, NDArray[Any]] = {}
    if custom_keys:
        metadata.update(read_metadata(lightly_url, filenames, custom_keys, storage_options))
    if lightly_keys:
        metadata.update(
            compute_lightly_metadata(input_url, filenames, lightly_keys, storage_options)
        )
    return {
        "embeddings": embeddings,
        "filenames": filenames,
        "scores": {t: dict(p.scores) for t, p in predictions.items()},
        "predictions": predictions,
        "metadata": metadata,
        "queries": queries,
    }


def read_tag(
    lightly_url: str, tag_name: str, storage_options: dict[str, Any] | None = None
) -> list[str]:
    """The filenames listed in ``.lightly/tags/<tag_name>.txt`` (one per line)."""
    fs, root = url_to_fs(lightly_url, **(storage_options or {}))
    path = posixpath.join(root, ".lightly", "tags", f"{tag_name}.txt")
    try:
        text = fs.cat_file(path).decode("utf-8")
    except FileNotFoundError as e:
        raise SchemaError(path, "<file>", f"tag {tag_name!r} not found") from e
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise SchemaError(path, "<file>", "the tag lists no filenames")
    return names


def read_query_embeddings(
    lightly_url: str, name: str, storage_options: dict[str, Any] | None = None
) -> NDArray[np.float32]:
    """(Q, D) embeddings from ``.lightly/embeddings/<name>`` (``filenames,embedding_*,labels``)."""
    fs, root = url_to_fs(lightly_url, **(storage_options or {}))
    path = posixpath.join(root, ".lightly", "embeddings", name)
    try:
        text = fs.cat_file(path).decode("utf-8")
    except FileNotFoundError as e:
        raise SchemaError(path, "<file>", "query embeddings file not found") from e
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not rows[0] or rows[0][0] != "filenames":
        raise SchemaError(path, "filenames", "the header must start with 'filenames'")
    header = rows[0]
    cols = [j for j, h in enumerate(header) if h.startswith("embedding_")]
    if not cols:
        raise SchemaError(path, "embedding_0", "no embedding_* columns")
    out = np.empty((len(rows) - 1, len(cols)), np.float32)
    for r, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise SchemaError(path, f"row {r + 2}", f"expected {len(header)} columns")
        try:
            out[r] = [float(row[j]) for j in cols]
        except ValueError as e:
            raise SchemaError(path, f"row {r + 2}", f"not a number ({e})") from e
    if out.shape[0] == 0 or not np.isfinite(out).all():
        raise SchemaError(path, "embedding_*", "needs at least one row of finite numbers")
    return out
