"""Downloads: a tag's files and the embeddings CSV (Lightly's ``_DownloadDatasetMixin``).

``download_dataset`` writes each file of the tag under its relative name in ``output_dir``,
byte for byte as the server serves the original (Lightly's client decodes and re-encodes
images; this one does not), several at once, each to a temporary name first and then renamed.
A name that would land outside ``output_dir`` (absolute, ``..``, a drive letter, a folder that
is a symbolic link) is refused. Unlike Lightly's client, failures are not only warned about: at
the end :class:`DownloadError` says how many files failed, which, and why.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from thresher.client._core import _ClientCore
from thresher.client._tags import _bits
from thresher.client.errors import ApiException, ServerUnreachableError
from thresher.client.http import DEFAULT_TIMEOUT_S, stream_download
from thresher.wire import DatasetEmbeddingData

if TYPE_CHECKING:
    from thresher.wire import TagData

#: How many failures the error message names.
SHOWN_FAILURES = 5
_TRIES = 3


class DownloadError(RuntimeError):
    """Some files of a tag could not be downloaded; the message lists which and why.

    Attributes:
        failures: ``(file name, reason)`` for every file that failed.
        total: How many files the tag has.
    """

    def __init__(self, output_dir: str, failures: list[tuple[str, str]], total: int) -> None:
        self.failures = failures
        self.total = total
        shown = "; ".join(f"{name!r}: {why.rstrip('.')}" for name, why in failures[:SHOWN_FAILURES])
        more = len(failures) - SHOWN_FAILURES
        tail = f"; and {more} more" if more > 0 else ""
        super().__init__(
            f"{len(failures)} of {total} files could not be downloaded to {output_dir}: "
            f"{shown}{tail}. The other files were written."
        )


class UnsafeFilenameError(ValueError):
    """A sample's file name would be written outside the output folder."""


def target_path(root: Path, filename: str) -> Path:
    """Where ``filename`` goes under ``root``, creating its folders; refuses any escape.

    Args:
        root: The output folder (resolved, existing).
        filename: The sample's relative name, ``/``-separated.

    Raises:
        UnsafeFilenameError: An absolute name, a drive letter, a backslash, ``.``/``..`` or an
            empty part, or a folder on the way that is a symbolic link or not a folder.
    """
    parts = PurePosixPath(filename).parts
    if (
        not filename
        or filename.startswith("/")
        or "\\" in filename
        or "\0" in filename
        or (len(filename) > 1 and filename[1] == ":")
        or any(p in ("", ".", "..") for p in filename.split("/"))
    ):
        raise UnsafeFilenameError(
            "refused: the name is not a plain relative path (absolute, '..', a drive letter "
            "or a backslash) and would be written outside the output folder"
        )
    folder = root
    for part in parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise UnsafeFilenameError(
                f"refused: {folder} is a symbolic link; it could lead outside the output folder"
            )
        folder.mkdir(exist_ok=True)
        if not folder.is_dir():
            raise UnsafeFilenameError(f"refused: {folder} exists and is not a folder")
    return folder / parts[-1]


def _fetch(url: str, out: Path, timeout_s: float) -> None:
    """Stream ``url`` to a temporary file beside ``out``, then rename it to ``out``."""
    part = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    try:
        with stream_download(url, timeout_s=timeout_s) as response, open(part, "wb") as f:
            for chunk in response.iter_bytes():
                f.write(chunk)
        os.replace(part, out)  # replaces a symlink at out itself, never its target
    finally:
        part.unlink(missing_ok=True)


def _with_retries(get_url: Callable[[], str], out: Path, timeout_s: float) -> None:
    """Download with up to 3 tries on a server error or no answer (a new URL each try)."""
    for attempt in range(1, _TRIES + 1):
        try:
            _fetch(get_url(), out, timeout_s)
            return
        except (ApiException, ServerUnreachableError) as e:
            server_side = isinstance(e, ApiException) and (e.status or 0) >= 500
            if attempt == _TRIES or not (server_side or isinstance(e, ServerUnreachableError)):
                raise
            time.sleep(attempt)


def _reason(e: BaseException) -> str:
    if isinstance(e, ApiException) and e.error:
        return f"HTTP {e.status} {e.code}: {e.error}"
    return str(e) or type(e).__name__


class _DownloadMixin(_ClientCore):
    if TYPE_CHECKING:  # from _TagsMixin, beside this mixin in ApiWorkflowClient

        def get_all_tags(self) -> list[TagData]: ...

        def get_filenames(self) -> list[str]: ...

    def download_dataset(
        self,
        output_dir: str,
        tag_name: str = "initial-tag",
        max_workers: int = 8,
        verbose: bool = True,
    ) -> None:
        """Download the files of a tag into ``output_dir``, byte-identical to the originals.

        Each file goes to ``output_dir/<its relative name>`` (folders are created, existing
        files replaced), written to a temporary name first. Names that would land outside
        ``output_dir`` are refused and count as failures.

        Args:
            output_dir: Where to write the files.
            tag_name: The tag to download.
            max_workers: How many files are downloaded at once.
            verbose: Print the count and show a progress bar.

        Raises:
            ValueError: The dataset has no downloadable images, or no tag ``tag_name``.
            DownloadError: Some files failed (all others were written); the message names the
                first few and why.

        Example:
            >>> client.download_dataset("./my/output/path/", "initial-tag")  # doctest: +SKIP
        """
        dataset_id = self.dataset_id
        if self.get_dataset_by_id(dataset_id).img_type != "full":
            raise ValueError(f"Dataset with id {dataset_id} has no downloadable images!")
        tag = next((t for t in self.get_all_tags() if t.name == tag_name), None)
        if tag is None:
            raise ValueError(f"Dataset with id {dataset_id} has no tag {tag_name}!")
        sample_ids = self._mappings("_id")
        filenames = self.get_filenames()
        indices = [k for k in _bits(tag.bit_mask_data) if k < len(sample_ids)]
        todo = [(sample_ids[k], filenames[k]) for k in indices]
        root = Path(output_dir)
        root.mkdir(parents=True, exist_ok=True)
        root = root.resolve()
        workers = max(1, min(len(todo), max_workers))
        failures: list[tuple[str, str]] = []
        lock = threading.Lock()
        import tqdm

        if verbose:
            print(f"Downloading {len(todo)} images (with {workers} workers):", flush=True)
        bar = tqdm.tqdm(total=len(todo), unit="imgs", disable=not verbose)

        def one(item: tuple[str, str]) -> None:
            sample_id, filename = item
            try:
                out = target_path(root, filename)
                _with_retries(
                    lambda: self._sample_read_url(dataset_id, sample_id),
                    out,
                    DEFAULT_TIMEOUT_S,
                )
            except (OSError, ValueError, ApiException, ServerUnreachableError) as e:
                with lock:
                    failures.append((filename, _reason(e)))
            finally:
                with lock:
                    bar.update(1)

        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(one, todo))
        finally:
            bar.close()
        if failures:
            order = {name: i for i, (_, name) in enumerate(todo)}
            failures.sort(key=lambda f: order.get(f[0], 0))
            raise DownloadError(str(output_dir), failures, len(todo))

    def get_all_embedding_data(self) -> list[DatasetEmbeddingData]:
        """The current dataset's embeddings: one per completed run, oldest first."""
        body = self._http.get_json(f"/v1/datasets/{self.dataset_id}/embeddings")
        return [DatasetEmbeddingData.model_validate(e) for e in body]

    def get_embedding_data_by_name(self, name: str) -> DatasetEmbeddingData:
        """The embeddings named ``name``.

        Raises:
            ValueError: No embeddings have this name.
        """
        for embedding in self.get_all_embedding_data():
            if embedding.name == name:
                return embedding
        raise ValueError(
            f"There are no embeddings with name '{name}' for dataset with id '{self.dataset_id}'."
        )

    def download_embeddings_csv_by_id(self, embedding_id: str, output_path: str) -> None:
        """Download the embeddings CSV ``embedding_id`` to ``output_path`` (written atomically).

        The file: ``filenames,embedding_0,...,embedding_{D-1},labels``, one row per image.
        """
        out = Path(output_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        dataset_id = self.dataset_id

        def url() -> str:
            return self._absolute(
                self._http.get_json(
                    f"/v1/datasets/{dataset_id}/embeddings/{embedding_id}/readCSVUrl"
                )
            )

        _with_retries(url, out, DEFAULT_TIMEOUT_S)

    def download_embeddings_csv(self, output_path: str) -> None:
        """Download the latest embeddings (newest ``default*`` by creation) to ``output_path``.

        Raises:
            RuntimeError: The dataset has no embeddings (no completed run).
        """
        defaults = [e for e in self.get_all_embedding_data() if e.name.startswith("default")]
        if not defaults:
            raise RuntimeError(
                f"Could not find embeddings for dataset with id '{self.dataset_id}'."
            )
        latest = max(defaults, key=lambda e: e.created_at)
        self.download_embeddings_csv_by_id(latest.id, output_path)

    # --- helpers ----------------------------------------------------------------------------

    def _sample_read_url(self, dataset_id: str, sample_id: str) -> str:
        url = self._http.get_json(
            f"/v1/datasets/{dataset_id}/samples/{sample_id}/readurl", type="full"
        )
        return self._absolute(url)

    def _absolute(self, url: object) -> str:
        if not isinstance(url, str):
            raise ApiException(status=200, reason="the read URL is not a JSON string")
        return url if "://" in url else self.server_url + "/" + url.lstrip("/")
