"""A dropped connection: read-only requests are tried again, requests that change state are not.

A real TCP server on a real socket resets its first connections (an RST, as a restarting server
or a recycling proxy does) and then answers; a port that refuses connections comes up late.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from thresher.client.errors import ServerUnreachableError
from thresher.client.http import Http

_BODY = b'{"ok": true}'
_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(_BODY)}\r\nConnection: close\r\n\r\n".encode()
    + _BODY
)


class _FlakyServer:
    """Resets its first ``resets`` connections after reading the request, then answers 200."""

    def __init__(self, resets: int, port: int = 0, start_after_s: float = 0.0) -> None:
        self.resets = resets
        self.connections = 0
        self.requests: list[bytes] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._port = port
        self._start_after_s = start_after_s
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        self._ready.wait(5)
        return self._port

    def _serve(self) -> None:
        time.sleep(self._start_after_s)
        self._sock.bind(("127.0.0.1", self._port))
        self._port = self._sock.getsockname()[1]
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self._ready.set()
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                self.connections += 1
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data.split(b"\r\n", 1)[0])
                if self.connections <= self.resets:
                    # SO_LINGER 0: close() sends an RST, the peer sees "connection reset".
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    conn.sendall(_ANSWER)

    def start(self) -> None:
        if self._port == 0 and not self._start_after_s:
            self._thread.start()
            self._ready.wait(5)
        else:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@contextmanager
def _flaky(resets: int, port: int = 0, start_after_s: float = 0.0) -> Iterator[_FlakyServer]:
    server = _FlakyServer(resets, port, start_after_s)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_get_is_tried_again_after_a_reset_connection() -> None:
    with _flaky(resets=2) as server:
        http = Http(f"http://127.0.0.1:{server.port}", "secret-token", timeout_s=5)
        try:
            assert http.get_json("/v1/datasets") == {"ok": True}
        finally:
            http.close()
    assert server.connections == 3
    assert all(r.startswith(b"GET /v1/datasets?") for r in server.requests)


def test_a_get_waits_for_a_server_that_comes_up_late() -> None:
    port = _free_port()
    started = time.monotonic()
    with _flaky(resets=0, port=port, start_after_s=0.8) as server:
        http = Http(f"http://127.0.0.1:{port}", "secret-token", timeout_s=5)
        try:
            assert http.get_json("/v1/datasets") == {"ok": True}
        finally:
            http.close()
    assert server.connections == 1
    assert time.monotonic() - started < 6


def test_a_post_is_sent_once_and_the_error_names_no_token() -> None:
    with _flaky(resets=1) as server:
        http = Http(f"http://127.0.0.1:{server.port}", "secret-token", timeout_s=5)
        try:
            with pytest.raises(ServerUnreachableError) as info:
                http.send_json("POST", "/v1/datasets/abc/tags", {"name": "t"})
        finally:
            http.close()
        time.sleep(0.3)
    # A second POST could create a second tag or schedule a second run.
    assert server.connections == 1
    assert "secret-token" not in str(info.value)


def test_a_get_gives_up_after_its_retries_and_says_so() -> None:
    with _flaky(resets=100) as server:
        http = Http(f"http://127.0.0.1:{server.port}", "secret-token", timeout_s=5, retries=2)
        started = time.monotonic()
        try:
            with pytest.raises(ServerUnreachableError, match="after 3 tries") as info:
                http.get_json("/v1/datasets")
        finally:
            http.close()
    assert server.connections == 3
    assert 1.4 < time.monotonic() - started < 5  # 0.5 s + 1 s of backoff
    assert "secret-token" not in str(info.value)
