"""Embed image files with a cached pretrained model on OpenVINO, without importing PyTorch.

The default run (the pretrained ``efficientnet-lite0``, OpenVINO on the CPU, fp32) needs
PyTorch only to convert the model, once per machine (:func:`remember_pretrained`). After
that, :func:`iter_pretrained_embeddings` embeds with the converted file alone: decode threads
read each JPEG (at reduced scale where libjpeg can), resize and center-crop it with Pillow to
uint8 pixels, and the compiled model scales and normalises them itself. Not
importing PyTorch, torchvision and timm saves about 600 MB of resident memory and several
seconds of start-up; moving uint8 pixels instead of float tensors moves a quarter of the
bytes. The embeddings equal the PyTorch path's (cosine >= 0.9999; tests/models).

Example:
    >>> from thresher.models.backends import pretrained_openvino
    >>> found = pretrained_openvino("efficientnet-lite0", 224)  # doctest: +SKIP
    >>> rows = iter_pretrained_embeddings(found, "/data/images", ["a.jpg"])  # doctest: +SKIP
    >>> next(rows).shape  # doctest: +SKIP
    (1, 1280)
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from thresher.errors import CorruptMediaError, StorageError
from thresher.models.backends import OpenVINORunner, PretrainedOpenVINO, cpu_count, plan_cpu
from thresher.storage.location import Location
from thresher.storage.pixels import decode_image, model_pixels

#: One decoded batch: ``(B, 3, S, S)`` uint8 pixels and ``(index in batch, reason)`` of the
#: files that could not be read (their pixels are zeros).
Decoded = tuple[np.ndarray, list[tuple[int, str]]]


def decode_batch(loc: Location, names: Sequence[str], size: int) -> Decoded:
    """Read and decode ``names`` under ``loc`` into the model's uint8 input pixels.

    Args:
        loc: The INPUT root (one for every decode thread: its clients are shared).
        names: Files relative to the root.
        size: Side of the square input.

    Returns:
        ``(pixels, broken)``: ``(len(names), 3, size, size)`` uint8, and ``(index, reason)``
        for each file that could not be read or decoded (its pixels stay zero).
    """
    out = np.zeros((len(names), 3, size, size), np.uint8)
    broken: list[tuple[int, str]] = []
    for i, name in enumerate(names):
        try:
            out[i] = model_pixels(decode_image(loc.read_bytes(name), name, size), size)
        except CorruptMediaError as e:
            broken.append((i, e.reason))
        except StorageError as e:  # e.g. gone since the corruption check: its whole message
            broken.append((i, str(e)))
    return out, broken


@contextlib.contextmanager
def _decode_pool(workers: int) -> Iterator[ThreadPoolExecutor | None]:
    """``workers`` decode threads (None for 0), stopped when the embedding ends or fails.

    Threads, not processes: Pillow reads, decodes and resizes without holding the GIL, so
    threads decode beside OpenVINO's inference threads as processes did, without pickling
    every batch's pixels through a pipe (on 2 cores, 1,500 images embedded in 5.2 s against
    5.7 s with 2 forked workers) and without forking a process that runs OpenVINO. On an error
    or an abandoned generator (Ctrl-C) the batches not started are cancelled; the ones being
    decoded end on their own.
    """
    if workers <= 0:
        yield None
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="thresher-decode")
    finished = False
    try:
        yield pool
        finished = True
    finally:
        pool.shutdown(wait=finished, cancel_futures=True)


def iter_pretrained_embeddings(
    pretrained: PretrainedOpenVINO,
    input_url: str,
    filenames: Sequence[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    batch_size: int = 32,
    num_workers: int = -1,
    normalize: bool = True,
    on_broken: Callable[[int, str], None] | None = None,
) -> Iterator[np.ndarray]:
    """Embed image files with a converted pretrained model, one ``(B, D)`` array per batch.

    The same contract as :func:`thresher.models.inference.iter_embeddings` (batches in the
    order of ``filenames``; unreadable files NaN rows reported to ``on_broken``), for images
    on the CPU.

    Args:
        pretrained: The converted model (:func:`thresher.models.backends.pretrained_openvino`).
        input_url: Root path or fsspec URL the filenames are relative to.
        filenames: Files to embed.
        storage_options: fsspec options (credentials, endpoint).
        batch_size: Images per forward pass.
        num_workers: Decode threads; -1 = sized with the inference threads
            (:func:`thresher.models.backends.plan_cpu`), 0 = decode between the batches.
        normalize: L2-normalise each row.
        on_broken: Called with ``(index into filenames, reason)`` for a file that cannot be
            read or decoded; its row is NaN. Without it such a file raises.

    Yields:
        ``(B, D)`` float32 embeddings of the next ``B`` files.

    Raises:
        CorruptMediaError: A file cannot be decoded and ``on_broken`` is not given.
        ValueError: ``batch_size`` < 1 or ``num_workers`` < -1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if num_workers < -1:
        raise ValueError(f"num_workers must be -1 (all cores), 0 or more, got {num_workers}")
    names = list(filenames)
    if not names:
        return
    size = pretrained.input_size
    n_batches = math.ceil(len(names) / batch_size)
    planned, threads = plan_cpu(cpu_count(), "openvino", n_batches)
    workers = planned if num_workers == -1 else min(num_workers, n_batches)
    run = OpenVINORunner(
        None, size, threads, xml=pretrained.xml, pixels=(pretrained.mean, pretrained.std)
    )
    loc = Location(input_url, dict(storage_options or {}))
    batches = [names[a : a + batch_size] for a in range(0, len(names), batch_size)]
    with _decode_pool(workers) as pool:
        decoded = _decoded(pool, batches, loc, size, ahead=2 * workers + 1)
        done = 0
        for pixels, bad in decoded:
            if bad and on_broken is None:
                i, reason = bad[0]
                raise CorruptMediaError(names[done + i], reason)
            feats = run(pixels)
            if normalize:
                feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
            feats = feats.astype(np.float32, copy=False)
            for i, reason in bad:
                feats[i] = np.nan
                if on_broken is not None:
                    on_broken(done + i, reason)
            done += len(pixels)
            yield feats


def decode_files(
    input_url: str,
    filenames: Sequence[str],
    size: int,
    *,
    storage_options: Mapping[str, Any] | None = None,
    num_workers: int = -1,
    batch_size: int = 32,
) -> Decoded:
    """Decode ``filenames`` to the model's uint8 pixels at once, as the embedding does.

    What :func:`thresher.models.int8.prepare_int8` calibrates and measures on: the same
    pixels :func:`iter_pretrained_embeddings` gives the model.

    Args:
        input_url: Root path or fsspec URL the filenames are relative to.
        filenames: Files to decode.
        size: Side of the square input.
        storage_options: fsspec options.
        num_workers: Decode threads; -1 = one per core, 0 = none (one file after another).
        batch_size: Files per task.

    Returns:
        ``(pixels, broken)``: ``(len(filenames), 3, size, size)`` uint8, and ``(index,
        reason)`` for each file that could not be read or decoded (its pixels stay zero).
    """
    names = list(filenames)
    batches = [names[a : a + batch_size] for a in range(0, len(names), batch_size)]
    workers = cpu_count() if num_workers == -1 else num_workers
    workers = min(workers, len(batches))
    parts: list[np.ndarray] = [np.zeros((0, 3, size, size), np.uint8)]
    broken: list[tuple[int, str]] = []
    loc = Location(input_url, dict(storage_options or {}))
    with _decode_pool(workers if workers > 1 else 0) as pool:
        for pixels, bad in _decoded(pool, batches, loc, size, 2 * workers + 1):
            broken += [(sum(len(p) for p in parts) + i, why) for i, why in bad]
            parts.append(pixels)
    return np.concatenate(parts), broken


def _decoded(
    pool: ThreadPoolExecutor | None,
    batches: list[list[str]],
    loc: Location,
    size: int,
    ahead: int,
) -> Iterator[Decoded]:
    """The decoded batches in order, at most ``ahead`` of them decoded ahead (bounded memory)."""
    if pool is None:
        for batch in batches:
            yield decode_batch(loc, batch, size)
        return
    queue: deque[Future[Decoded]] = deque()
    todo = iter(batches)
    for batch in todo:
        queue.append(pool.submit(decode_batch, loc, batch, size))
        if len(queue) >= ahead:
            break
    while queue:
        result = queue.popleft().result()
        nxt = next(todo, None)
        if nxt is not None:
            queue.append(pool.submit(decode_batch, loc, nxt, size))
        yield result


__all__ = ["decode_batch", "decode_files", "iter_pretrained_embeddings"]
