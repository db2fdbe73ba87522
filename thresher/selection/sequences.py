"""Sequence selection (``worker_config.selected_sequence_length = L > 1``): pick runs of L frames.

The selection engine picks **sequences** instead of single samples:

1. :func:`plan` groups the run's kept samples into candidate sequences of exactly L rows:

   - a video run: per video, the kept frames are cut into maximal runs of consecutive frame
     indices (a corrupt or duplicate frame ends a run), and each run into chunks of L from
     its start. A sequence is therefore always L consecutive frames of one video; a run's
     tail shorter than L is not a candidate.
   - an image run: per folder, the kept files in sorted name order are cut into chunks of L
     (corrupt and duplicate files are skipped, so a sequence is L consecutive *kept* files
     of one folder); the tail shorter than L is not a candidate.

2. :func:`group_inputs` turns every input of the selection into one value per sequence:
   embeddings are averaged (and re-normalised when the frames' embeddings are unit length);
   scores, numeric metadata, class distributions (probabilities) are averaged; object counts
   (``CATEGORY_COUNT``) are summed; categorical metadata takes the sequence's most frequent
   value (the earliest on a tie); queries given as filenames are looked up among the frames;
   a sequence holding a preselected (datapool) frame counts as preselected, and a
   preselected row in no candidate sequence (an earlier run's pick) is one more, already
   chosen, sequence on its own.
3. :func:`group_config` asks for ``n_samples / L`` sequences (``proportion_samples`` is taken
   of the candidate sequences, so the frames selected are that proportion, rounded to a
   multiple of L, of the frames in candidate sequences).
4. :func:`expand` turns the picked sequences back into frame rows, sequence after sequence in
   pick order, each sequence's frames in order; everything downstream sees frames.

:func:`sequence_information` builds ``sequence_information.json`` (Lightly's format).

Example:
    >>> names = [f"v-{i:02d}-mp4.png" for i in range(7)]
    >>> plan(names, 3, videos=True).tolist()
    [[0, 1, 2], [3, 4, 5]]
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thresher.config import check_sequence_length
from thresher.config.selection import SelectionConfig
from thresher.storage.predictions import TaskPredictions
from thresher.storage.video import parse_frame_name


def plan(filenames: Sequence[str], length: int, *, videos: bool) -> NDArray[np.int64]:
    """The candidate sequences: a (G, L) array of row indices into ``filenames``.

    Args:
        filenames: The kept samples, in embedding row order.
        length: L, the sequence length (>= 1).
        videos: Whether the names are frame names (a video run).

    Returns:
        One row per candidate sequence, its members in frame (or name) order; sequences are
        ordered by video (folder) name, then position. Names that are not frame names in a
        video run are never in a sequence.
    """
    by_key: dict[str, list[tuple[Any, int]]] = {}
    for row, name in enumerate(filenames):
        if videos:
            parsed = parse_frame_name(name)
            if parsed is None:
                continue
            by_key.setdefault(parsed[0], []).append((parsed[1], row))
        else:
            by_key.setdefault(posixpath.dirname(name), []).append((name, row))
    groups: list[list[int]] = []
    for key in sorted(by_key):
        members = sorted(by_key[key])
        run: list[int] = []
        prev: Any = None
        for pos, row in members:
            if videos and run and pos != prev + 1:
                run = []  # a gap in the frame indices ends the run
            run.append(row)
            prev = pos
            if len(run) == length:
                groups.append(run)
                run = []
    return np.asarray(groups, np.int64).reshape(-1, length)


def group_config(selection: SelectionConfig, length: int) -> SelectionConfig:
    """The selection config over sequences: ``n_samples / L`` sequences (proportion unchanged)."""
    n = selection.n_samples
    if length <= 1 or n is None or n == -1:
        return selection
    check_sequence_length(n, length)
    return selection.model_copy(update={"n_samples": n // length})


def _unit_rows(x: NDArray[np.float32]) -> bool:
    norms = np.linalg.norm(x, axis=1)
    return bool(len(norms)) and bool(np.allclose(norms, 1.0, atol=1e-3))


def _mean(values: NDArray[Any], members: NDArray[np.int64]) -> NDArray[Any]:
    out: NDArray[Any] = np.asarray(values)[members].mean(axis=1)
    return out


def _mode(values: NDArray[Any], members: NDArray[np.int64]) -> NDArray[Any]:
    out = np.empty(len(members), dtype=object)
    for g, rows in enumerate(members):
        seq = list(np.asarray(values, dtype=object)[rows])
        counts = Counter(seq)
        best = max(counts.values())
        out[g] = next(v for v in seq if counts[v] == best)
    return out


def _group_predictions(p: TaskPredictions, members: NDArray[np.int64]) -> TaskPredictions:
    has: NDArray[np.bool_] = np.asarray(p.has_predictions, bool)
    if has.size:
        has = np.asarray(has[members].any(axis=1), bool)
    return dataclasses.replace(
        p,
        class_distribution=_mean(p.class_distribution, members).astype(np.float32),
        category_counts=np.asarray(p.category_counts)[members].sum(axis=1).astype(np.int32),
        scores={k: _mean(v, members).astype(np.float32) for k, v in p.scores.items()},
        has_predictions=has,
    )


def group_inputs(inputs: Mapping[str, Any], members: NDArray[np.int64]) -> dict[str, Any]:
    """The keyword arguments of ``select()`` with one value per sequence instead of per frame.

    Args:
        inputs: ``select()``'s keyword arguments for the frames (``gather_inputs``' result,
            plus ``preselected`` if any).
        members: :func:`plan`'s (G, L) rows.

    Returns:
        The same keys, over the G sequences (see the module docstring for how each is formed)
        followed by one preselected sequence per preselected row outside them; the picks of
        ``select()`` are always among the first G.
    """
    emb = np.asarray(inputs["embeddings"], np.float32)
    out: dict[str, Any] = dict(inputs)
    given = inputs.get("preselected")
    pre = np.unique(np.asarray(given if given is not None else (), np.int64))
    if pre.size:  # preselected rows in no candidate sequence: one chosen sequence each
        covered = np.zeros(len(emb), bool)
        covered[members.reshape(-1)] = True
        extra = pre[~covered[pre]]
        members = np.vstack([members, np.repeat(extra[:, None], members.shape[1], axis=1)])
    g_emb = _mean(emb, members).astype(np.float32)
    if _unit_rows(emb):
        norms = np.linalg.norm(g_emb, axis=1, keepdims=True)
        g_emb = g_emb / np.maximum(norms, 1e-12)
    out["embeddings"] = g_emb
    names = inputs.get("filenames")
    if names is not None:
        out["filenames"] = [names[int(rows[0])] for rows in members]
        index = {n: i for i, n in enumerate(names)}
        queries: dict[str, Any] = {}
        for key, q in (inputs.get("queries") or {}).items():
            if isinstance(q, np.ndarray) and q.dtype.kind in "iuf":
                queries[key] = q
            else:  # filenames: their frames' own embeddings
                rows = [index[str(n)] for n in q if str(n) in index]
                queries[key] = emb[np.asarray(rows, np.int64)] if rows else list(q)
        out["queries"] = queries
    out["scores"] = {
        task: {k: _mean(v, members) for k, v in table.items()}
        for task, table in (inputs.get("scores") or {}).items()
    }
    out["predictions"] = {
        task: _group_predictions(p, members)
        for task, p in (inputs.get("predictions") or {}).items()
    }
    metadata: dict[str, NDArray[Any]] = {}
    for key, v in (inputs.get("metadata") or {}).items():
        arr = np.asarray(v)
        metadata[key] = _mean(arr, members) if arr.dtype.kind in "iuf" else _mode(arr, members)
    out["metadata"] = metadata
    out["preselected"] = None
    if pre.size:
        taken = np.zeros(len(emb), bool)
        taken[pre] = True
        out["preselected"] = np.flatnonzero(taken[members].any(axis=1)).astype(np.int64)
    return out


def expand(picked: NDArray[np.integer[Any]], members: NDArray[np.int64]) -> NDArray[np.int64]:
    """The frame rows of the picked sequences: sequence after sequence, frames in order."""
    return np.asarray(members[np.asarray(picked, np.int64)], np.int64).reshape(-1)


def sequence_information(
    chosen: Sequence[str],
    length: int,
    *,
    videos: bool,
    timestamps: Callable[[str, int], tuple[int | None, float | None]] | None = None,
) -> list[dict[str, Any]]:
    """``sequence_information.json``: one entry per selected sequence, in pick order.

    Args:
        chosen: The selected samples as the select stage expanded them (L per sequence).
        length: L.
        videos: A video run: entries are ``{video_name, frame_names, frame_timestamps_pts,
            frame_timestamps_sec, frame_indices}``; else ``{filenames}``.
        timestamps: ``(video, frame index) -> (pts, seconds)`` for a video run.
    """
    out: list[dict[str, Any]] = []
    for start in range(0, len(chosen) - length + 1, length):
        names = list(chosen[start : start + length])
        if not videos:
            out.append({"filenames": names})
            continue
        parsed = [parse_frame_name(n) for n in names]
        video = parsed[0][0] if parsed[0] else names[0]
        indices = [p[1] if p else -1 for p in parsed]
        stamps = [timestamps(video, i) if timestamps else (None, None) for i in indices]
        out.append(
            {
                "video_name": video,
                "frame_names": names,
                "frame_timestamps_pts": [s[0] for s in stamps],
                "frame_timestamps_sec": [s[1] for s in stamps],
                "frame_indices": indices,
            }
        )
    return out
