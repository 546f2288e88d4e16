"""The HTTP plumbing of the fake LLM server: a threaded loopback server that closes cleanly.

:class:`LoopbackHttpServer` binds 127.0.0.1 on a free port, serves each connection in its own
daemon thread (HTTP/1.1 keep-alive, as the SDKs' connection pools expect), gives every socket
a timeout, and on :meth:`LoopbackHttpServer.stop` shuts every open connection down and joins
its thread, so that no test leaks a thread or a socket. What to answer is the business of
the ``handle`` function it is given.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Outcome:
    """One HTTP answer: status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_outcome(status: int, payload: Any, headers: dict[str, str] | None = None) -> Outcome:
    """An answer whose body is ``payload`` as JSON (non-finite floats as ``NaN`` tokens)."""
    return Outcome(status, json.dumps(payload).encode(), headers=dict(headers or {}))


# method, path, query, headers (lower-case names), body -> an answer, or None: drop it
Handle = Callable[[str, str, str, dict[str, str], bytes], Outcome | None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackHttpServer

    def setup(self) -> None:
        self.request.settimeout(self.server.socket_timeout_s)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the test output stays clean."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.server.handle(self.command, path, query, headers, body)
        if outcome is None:
            self.close_connection = True
            return
        try:
            self.send_response(outcome.status)
            self.send_header("content-type", outcome.content_type)
            self.send_header("content-length", str(len(outcome.body)))
            for name, value in outcome.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(outcome.body)
            self.wfile.flush()
        except OSError:  # the client gave up (its timeout): nothing to answer
            self.close_connection = True


class LoopbackHttpServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 (port 0) that tracks and closes its connections."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, handle: Handle, *, socket_timeout_s: float) -> None:
        self.handle = handle
        self.socket_timeout_s = socket_timeout_s
        self._connections: dict[Any, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-llm-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Stop serving, shut every open connection down, join the threads, close."""
        self.shutdown()
        with self._connections_lock:
            open_now = list(self._connections.items())
        for sock, _ in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in open_now:
            thread.join(timeout_s)
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One daemon thread per connection, tracked until it ends."""
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="fake-llm-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # a broken connection ends only that connection
            pass
        finally:
            self.shutdown_request(request)
            with self._connections_lock:
                self._connections.pop(request, None)
