"""Real servers for tests, bound to 127.0.0.1 on a free port and stopped by themselves: an HTTP
receiver for webhooks and HTTP sinks (:class:`HttpSinkServer`, fixture ``http_sink``) and an
SMTP server (:class:`SmtpServer`, fixture ``smtp_server``). Both fixtures come with the pytest
plugin :mod:`crmcore.testing`.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

__all__ = ["HttpSinkServer", "SmtpServer", "http_sink", "smtp_server"]

@attrs.define(eq=False)
class HttpSinkServer:
    """A real HTTP server on 127.0.0.1 (a free port) for tests of webhooks: it records every
    request, answers ``status`` with the JSON ``answer`` (default ``{}``) and, like a careful
    receiver, acts once per ``Idempotency-Key`` (a repeated key is answered but not acted on).

    :ivar url: its address, ``http://127.0.0.1:PORT/``.
    :ivar calls: every request received, in order: ``{"method", "path", "headers", "body"}``
        (``body`` parsed as JSON when it is).
    :ivar accepted: the bodies it acted on, by idempotency key (requests without a key are
        acted on each time, under ``""``, as a list).
    :ivar duplicates: requests it did not act on because their key was seen before.
    :ivar fail_first: answer the next that many requests with ``fail_status`` (503) instead.
    :ivar delay: seconds to wait before answering each request (a slow receiver).
    """

    url: str = ""
    calls: list[dict[str, Any]] = attrs.field(factory=list)
    accepted: dict[str, Any] = attrs.field(factory=dict)
    duplicates: int = 0
    fail_first: int = 0
    fail_status: int = 503
    status: int = 200
    answer: Any = attrs.field(factory=dict)
    delay: float = 0.0
    _server: Any = None
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def start(self) -> HttpSinkServer:
        """Start serving in a daemon thread (it dies with the test process)."""
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = owner._receive(self.command, self.path, dict(self.headers), raw)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_PUT = do_POST  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, name="http_sink", daemon=True).start()
        return self

    def _receive(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        if self.delay:
            time.sleep(self.delay)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        with self._lock:
            self.calls.append({"method": method, "path": path, "headers": headers, "body": body})
            if self.fail_first > 0:
                self.fail_first -= 1
                return self.fail_status, b'{"error": "failing on purpose"}'
            key = headers.get("Idempotency-Key", "")
            if key and key in self.accepted:
                self.duplicates += 1
            elif key:
                self.accepted[key] = body
            else:
                self.accepted.setdefault("", []).append(body)
        return self.status, json.dumps(self.answer).encode()

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def http_sink() -> Iterator[HttpSinkServer]:
    """A started :class:`HttpSinkServer`, stopped after the test::

        def test_the_webhook_is_called_once(http_sink):
            http_sink.fail_first = 1                       # the first call gets a 503
            ... deliver to http_sink.url ...
            assert list(http_sink.accepted) == ["order:42"]
    """
    server = HttpSinkServer().start()
    try:
        yield server
    finally:
        server.stop()
# -- a real SMTP server ------------------------------------------------------------------------


@attrs.define(eq=False)
class SmtpServer:
    """A running SMTP server on ``host:port`` that keeps every message it receives.

    :ivar messages: the messages received, parsed (:class:`email.message.EmailMessage`).
    :ivar recipients: the envelope recipients of each message, in the same order.
    """

    host: str
    port: int
    messages: list[Any] = attrs.field(factory=list)
    recipients: list[list[str]] = attrs.field(factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        import email
        import email.policy

        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"

    def __repr__(self) -> str:
        return f"<SmtpServer {self.host}:{self.port} messages={len(self.messages)}>"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd, the ``test`` extra) on 127.0.0.1 and a free port, which
    records what it receives and stops after the test::

        def test_newsletter(smtp_server):
            send(host=smtp_server.host, port=smtp_server.port)
            assert smtp_server.messages[0]["Subject"] == "News"
    """
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = SmtpServer("127.0.0.1", port)
    controller = Controller(server, hostname=server.host, port=port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
