"""The Dask cluster a run's embed shards may run on (``--cluster tcp://scheduler:8786``).

Only the address is checked here, with a plain socket: the ``thresher`` command and the flow
call :func:`check_scheduler` before anything is written, so a wrong address fails in seconds
with a message that names it, instead of after Dask's 30-s connect timeout. Submitting the
shards is the task layer's job (``thresher.tasks.shard_runner``); see docs/cluster.md.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from thresher.errors import ConfigError

#: Seconds to wait for the scheduler to accept a connection.
CONNECT_TIMEOUT_S = 5.0
_SCHEMES = ("tcp", "tls")
_DOC = "docs/cluster.md"


def parse_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a scheduler address such as ``tcp://scheduler:8786``.

    Raises:
        ConfigError: Not ``tcp://HOST:PORT`` or ``tls://HOST:PORT``.
    """
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in _SCHEMES or not parts.hostname or port is None:
        raise ConfigError(
            f"--cluster {address!r} is not a Dask scheduler address: write it as tcp://HOST:PORT, "
            f"e.g. tcp://scheduler:8786 (what `dask scheduler` prints); see {_DOC}."
        )
    return parts.hostname, port


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast unless a Dask scheduler accepts connections at ``address``.

    Args:
        address: The scheduler, ``tcp://HOST:PORT``.
        timeout: Seconds to wait for the connection.

    Raises:
        ConfigError: The address is malformed, or nothing answers there within ``timeout``.
    """
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise ConfigError(
            f"Cannot reach the Dask scheduler at {address} ({why} within {timeout:g} s). Start "
            f"one there (`dask scheduler`, then `dask worker {address}` on each machine; see "
            f"{_DOC}), fix the address, or leave out --cluster to embed in this process."
        ) from e
