"""Embed image files with a cached pretrained model on OpenVINO, without importing PyTorch.

The default run (the pretrained ``efficientnet-lite0``, OpenVINO on the CPU, fp32) needs
PyTorch only to convert the model, once per machine (:func:`remember_pretrained`). After
that, :func:`iter_pretrained_embeddings` embeds with the converted file alone: decode worker
processes read each JPEG (at reduced scale where libjpeg can), resize and center-crop it with
Pillow to uint8 pixels, and the compiled model scales and normalises them itself. Not
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
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from multiprocessing.pool import AsyncResult
from typing import Any

import numpy as np

from thresher.errors import CorruptMediaError, StorageError
from thresher.models.backends import OpenVINORunner, PretrainedOpenVINO, cpu_count, plan_cpu
from thresher.storage.location import Location
from thresher.storage.pixels import decode_image, model_pixels

#: One decoded batch: ``(B, 3, S, S)`` uint8 pixels and ``(index in batch, reason)`` of the
#: files that could not be read (their pixels are zeros).
Decoded = tuple[np.ndarray, list[tuple[int, str]]]

#: The INPUT location of this process, opened on first use (fsspec's async filesystems are not
#: fork-safe, so each decode worker opens its own).
_opened: dict[tuple[int, str], Location] = {}


def _location(url: str, storage_options: Mapping[str, Any]) -> Location:
    key = (os.getpid(), url)
    if key not in _opened:
        _opened.clear()
        _opened[key] = Location(url, dict(storage_options))
    return _opened[key]


def decode_batch(
    url: str, storage_options: Mapping[str, Any], names: Sequence[str], size: int
) -> Decoded:
    """Read and decode ``names`` under ``url`` into the model's uint8 input pixels.

    Args:
        url: The INPUT root.
        storage_options: fsspec options.
        names: Files relative to the root.
        size: Side of the square input.

    Returns:
        ``(pixels, broken)``: ``(len(names), 3, size, size)`` uint8, and ``(index, reason)``
        for each file that could not be read or decoded (its pixels stay zero).
    """
    out = np.zeros((len(names), 3, size, size), np.uint8)
    broken: list[tuple[int, str]] = []
    loc = _location(url, storage_options)
    for i, name in enumerate(names):
        try:
            out[i] = model_pixels(decode_image(loc.read_bytes(name), name, size), size)
        except CorruptMediaError as e:
            broken.append((i, e.reason))
        except StorageError as e:  # e.g. gone since the corruption check: its whole message
            broken.append((i, str(e)))
    return out, broken


def _ignore_sigint() -> None:
    """Decode workers leave Ctrl-C to the main process, which stops them (no tracebacks).

    They are forked with SIGINT blocked (:func:`_fork_pool`): a Ctrl-C that reaches them before
    this line stays pending, and ignoring it discards it. Their Python stderr goes nowhere: a
    decode error reaches the main process as the task's result, and what a worker could print
    is its end when the interrupted main process is gone ("Process ForkPoolWorker-1:" under
    the one line that Ctrl-C prints).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (the worker's life)


def _fork_pool(workers: int) -> Any:
    """A pool of ``workers`` forked decode workers that never see a Ctrl-C.

    SIGINT is blocked in this thread while they are forked: a Ctrl-C sent to the whole process
    group (a terminal's) between a fork and the worker's :func:`_ignore_sigint` printed a
    worker's KeyboardInterrupt traceback. This process gets the signal when it is unblocked.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_sigint)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _decode_pool(workers: int) -> Iterator[Any]:
    """Forked decode workers (None for 0), closed after a normal end, terminated otherwise.

    Every task done, the workers exit on their own: ``close()``. ``terminate()`` is kept for an
    error or an abandoned generator (its ``GeneratorExit`` comes through here): it can wait
    forever on a worker that holds the task queue's lock (a run once hung there, after its
    last batch).
    """
    pool = _fork_pool(workers) if workers > 0 else None
    finished = False
    try:
        yield pool
        finished = True
    finally:
        if pool is not None:
            if finished:
                pool.close()
            else:
                pool.terminate()
            pool.join()


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
        num_workers: Decode worker processes; -1 = sized with the inference threads
            (:func:`thresher.models.backends.plan_cpu`), 0 = decode in this process.
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
    # Compiled before the decode workers fork: they only decode, which is safe after
    # OpenVINO ran here (running OpenVINO itself in a forked child hangs).
    run = OpenVINORunner(
        None, size, threads, xml=pretrained.xml, pixels=(pretrained.mean, pretrained.std)
    )
    options = dict(storage_options or {})
    batches = [names[a : a + batch_size] for a in range(0, len(names), batch_size)]
    with _decode_pool(workers) as pool:
        decoded = _decoded(pool, batches, input_url, options, size, ahead=2 * workers + 1)
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
        num_workers: Decode worker processes; -1 = one per core, 0 = this process.
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
    options = dict(storage_options or {})
    with _decode_pool(workers if workers > 1 else 0) as pool:
        for pixels, bad in _decoded(pool, batches, input_url, options, size, 2 * workers + 1):
            broken += [(sum(len(p) for p in parts) + i, why) for i, why in bad]
            parts.append(pixels)
    return np.concatenate(parts), broken


def _decoded(
    pool: Any,
    batches: list[list[str]],
    url: str,
    options: dict[str, Any],
    size: int,
    ahead: int,
) -> Iterator[Decoded]:
    """The decoded batches in order, at most ``ahead`` of them decoded ahead (bounded memory)."""
    if pool is None:
        for batch in batches:
            yield decode_batch(url, options, batch, size)
        return
    queue: deque[AsyncResult[Decoded]] = deque()
    todo = iter(batches)
    for batch in todo:
        queue.append(pool.apply_async(decode_batch, (url, options, batch, size)))
        if len(queue) >= ahead:
            break
    while queue:
        result = queue.popleft().get()
        nxt = next(todo, None)
        if nxt is not None:
            queue.append(pool.apply_async(decode_batch, (url, options, nxt, size)))
        yield result


__all__ = ["decode_batch", "decode_files", "iter_pretrained_embeddings"]
