"""A real HTTP server on 127.0.0.1 for destination fault tests.

The server runs in a background thread on an ephemeral port, records every request and
answers from a script: replies queued with `enqueue` are used first, in order, then the
default (a `Reply`, or a function of the request that returns one).

    with FakeServer() as server:
        server.enqueue(Reply.rate_limited(retry_after="1"), Reply.server_error(503))
        client = HttpClient(destination="test", base_url=server.url)
        client.request("POST", "/hook", json={"a": 1})   # 429, 503, then the default 200
        assert [r.path for r in server.requests] == ["/hook"] * 3

Faults it can play: a status with any headers (429 with Retry-After, 500, 503), a delay
before answering (longer than a client's timeout), a body that is not JSON although it
says so, a body cut short of its Content-Length, and per-row results computed from the
request (see `Reply.json`).
"""

from __future__ import annotations

import json
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[["RecordedRequest"], "Reply"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # with the query string, as sent
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    `delay` waits before answering; `truncate_to` sends only that many bytes of the body
    (the Content-Length still announces all of it) and then drops the connection.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_to: int | None = None

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Reply:
        return cls(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", **headers},
        )

    @classmethod
    def rate_limited(cls, retry_after: str = "1") -> Reply:
        return cls.json({"error": "slow down"}, 429, **{"Retry-After": retry_after})

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        return cls.json({"error": "server error"}, status)

    @classmethod
    def slow(cls, seconds: float, then: Reply | None = None) -> Reply:
        base = then or cls.json({"ok": True})
        return cls(base.status, base.body, base.headers, seconds, base.truncate_to)

    @classmethod
    def malformed(cls) -> Reply:
        """A 200 that claims JSON but is not."""
        return cls(200, b'{"results": [{"key": "1", "sta', {"Content-Type": "application/json"})

    @classmethod
    def truncated(cls) -> Reply:
        """A 200 whose body stops short of its Content-Length before the connection drops."""
        body = json.dumps({"results": [{"key": "1", "status": "accepted"}]}).encode()
        return cls(200, body, {"Content-Type": "application/json"}, truncate_to=10)


class FakeServer:
    """A scripted HTTP server; use it as a context manager (it starts and stops itself)."""

    def __init__(self, default: Reply | Responder | None = None) -> None:
        self._default: Reply | Responder = default or Reply.json({"ok": True})
        self._queue: deque[Reply | Responder] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.errors = []
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def enqueue(self, *replies: Reply | Responder) -> None:
        with self._lock:
            self._queue.extend(replies)

    def respond_with(self, default: Reply | Responder) -> None:
        with self._lock:
            self._default = default

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # wakes handlers that are still playing a delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._server.errors and exc[0] is None:
            raise AssertionError(f"the fake server failed: {self._server.errors[0]!r}")

    def _answer(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            script = self._queue.popleft() if self._queue else self._default
        return script(request) if callable(script) else script

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def serve(default: Reply | Responder | None = None) -> Iterator[FakeServer]:
    """For a pytest fixture: `yield from serve()`."""
    with FakeServer(default) as server:
        yield server


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    errors: list[BaseException]

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, ConnectionError):
            self.errors.append(error)  # a bug in a test's script; raised when the server stops


def _handler_for(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the vendors' servers

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = server._answer(RecordedRequest(self.command, self.path, headers, body))
            if reply.delay:
                server._wait(reply.delay)
            try:
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.truncate_to is not None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body[: reply.truncate_to])
            self.wfile.flush()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output clean

    return Handler
