"""One key host on 127.0.0.1: public keys and key sets over real loopback HTTP.

`routes` maps a path to a body (200) or to `(status, body)`; tests may change it while the host
runs. Every request's path is recorded in `hits`, and again in `done` once its handler returns.
Besides the routes it serves what a hostile or broken key host does: `/redirect.pem` (302 to
/key.pem), `/huge.pem` (10 MiB), `/drip.pem` (50 bytes, one every 0.1 s) and `/silent.pem` (no
answer until the host closes, 30 s at most); anything else is 404.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = bytes | tuple[int, bytes]


class KeyHost(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = dict(routes or {})
        self.hits: list[str] = []
        self.done: list[str] = []
        self.stop = threading.Event()
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/key.pem") -> str:
        return self.base + path

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up on a huge or dripping body are expected here."""

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


@contextmanager
def key_host(routes: Mapping[str, Route] | None = None) -> Iterator[KeyHost]:
    host = KeyHost(routes)
    try:
        yield host
    finally:
        host.close()


class _Handler(BaseHTTPRequestHandler):
    server: KeyHost

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        try:
            self._answer()
        finally:
            self.server.done.append(self.path)

    def _answer(self) -> None:
        route = self.server.routes.get(self.path)
        if route is not None:
            status, body = route if isinstance(route, tuple) else (200, route)
            self._send(status, body)
        elif self.path == "/redirect.pem":
            self.send_response(302)
            self.send_header("Location", self.server.url("/key.pem"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/huge.pem":
            self._stream(10 * 1024 * 1024, b"A" * 1024, 0)
        elif self.path == "/drip.pem":
            self._stream(50, b"-", 0.1)
        elif self.path == "/silent.pem":
            self.server.stop.wait(30)
        else:
            self._send(404, b"no such key")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, length: int, chunk: bytes, pause: float) -> None:
        """Promise `length` bytes, then send `chunk` every `pause` seconds until stopped."""
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        for _ in range(length // len(chunk)):
            if self.server.stop.wait(pause):
                return
            self.wfile.write(chunk)
            self.wfile.flush()
