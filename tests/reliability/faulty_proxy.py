"""A small fault-injecting HTTP proxy to put in front of the S3 emulator (moto server).

Clients talk to the proxy as if it were S3 (``AWS_ENDPOINT_URL=proxy.url``); it forwards each
request to the emulator unchanged, except that, drawn from a seeded random generator, a fraction
of requests get one of the faults object stores really show, the kinds taking turns:

- ``slowdown``: ``503 SlowDown`` with S3's XML error body (throttling);
- ``reset``: the connection is closed with a TCP reset, no response;
- ``stall``: no answer for ``stall_s`` seconds (longer than the client's read timeout), then
  the connection is closed.

``always`` names objects that fail on every request (a permanent fault): a path fragment mapped
to an HTTP status (``{"input/a.png": 500}``). Every request and what was done to it is kept in
``proxy.log`` as ``(method, path, fault)``, so a test can assert the faults really happened.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("slowdown", "reset", "stall")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
_ERROR_CODES = {403: "AccessDenied", 500: "InternalError", 503: "SlowDown"}


@dataclass
class Faults:
    """What the proxy does to requests.

    Args:
        rate: The fraction of requests that get a fault (0 = a plain proxy).
        kinds: The faults to inject, in turn.
        seed: Seeds the draws, so a schedule can be replayed.
        stall_s: How long a stalled request waits before its connection is closed.
        always: Path fragment -> HTTP status for objects that always fail.
        max_in_a_row: At most this many faults in a row for one (method, path): a flaky store,
            not a dead one (the permanent faults are ``always``'s business).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULTS
    seed: int = 0
    stall_s: float = 4.0
    always: dict[str, int] = field(default_factory=dict)
    max_in_a_row: int = 2


class FaultyProxy:
    """A threaded HTTP proxy in front of ``upstream`` (``http://host:port``) that injects faults.

    Args:
        upstream: The emulator's URL.
        faults: What to inject.
    """

    def __init__(self, upstream: str, faults: Faults) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.faults = faults
        self.log: list[tuple[str, str, str]] = []
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()
        self._in_a_row: dict[tuple[str, str], int] = {}
        self._n_faults = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def counts(self) -> dict[str, int]:
        """How many requests got each fault (``"ok"`` for the forwarded ones)."""
        out: dict[str, int] = {}
        for _method, _path, fault in list(self.log):
            out[fault] = out.get(fault, 0) + 1
        return out

    def _decide(self, method: str, path: str) -> str:
        for fragment, status in self.faults.always.items():
            if fragment in urllib.parse.unquote(path):
                return f"always-{status}"
        with self._lock:
            key = (method, path.split("?", 1)[0])
            fault = "ok"
            if (
                self._rng.random() < self.faults.rate
                and self._in_a_row.get(key, 0) < self.faults.max_in_a_row
            ):
                # In turn, so that a few faults already include every kind.
                fault = self.faults.kinds[self._n_faults % len(self.faults.kinds)]
                self._n_faults += 1
            self._in_a_row[key] = self._in_a_row.get(key, 0) + 1 if fault != "ok" else 0
            self.log.append((method, path, fault))
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reset(self) -> None:
                # SO_LINGER 0: close() sends a TCP RST, what a dropped connection looks like.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()

            def _error(self, status: int) -> None:
                code = _ERROR_CODES.get(status, "InternalError")
                body = (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>injected {status}</Message><RequestId>proxy</RequestId></Error>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _forward(self, body: bytes) -> None:
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    if body or self.command in ("PUT", "POST"):
                        headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    length = resp.getheader("Content-Length")
                    if self.command == "HEAD" and length is not None:
                        self.send_header("Content-Length", length)
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._decide(self.command, self.path)
                if fault.startswith("always-"):
                    proxy.log.append((self.command, self.path, fault))
                    self._error(int(fault.split("-", 1)[1]))
                elif fault == "slowdown":
                    self._error(503)
                elif fault == "reset":
                    self._reset()
                elif fault == "stall":
                    time.sleep(proxy.faults.stall_s)
                    self._reset()
                else:
                    self._forward(body)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@contextmanager
def faulty_proxy(upstream: str, faults: Faults) -> Iterator[FaultyProxy]:
    """A started :class:`FaultyProxy`, stopped on exit."""
    proxy = FaultyProxy(upstream, faults)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
