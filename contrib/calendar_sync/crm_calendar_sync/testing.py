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
    "ImapServer", "RadicaleServer", "email_hook", "imap_server", "radicale_mailing_server", "radicale_server", "start_imap",
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
