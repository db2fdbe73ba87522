"""A dataset's embeddings: the ``embeddings.csv`` of each of its completed runs.

Every completed run wrote ``.lightly/runs/<run id>/embeddings.csv`` in the LIGHTLY datasource
(Lightly's format: ``filenames,embedding_0,...,labels``). Each is one ``DatasetEmbeddingData``
whose id is the run's id and whose name is Lightly's default name for the run's start (UTC)
plus the run id's first 8 characters, so that two runs started in the same second differ:
``default_<YYYYMMDD>_<HH>h<MM>m<SS>s_<run id[:8]>``. Lightly's client takes the newest
``default*`` one for ``download_embeddings_csv``. Its read URL is signed like a sample's, over the
subject ``embeddings:<id>``, and serves the file unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from sqlalchemy import select

from thresher.platform import access, datasources, samples
from thresher.platform.core import Platform
from thresher.platform.errors import NotFound
from thresher.platform.models import Run, User
from thresher.wire import DatasetEmbeddingData

#: The subject prefix of an embeddings read URL.
SUBJECT_PREFIX = "embeddings:"
#: Where a run's embeddings lie in the LIGHTLY datasource.
CSV_PATH = ".lightly/runs/{run_id}/embeddings.csv"
_NOT_FOUND = "EMBEDDING_UNKNOWN"


def default_name(created_at_ms: int, run_id: str) -> str:
    """The embeddings' name: ``default_20230522_10h15m50s_<run id[:8]>``."""
    stamp = time.strftime("%Y%m%d_%Hh%Mm%Ss", time.gmtime(created_at_ms / 1000))
    return f"default_{stamp}_{run_id[:8]}"


def _to_wire(r: Run) -> DatasetEmbeddingData:
    return DatasetEmbeddingData(
        id=r.id, name=default_name(r.created_at, r.id), is_processed=True, created_at=r.created_at
    )


def list_embeddings(p: Platform, user: User, dataset_id: str) -> list[DatasetEmbeddingData]:
    """The dataset's embeddings, oldest first (one per completed run).

    Raises:
        NotFound: no such dataset.
        Forbidden: the caller may not download from it.
    """
    with p.session() as s:
        d = access.dataset_for(s, user, dataset_id, "download")
        q = (
            select(Run)
            .where(Run.dataset_id == d.id, Run.state == "COMPLETED")
            .order_by(Run.created_at, Run.id)
        )
        return [_to_wire(r) for r in s.scalars(q)]


def _completed_run(p: Platform, dataset_id: str, embedding_id: str) -> Run:
    with p.session() as s:
        r = s.get(Run, embedding_id)
        if r is None or r.dataset_id != dataset_id or r.state != "COMPLETED":
            raise NotFound(
                f"The dataset {dataset_id} has no embeddings {embedding_id!r}; "
                "list them with get_all_embedding_data().",
                _NOT_FOUND,
            )
        s.expunge(r)
        return r


def read_url(
    p: Platform,
    user: User,
    dataset_id: str,
    embedding_id: str,
    base_url: str,
    expires_in: int | None = None,
) -> str:
    """An expiring URL that downloads the embeddings CSV without a token.

    Raises:
        NotFound: no such dataset or embeddings (``EMBEDDING_UNKNOWN``).
        Forbidden: the caller may not download from the dataset.
    """
    with p.session() as s:
        access.dataset_for(s, user, dataset_id, "download")
    _completed_run(p, dataset_id, embedding_id)
    token = samples.public_token(p, SUBJECT_PREFIX + embedding_id, samples.lifetime(p, expires_in))
    base = samples.base_of(p, base_url)
    return f"{base}/v1/datasets/{dataset_id}/embeddings/{embedding_id}/csv?publicToken={token}"


def open_csv(
    p: Platform, dataset_id: str, embedding_id: str, token: str
) -> tuple[str, int | None, Iterator[bytes]]:
    """Check an embeddings read URL's token and open the CSV in the LIGHTLY datasource.

    Returns:
        A file name for it (``embeddings_<name>.csv``), its size if known, its bytes.

    Raises:
        Forbidden: a wrong, malformed or expired token.
        NotFound: no such embeddings, or the file is missing.
        Unprocessable: it lies in a LOCAL datasource the server cannot see.
    """
    samples.check_public_token(p, SUBJECT_PREFIX + embedding_id, token)
    run = _completed_run(p, dataset_id, embedding_id)
    with p.session() as s:
        cfg = datasources.resolve(p, s, dataset_id, datasources.LIGHTLY_PURPOSES)
    size, chunks = samples.open_in_datasource(
        cfg,
        p.settings.lightly_root,
        CSV_PATH.format(run_id=run.id),
        "embeddings file",
        "EMBEDDING_UNAVAILABLE",
        "THRESHER_LIGHTLY_ROOT (or THRESHER_LOCAL_ROOT) set to the worker's --lightly-mount folder",
    )
    return f"{default_name(run.created_at, run.id)}.csv", size, chunks
