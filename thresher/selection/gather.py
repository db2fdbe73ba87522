"""``gather_inputs``: read what a selection config needs, for the flow.

Predictions and metadata come from ``<lightly_url>/.lightly/``, built-in ``lightly.*``
metadata is computed from the images at ``<input_url>/<filename>``, SIMILARITY queries from
``.lightly/tags/<tag>.txt`` or ``.lightly/embeddings/<file>.csv``. All I/O goes through
:class:`~thresher.storage.location.Location`; nothing branches on the URL scheme.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.config.selection import (
    BUILTIN_METADATA_PREFIXES,
    EmbeddingsInput,
    MetadataInput,
    PredictionsInput,
    ScoresInput,
    SelectionConfig,
)
from thresher.errors import SchemaError
from thresher.selection.api import parse_selection_config
from thresher.selection.image_metadata import compute_lightly_metadata
from thresher.storage.embeddings_csv import read_embeddings_csv
from thresher.storage.location import Location
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
    known_metadata: Mapping[str, NDArray[Any]] | None = None,
) -> dict[str, Any]:
    """Read every input the config uses; return the keyword arguments for ``select()``.

    Args:
        selection_config: The user's selection config.
        input_url: The INPUT location (images, for ``lightly.*`` metadata).
        lightly_url: The LIGHTLY location (``.lightly/predictions``, ``metadata``, ``tags``).
        filenames: The N filenames in embedding row order, relative to INPUT.
        embeddings: (N, D) float32 embeddings of those files.
        storage_options: Passed to fsspec for both locations.
        known_metadata: Built-in metadata already computed, key -> (N,) array (the
            corruption check's stored ``thresher.*`` quality scores): used instead of decoding
            the images again.

    Returns:
        ``{"embeddings", "filenames", "scores", "predictions", "metadata", "queries"}``: pass
        them as ``select(cfg, **inputs, seed=...)``.

    Raises:
        SchemaError: a predictions, metadata, tag or query file does not match its format.
        StorageError: a file cannot be read (a query embeddings CSV that does not exist).
        ConfigError: the config is invalid.
    """
    cfg = parse_selection_config(selection_config)
    lightly = Location(lightly_url, dict(storage_options or {}))
    tasks: set[str] = set()
    custom_keys: list[str] = []
    lightly_keys: list[str] = []
    queries: dict[str, Any] = {}
    for entry in cfg.effective_strategies():
        inp = entry.input
        if isinstance(inp, (ScoresInput, PredictionsInput)):
            tasks.add(inp.task)
        elif isinstance(inp, MetadataInput):
            builtin = inp.key.startswith(BUILTIN_METADATA_PREFIXES)  # lightly.*, thresher.*
            target = lightly_keys if builtin else custom_keys
            if inp.key not in target:
                target.append(inp.key)
        elif isinstance(inp, EmbeddingsInput):
            if inp.tag_name is not None:
                queries[inp.tag_name] = read_tag(lightly, inp.tag_name)
            elif inp.query_embeddings is not None:
                queries[inp.query_embeddings] = read_query_embeddings(lightly, inp.query_embeddings)
    predictions = {t: read_predictions(lightly, filenames, t) for t in sorted(tasks)}
    metadata: dict[str, NDArray[Any]] = {}
    if custom_keys:
        metadata.update(read_metadata(lightly, filenames, custom_keys))
    known = {k: np.asarray(v) for k, v in (known_metadata or {}).items() if k in lightly_keys}
    metadata.update(known)
    lightly_keys = [k for k in lightly_keys if k not in known]
    if lightly_keys:
        inp_loc = Location(input_url, dict(storage_options or {}))
        metadata.update(compute_lightly_metadata(inp_loc, filenames, lightly_keys))
    return {
        "embeddings": embeddings,
        "filenames": filenames,
        "scores": {t: dict(p.scores) for t, p in predictions.items()},
        "predictions": predictions,
        "metadata": metadata,
        "queries": queries,
    }


def read_tag(lightly: Location, tag_name: str) -> list[str]:
    """The filenames listed in ``.lightly/tags/<tag_name>.txt`` (one per line)."""
    rel = f".lightly/tags/{tag_name}.txt"
    name = lightly.child(rel).display
    if not lightly.exists(rel):
        raise SchemaError(name, "<file>", f"tag {tag_name!r} not found")
    names = [line.strip() for line in lightly.read_text(rel).splitlines() if line.strip()]
    if not names:
        raise SchemaError(name, "<file>", "the tag lists no filenames")
    return names


def read_query_embeddings(lightly: Location, name: str) -> NDArray[np.float32]:
    """(Q, D) embeddings from ``.lightly/embeddings/<name>`` (``filenames,embedding_*,labels``)."""
    rel = f".lightly/embeddings/{name}"
    _, emb = read_embeddings_csv(lightly, rel)
    if emb.shape[0] == 0:
        raise SchemaError(lightly.child(rel).display, "<file>", "lists no query embeddings")
    return np.asarray(emb, np.float32)
