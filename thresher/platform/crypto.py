"""The server's secrets: a Fernet key for datasource credentials, and signed read URLs.

The key comes from ``THRESHER_SECRET_KEY`` or from ``$THRESHER_HOME/secret.key``, created on
first use with mode 0600. The read-URL signing key is derived from it, so one file holds all.
Nothing here logs or raises with a secret in its message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from thresher.errors import ConfigError


def load_or_create_key(home: Path, env_key: str | None = None) -> bytes:
    """The Fernet key: ``env_key`` if given, else ``home/secret.key`` (created 0600)."""
    if env_key:
        key = env_key.encode()
    else:
        path = home / "secret.key"
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            new = Fernet.generate_key()
            try:  # O_EXCL: two processes starting at once must not overwrite each other's key
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(new)
        key = path.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError as e:
        raise ConfigError(
            "The secret key (THRESHER_SECRET_KEY or $THRESHER_HOME/secret.key) is not a Fernet "
            "key: 32 url-safe base64-encoded bytes. Generate one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())'."
        ) from e
    return key


class Secrets:
    """Encrypts datasource secrets and signs read URLs.

    Args:
        key: A Fernet key (see :func:`load_or_create_key`).
    """

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._sign_key = hashlib.sha256(b"thresher read url\0" + key).digest()

    def encrypt(self, values: dict[str, Any]) -> str:
        """A Fernet token of ``values`` as JSON."""
        return self._fernet.encrypt(json.dumps(values).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        """The dict :meth:`encrypt` was given."""
        try:
            out: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as e:
            raise ConfigError(
                "Cannot decrypt a stored datasource secret: the server's secret key changed. "
                "Restore the old THRESHER_SECRET_KEY / secret.key, or set the datasource again."
            ) from e
        return out

    def sign(self, artifact_id: str, expires: int) -> str:
        """The signature of a read URL for ``artifact_id`` valid until ``expires`` (Unix s)."""
        msg = f"{artifact_id}:{expires}".encode()
        return hmac.new(self._sign_key, msg, hashlib.sha256).hexdigest()

    def check(self, artifact_id: str, expires: int, signature: str) -> bool:
        """Whether ``signature`` is :meth:`sign`'s for these values (expiry not checked)."""
        return hmac.compare_digest(self.sign(artifact_id, expires), signature)
