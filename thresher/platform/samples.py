"""A sample's original file: its expiring read URL, and its bytes for whoever holds one.

A read URL is Lightly's ``REDIRECTED_READ_URL`` form,
``{base}/v1/datasets/{d}/samples/{s}/readurlRedirect?publicToken={token}``; the token
(``<expires>.<signature>``) grants access to that one sample until it expires, with no API
token. It is signed with the server's one read-URL key (``p.secrets.sign``) over the subject
``sample:<sample id>``, so it can never pass for an artifact's or an embedding's link. Its
lifetime is ``THRESHER_READ_URL_SECONDS`` unless the caller asks for another (``expiresIn``).

The bytes come from the dataset's INPUT datasource, unchanged and streamed (never decoded or
re-encoded). Files in a LOCAL datasource are served only when the server sees the workers'
mount (``THRESHER_LOCAL_ROOT``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from thresher.platform import access, datasources
from thresher.platform.core import Platform
from thresher.platform.errors import Forbidden, Invalid, NotFound, Unprocessable
from thresher.platform.locations import fsspec_target
from thresher.platform.models import Dataset, Sample, User
from thresher.wire import DatasourceConfig

#: The subject prefix of a sample's read URL (see the module doc).
SUBJECT_PREFIX = "sample:"


def lifetime(p: Platform, expires_in: int | None) -> int:
    """The Unix time a read URL made now expires: ``expires_in`` seconds, else the setting.

    Raises:
        Invalid: ``expires_in`` is not positive.
    """
    if expires_in is not None and expires_in <= 0:
        raise Invalid(f"expiresIn must be a positive number of seconds, not {expires_in}.")
    seconds = expires_in if expires_in is not None else p.settings.read_url_seconds
    return int(time.time() + seconds)


def public_token(p: Platform, subject: str, expires: int) -> str:
    """The ``publicToken`` of a read URL for ``subject``: ``<expires>.<signature>``."""
    return f"{expires}.{p.secrets.sign(subject, expires)}"


def check_public_token(p: Platform, subject: str, token: str) -> None:
    """Accept ``token`` for ``subject``, or raise.

    Raises:
        Forbidden: the token is malformed, signed for something else, or expired.
    """
    if not token:
        raise Forbidden("The read URL has no publicToken; ask for a new read URL.")
    expires_text, _, signature = token.partition(".")
    try:
        expires = int(expires_text)
    except ValueError:
        raise Forbidden(
            "The read URL's publicToken is malformed; ask for a new read URL."
        ) from None
    if not signature or not p.secrets.check(subject, expires, signature):
        raise Forbidden("The read URL's signature is wrong; ask for a new read URL.")
    if expires < time.time():
        raise Forbidden("The read URL has expired; ask for a new read URL.")


def base_of(p: Platform, base_url: str) -> str:
    """The base of URLs handed out: ``THRESHER_PUBLIC_URL``, else the request's base URL."""
    return (p.settings.public_url or base_url).rstrip("/")


def signed_url(
    p: Platform, dataset_id: str, sample_id: str, base_url: str, expires_in: int | None = None
) -> str:
    """The read URL of a sample (no access check: callers have done theirs)."""
    token = public_token(p, SUBJECT_PREFIX + sample_id, lifetime(p, expires_in))
    return (
        f"{base_of(p, base_url)}/v1/datasets/{dataset_id}/samples/{sample_id}"
        f"/readurlRedirect?publicToken={token}"
    )


def read_url(
    p: Platform,
    user: User,
    dataset_id: str,
    sample_id: str,
    base_url: str,
    expires_in: int | None = None,
) -> str:
    """An expiring URL that fetches the sample's original file without a token.

    Args:
        p: The platform.
        user: The caller (needs ``download`` on the dataset).
        dataset_id: The sample's dataset.
        sample_id: The sample.
        base_url: The request's base URL (``THRESHER_PUBLIC_URL`` wins).
        expires_in: Seconds the URL stays valid; default ``THRESHER_READ_URL_SECONDS``.

    Raises:
        NotFound: no such dataset, or no such sample in it (``SAMPLE_UNKNOWN``).
        Forbidden: the caller may not download from the dataset.
    """
    with p.session() as s:
        d = access.dataset_for(s, user, dataset_id, "download")
        sample = s.get(Sample, sample_id)
        if sample is None or sample.dataset_id != d.id:
            raise NotFound(
                f"The dataset {dataset_id} has no sample {sample_id!r}.", "SAMPLE_UNKNOWN"
            )
    return signed_url(p, dataset_id, sample_id, base_url, expires_in)


def safe_relative(name: str, what: str) -> str:
    """``name`` if it is a plain relative path (no leading ``/``, no ``..``, no drive letter).

    Raises:
        Invalid: anything that could point outside the datasource.
    """
    parts = name.replace("\\", "/").split("/")
    if (
        not name
        or name.startswith(("/", "\\"))
        or "://" in name
        or (len(name) > 1 and name[1] == ":")
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise Invalid(
            f"The {what} {name!r} is not a plain relative path (no leading '/', no '..'); "
            "it cannot be read from the datasource."
        )
    return name


def is_served(fs: object, root: str, path: str) -> bool:
    """Whether ``path`` may be streamed: on a local disk, a regular file inside ``root``.

    A link (or a linked folder) in the datasource pointing out of it, a FIFO or a device is
    never opened: whoever can write the datasource (a worker) cannot make the server read
    ``/etc/passwd`` or hang on a pipe. Object stores have neither, so their paths pass.
    """
    import os

    protocol = getattr(fs, "protocol", "")
    if "file" not in (protocol if isinstance(protocol, tuple) else (protocol,)):
        return True
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    inside = real.startswith(real_root.rstrip(os.sep) + os.sep)
    return inside and (os.path.isfile(real) or not os.path.lexists(path))


def open_in_datasource(
    cfg: DatasourceConfig | None,
    local_root: Path | None,
    rel: str,
    what: str,
    code: str,
    mount_hint: str,
) -> tuple[int | None, Iterator[bytes]]:
    """Open ``rel`` under a datasource and stream it unchanged.

    Args:
        cfg: The datasource with its secrets (None: the dataset has none).
        local_root: Where the server sees the workers' mount (LOCAL datasources).
        rel: The file's path relative to the datasource (checked with :func:`safe_relative`).
        what: Words for the file in messages ("sample file", "embeddings file").
        code: The error code when it cannot be served.
        mount_hint: How to make a LOCAL datasource visible ("THRESHER_LOCAL_ROOT ...").

    Returns:
        The size if known, and an iterator over the bytes (1 MiB blocks).

    Raises:
        NotFound: no datasource, or the file is missing.
        Unprocessable: a LOCAL datasource the server cannot see.
        Invalid: ``rel`` is not a plain relative path.
    """
    safe_relative(rel, what)
    if cfg is None:
        raise NotFound(f"The dataset has no datasource to read the {what} {rel} from.", code)
    target = fsspec_target(cfg, local_root)
    if target is None:
        raise Unprocessable(
            f"The {what} {rel} lies in a LOCAL datasource the server cannot see. "
            f"Start the server with {mount_hint}.",
            code,
        )
    url, opts = target
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(url, **opts)
    path = root.rstrip("/") + "/" + rel
    if not is_served(fs, root, path):
        raise NotFound(
            f"The {what} {rel} is a link out of the datasource, or not a regular file; it is "
            "not served.",
            code,
        )
    try:
        size: int | None = int(fs.size(path))
        f = fs.open(path, "rb")
    except (FileNotFoundError, IsADirectoryError) as e:
        raise NotFound(f"The {what} {rel} is missing from the datasource.", code) from e

    def chunks() -> Iterator[bytes]:
        with f:
            while block := f.read(1 << 20):
                yield block

    return size, chunks()


def open_original(
    p: Platform, dataset_id: str, sample_id: str, token: str
) -> tuple[str, int | None, Iterator[bytes]]:
    """Check a sample read URL's token and open the original in the INPUT datasource.

    Returns:
        The sample's file name, its size if known, and an iterator over its bytes.

    Raises:
        Forbidden: a wrong, malformed or expired token.
        NotFound: no such sample in the dataset, or its file is missing.
        Unprocessable: the file lies in a LOCAL datasource the server cannot see.
    """
    check_public_token(p, SUBJECT_PREFIX + sample_id, token)
    with p.session() as s:
        sample = s.get(Sample, sample_id)
        if sample is None or sample.dataset_id != dataset_id:
            raise NotFound(
                f"The dataset {dataset_id} has no sample {sample_id!r}.", "SAMPLE_UNKNOWN"
            )
        cfg = datasources.resolve(p, s, dataset_id, datasources.INPUT_PURPOSES)
        d = s.get(Dataset, dataset_id)
        root = datasources.input_root(p, d.type if d is not None else "")
        name = sample.file_name
    size, chunks = open_in_datasource(
        cfg,
        root,
        name,
        "sample file",
        "SAMPLE_UNAVAILABLE",
        "THRESHER_LOCAL_ROOT set to the worker's --input-mount folder (a crops dataset: "
        "THRESHER_LIGHTLY_ROOT set to its --lightly-mount folder)",
    )
    return name, size, chunks
