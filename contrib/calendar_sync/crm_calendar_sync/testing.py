"""A pytest plugin for calendar tests against a real CalDAV server (registered under ``pytest11``,
so it is there wherever this package is installed).

``radicale_server`` starts a Radicale server in a thread of the test process on 127.0.0.1 with a
free port, htpasswd users (``ann`` / ``ann-secret`` and ``bob`` / ``bob-secret``; plain
passwords, a test server), owner-only rights and a temporary storage folder, and stops it when
the test ends. ``start_radicale(users, folder)`` is the same as a context manager, for other
scopes and for benchmarks. ``radicale_mailing_server`` is one whose email hook mails the
attendees of every event written to it, through ``crmcore.testing``'s ``smtp_server``: a test
that nothing mails anybody asserts ``smtp_server.messages == []``. ``imap_server`` is a real
IMAP server (pymap, in-memory) with one user, ``ann`` / ``ann-secret``, for the message archive.
``graph_server`` is a local HTTP server answering the part of Microsoft Graph the Graph
adapter reads (delta queries of the calendar view and contacts, series masters).

Example::

    def test_my_sync(radicale_server):
        url = radicale_server.calendar("ann", "work")     # made empty, ready for PUTs
        client = caldav.DAVClient(url=url, username="ann", password="ann-secret")
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

__all__ = [
    "GraphServer", "ImapServer", "RadicaleServer", "email_hook", "graph_server", "imap_server", "radicale_mailing_server", "radicale_server", "start_imap",
    "start_radicale",
]

#: The users of the ``radicale_server`` fixture.
USERS = {"ann": "ann-secret", "bob": "bob-secret"}


@attrs.frozen
class RadicaleServer:
    """A running Radicale server: its base URL and users."""

    url: str
    users: Mapping[str, str]
    folder: Path

    def calendar(self, user: str, name: str) -> str:
        """Make the calendar collection *name* of *user* (``MKCALENDAR``) and return its URL."""
        import caldav

        client = caldav.DAVClient(url=f"{self.url}/{user}/", username=user, password=self.users[user])
        url = f"{self.url}/{user}/{name}/"
        response = client.request(url, "MKCALENDAR", "", {})
        if response.status not in (201, 405):
            raise RuntimeError(f"MKCALENDAR {url} answered {response.status}")
        return url

    def addressbook(self, user: str, name: str) -> str:
        """Make the address book collection *name* of *user* (extended ``MKCOL``, RFC 5689)
        and return its URL."""
        import caldav

        client = caldav.DAVClient(url=f"{self.url}/{user}/", username=user, password=self.users[user])
        url = f"{self.url}/{user}/{name}/"
        body = ('<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" '
                'xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/>'
                "<CR:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>")
        response = client.request(url, "MKCOL", body, {"Content-Type": "application/xml; charset=utf-8"})
        if response.status not in (201, 405):
            raise RuntimeError(f"MKCOL {url} answered {response.status}")
        return url


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(port: int, thread: threading.Thread, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("Radicale stopped while starting; see its log")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"Radicale did not listen on 127.0.0.1:{port} within {timeout} s")


@contextlib.contextmanager
def start_radicale(users: Mapping[str, str] | None = None, folder: Path | None = None, *,
                   settings: Mapping[str, Mapping[str, str]] | None = None) -> Iterator[RadicaleServer]:
    """Run a Radicale server on 127.0.0.1 (a free port) until the block ends.

    :param settings: more Radicale configuration, by section (``{"hook": {"type": "email", ...}}``).
    """
    import radicale.config
    import radicale.server

    users = dict(users or USERS)
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="radicale-")))
        htpasswd = folder / "htpasswd"
        htpasswd.write_text("".join(f"{user}:{password}\n" for user, password in users.items()), encoding="utf-8")
        port = _free_port()
        configuration = radicale.config.load("")
        configuration.update({
            "server": {"hosts": f"127.0.0.1:{port}"},
            "auth": {"type": "htpasswd", "htpasswd_filename": str(htpasswd), "htpasswd_encryption": "plain"},
            "rights": {"type": "owner_only"},
            "storage": {"filesystem_folder": str(folder / "collections")},
            "logging": {"level": "warning", "mask_passwords": "True"},
        }, "test", privileged=True)
        if settings:
            configuration.update({section: dict(values) for section, values in settings.items()}, "test", privileged=True)
        stop, stopped = socket.socketpair()
        thread = threading.Thread(target=radicale.server.serve, args=(configuration, stopped), daemon=True,
                                  name=f"radicale-{port}")
        thread.start()
        try:
            _wait(port, thread)
            yield RadicaleServer(f"http://127.0.0.1:{port}", users, folder)
        finally:
            stop.close()
            thread.join(timeout=10)
            stopped.close()


@pytest.fixture
def radicale_server() -> Iterator[RadicaleServer]:
    """A Radicale server for one test (see the module docs)."""
    with start_radicale() as server:
        yield server


@attrs.frozen
class ImapServer:
    """A running IMAP server (pymap, in-memory): where it listens and its one user."""

    host: str
    port: int
    user: str
    password: str

    def url(self, mailbox: str = "INBOX") -> str:
        """The ``imap://`` URL of *mailbox*, as an ``imap`` account's URL."""
        return f"imap://{self.host}:{self.port}/{mailbox}"

    def append(self, *messages: bytes, mailbox: str = "INBOX") -> None:
        """Deliver *messages* into *mailbox* (IMAP ``APPEND``, as a mail client would)."""
        import imaplib

        client = imaplib.IMAP4(self.host, self.port)
        try:
            client.login(self.user, self.password)
            for message in messages:
                status, answer = client.append(mailbox, None, None, message)
                if status != "OK":
                    raise RuntimeError(f"APPEND to {mailbox!r} answered {status} {answer!r}")
        finally:
            client.logout()


@contextlib.contextmanager
def start_imap(user: str = "ann", password: str = "ann-secret") -> Iterator[ImapServer]:
    """Run an IMAP server (pymap's in-memory backend, the ``test`` extra) on 127.0.0.1 and a
    free port, in a child process, until the block ends; it has one user and an empty INBOX."""
    import os
    import subprocess
    import sys

    port = _free_port()
    command = [os.path.join(os.path.dirname(sys.executable), "pymap"), "--host", "127.0.0.1", "--port", str(port),
               "--no-tls", "--no-service", "admin", "dict", "--demo-user", user, "--demo-password", password]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the IMAP server stopped while starting: {process.stderr.read()!r}"[:500])
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the IMAP server did not listen on 127.0.0.1:{port} within 30 s")
            time.sleep(0.05)
        yield ImapServer("127.0.0.1", port, user, password)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    """A real IMAP server for one test (:func:`start_imap`): user ``ann`` / ``ann-secret``::

        def test_fetch(imap_server):
            imap_server.append(b"From: a@example.com\r\nSubject: hi\r\n\r\nbody")
            url = imap_server.url()        # imap://127.0.0.1:PORT/INBOX
    """
    with start_imap() as server:
        yield server


@attrs.define(eq=False)
class GraphServer:
    """A local HTTP server on 127.0.0.1 (a free port) answering the part of Microsoft Graph the
    Graph adapter reads, with Graph's shapes: ``/me/calendarView/delta`` (the window of the
    first request, pages of ``page_size`` through ``@odata.nextLink``, an ``@odata.deltaLink``
    whose token names the change it is at; later changes, ``@removed`` for deletions; a token
    made invalid by :meth:`expire_tokens` answers 410), ``/me/events/{id}`` (series masters,
    which the calendar view does not list), ``/me/contacts/delta``; every request needs
    ``Authorization: Bearer <token>`` (401 otherwise). The test changes the mailbox with
    :meth:`put_event`, :meth:`remove_event`, :meth:`put_contact` and :meth:`remove_contact`;
    :attr:`calls` lists the paths asked for.
    """

    token: str = "graph-token"
    page_size: int = 2
    url: str = ""
    calls: list[str] = attrs.field(factory=list)
    _events: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    _masters: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    _contacts: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    _changes: list[tuple[int, str, str]] = attrs.field(factory=list)  # (version, collection, id)
    _version: int = 0
    _expired_below: int = 0
    _server: Any = None

    def _change(self, collection: str, item_id: str) -> None:
        self._version += 1
        self._changes.append((self._version, collection, item_id))

    def put_event(self, event: dict[str, Any]) -> None:
        """Add or change an event of the calendar view (a series master goes to ``/me/events``)."""
        if event.get("type") == "seriesMaster":
            self._masters[event["id"]] = dict(event)
            return
        self._events[event["id"]] = dict(event)
        self._change("events", event["id"])

    def remove_event(self, event_id: str) -> None:
        self._events.pop(event_id, None)
        self._change("events", event_id)

    def put_contact(self, contact: dict[str, Any]) -> None:
        self._contacts[contact["id"]] = dict(contact)
        self._change("contacts", contact["id"])

    def remove_contact(self, contact_id: str) -> None:
        self._contacts.pop(contact_id, None)
        self._change("contacts", contact_id)

    def expire_tokens(self) -> None:
        """Make every delta token given so far invalid (Graph answers 410 Gone)."""
        self._expired_below = self._version + 1

    def _page(self, collection: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        import urllib.parse

        store = self._events if collection == "events" else self._contacts
        path = "/me/calendarView/delta" if collection == "events" else "/me/contacts/delta"
        if "$deltatoken" in query:
            since = int(query["$deltatoken"])
            if since < self._expired_below:
                return 410, {"error": {"code": "SyncStateNotFound", "message": "The sync state is no longer valid."}}
            changed = sorted({i for v, c, i in self._changes if c == collection and v > since})
            items = [store[i] if i in store else {"id": i, "@removed": {"reason": "deleted"}} for i in changed]
        elif "$skiptoken" in query:
            items = [store[i] for i in query["$skiptoken"].split(",") if i in store]
        else:
            if collection == "events" and not ("startDateTime" in query and "endDateTime" in query):
                return 400, {"error": {"code": "ErrorInvalidParameter", "message": "startDateTime and endDateTime are required"}}
            items = [store[i] for i in sorted(store)]
        first, rest = items[:self.page_size], items[self.page_size:]
        answer: dict[str, Any] = {"@odata.context": f"{self.url}/$metadata", "value": first}
        if rest:
            skip = ",".join(item["id"] for item in rest)
            answer["@odata.nextLink"] = f"{self.url}{path}?" + urllib.parse.urlencode({"$skiptoken": skip})
        else:
            answer["@odata.deltaLink"] = f"{self.url}{path}?" + urllib.parse.urlencode({"$deltatoken": self._version})
        return 200, answer

    def _answer(self, path: str, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        import urllib.parse

        self.calls.append(path)
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token is empty or invalid."}}
        parts = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        route = parts.path.removeprefix("/v1.0")
        if route == "/me/calendarView/delta":
            return self._page("events", query)
        if route == "/me/contacts/delta":
            return self._page("contacts", query)
        if route.startswith("/me/events/") and route[len("/me/events/"):] in self._masters:
            return 200, self._masters[route[len("/me/events/"):]]
        return 404, {"error": {"code": "ErrorItemNotFound", "message": f"no item at {route}"}}

    def start(self) -> GraphServer:
        import http.server
        import json

        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                status, body = owner._answer(self.path, dict(self.headers))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1.0"
        threading.Thread(target=self._server.serve_forever, name="graph", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def graph_server() -> Iterator[GraphServer]:
    """A started :class:`GraphServer`, stopped after the test."""
    server = GraphServer().start()
    try:
        yield server
    finally:
        server.stop()


def email_hook(host: str, port: int) -> dict[str, dict[str, str]]:
    """The Radicale settings of its ``email`` hook sending through the SMTP server at
    *host*:*port*: on every event written or deleted it mails the attendees (added, updated,
    removed, deleted), whatever their ``SCHEDULE-AGENT``, like a scheduling server would."""
    return {"hook": {"type": "email", "smtp_server": host, "smtp_port": str(port), "smtp_security": "none",
                     "from_email": "calendar@radicale.test"}}


@pytest.fixture
def radicale_mailing_server(smtp_server: Any) -> Iterator[RadicaleServer]:
    """A Radicale server whose email hook mails attendees through ``crmcore.testing``'s
    ``smtp_server`` (its ``messages`` are what Radicale sent), for tests that no sync invites,
    updates or cancels anybody::

        def test_sync_mails_nobody(radicale_mailing_server, smtp_server):
            ...  # sync
            assert smtp_server.messages == []
    """
    with start_radicale(settings=email_hook(smtp_server.host, smtp_server.port)) as server:
        yield server
