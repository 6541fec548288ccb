"""Sinks: where requests go. A sink has a ``name`` and a ``deliver(requests)`` method that takes
a batch of :class:`OutgoingRequest` and returns one :class:`Outcome` per request.

Two types are built in, configured by name in ``[outbox.sinks.NAME]``:

- ``file``: a JSON file per request, ``<path>/<key>.json``, written to a temporary file and
  linked into place, which fails when the file exists: a request is written once, and a file
  that is there means the request was delivered already (by a worker that stopped before
  recording it). With ``answers = "DIR"``, JSON files dropped in that folder answer requests
  (see :mod:`crm_outbox.answers`).
- ``http``: a POST of the request as JSON to ``url`` per request, with an ``Idempotency-Key``
  header the receiver dedups on; a 2xx response is a delivery (and a JSON body
  ``{"state": "accepted"}`` answers it at once), 408, 429, 5xx and network errors are tried again
  later, any other status fails the request at once.

Plugins add types through the ``outbox_sinks`` hook (:class:`SinkType`).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import os
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs
from crmcore.errors import ConfigError

from crm_outbox.entities import SUPPLY_STATES

__all__ = [
    "FileSink",
    "HttpSink",
    "Outcome",
    "OutgoingRequest",
    "Sink",
    "SinkType",
    "builtin_types",
    "file_name",
    "sweep_temporary_files",
]

log = logging.getLogger(__name__)

#: HTTP statuses that are tried again later (besides 5xx).
_TRANSIENT = frozenset({408, 425, 429})


@attrs.frozen
class OutgoingRequest:
    """A request handed to a sink: its id, idempotency *key*, kind, payload, source and which
    attempt this is."""

    id: int
    key: str
    kind: str
    sink: str
    payload: Any
    source_entity: str
    source_id: int
    attempt: int

    def document(self) -> dict[str, Any]:
        """The JSON object the built-in sinks send."""
        return {
            "key": self.key,
            "kind": self.kind,
            "sink": self.sink,
            "source": {"entity": self.source_entity, "id": self.source_id},
            "payload": self.payload,
        }


@attrs.frozen
class Outcome:
    """What a sink says about one request.

    :ivar key: the request's idempotency key.
    :ivar ok: the sink took it (or had it already).
    :ivar state: a supply state the other system answered at once, or ``None``.
    :ivar error: why it failed.
    :ivar retry: a failure worth trying again later (the network, a busy receiver); ``False``
        fails the request at once.
    :ivar duplicate: the sink had it already (delivered before by a worker that stopped).
    """

    key: str
    ok: bool
    state: str | None = None
    error: str | None = None
    retry: bool = True
    duplicate: bool = False

    @classmethod
    def delivered(cls, key: str, state: str | None = None, *, duplicate: bool = False) -> Outcome:
        """The sink took the request (*state*: the supply state it answered, if any)."""
        return cls(key, True, state=state, duplicate=duplicate)

    @classmethod
    def failed(cls, key: str, error: str, *, retry: bool = True) -> Outcome:
        """The request did not get through: tried again later unless *retry* is false."""
        return cls(key, False, error=error, retry=retry)


class Sink(Protocol):
    """What the outbox needs of a sink."""

    name: str

    def deliver(self, requests: Sequence[OutgoingRequest]) -> Sequence[Outcome]: ...


@attrs.frozen
class SinkType:
    """A kind of sink ``[outbox.sinks.NAME] type = "..."`` may name: *build* gets the sink's
    name and its settings table (``type`` included) and returns the sink, or raises
    :class:`~crmcore.errors.ConfigError` naming the key at fault."""

    type: str
    build: Callable[[str, Mapping[str, Any]], Sink]


#: What a key holds as it is in a file name (a posted key holds these and ``:``).
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.@+:")


def file_name(key: str) -> str:
    """The file a request of *key* is written to by the file sink (``:`` and the like quoted,
    ``sales_order%3A42%3Aproduction.json``)."""
    if _PLAIN.issuperset(key):
        return key.replace(":", "%3A") + ".json"
    return urllib.parse.quote(key, safe="-_.@+") + ".json"


@attrs.define(eq=False)
class FileSink:
    """Writes each request to ``<path>/<key>.json``, once (see the module)."""

    name: str
    path: Path
    fsync: bool = False
    answers: Path | None = None
    _swept: bool = attrs.field(default=False, init=False)

    def __repr__(self) -> str:
        return f"<FileSink {self.name!r} path={str(self.path)!r}>"

    def deliver(self, requests: Sequence[OutgoingRequest]) -> list[Outcome]:
        self.path.mkdir(parents=True, exist_ok=True)
        folder = str(self.path)
        if not self._swept:
            self._swept = True
            sweep_temporary_files(folder)
        prefix = os.path.join(folder, f".{os.getpid()}-{secrets.token_hex(4)}-")
        written_at = dt.datetime.now(dt.UTC).isoformat()
        outcomes = [
            self._write(folder, f"{prefix}{n}.tmp", request, written_at)
            for n, request in enumerate(requests)
        ]
        if self.fsync:
            _fsync_dir(self.path)
        return outcomes

    def _write(
        self, folder: str, temporary: str, request: OutgoingRequest, written_at: str
    ) -> Outcome:
        target = os.path.join(folder, file_name(request.key))
        text = json.dumps(
            {**request.document(), "written_at": written_at}, ensure_ascii=False, sort_keys=True
        )
        try:
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(text)
                if self.fsync:
                    file.flush()
                    os.fsync(file.fileno())
            try:
                os.link(temporary, target)  # atomic, and never replaces a file already there
            except FileExistsError:
                return Outcome.delivered(request.key, duplicate=True)
            return Outcome.delivered(request.key)
        except OSError as exc:
            return Outcome.failed(request.key, f"cannot write {target!r}: {exc}")
        finally:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass


#: Age in seconds after which a temporary file of the file sink is a stopped worker's leftover.
STALE_SECONDS = 600


def sweep_temporary_files(folder: str, *, older_than: float = STALE_SECONDS) -> int:
    """Remove the temporary files (``.*.tmp``) a worker stopped mid-write left in *folder*:
    those older than *older_than* seconds (a write takes milliseconds). The file sink does it
    once per process, before its first delivery.

    :returns: how many were removed.
    """
    limit = time.time() - older_than
    removed = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                try:
                    if entry.stat().st_mtime < limit:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue
    if removed:
        log.warning("removed %d temporary file(s) left by stopped workers in %s", removed, folder)
    return removed


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@attrs.define(eq=False)
class HttpSink:
    """POSTs each request as JSON to *url* with an ``Idempotency-Key`` header (see the module).
    The requests of a batch go over one connection; once a batch has taken *batch_seconds*, its
    remaining requests are left for a later attempt (so a slow receiver never outlasts the
    worker's lease)."""

    name: str
    url: str
    timeout: float = 10.0
    headers: Mapping[str, str] = attrs.field(factory=dict)
    batch_seconds: float = 60.0

    def __repr__(self) -> str:
        return f"<HttpSink {self.name!r} url={self.url!r}>"

    def deliver(self, requests: Sequence[OutgoingRequest]) -> list[Outcome]:
        parts = urllib.parse.urlsplit(self.url)
        connection_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        connection = connection_type(parts.netloc, timeout=self.timeout)
        outcomes = []
        deadline = time.monotonic() + self.batch_seconds
        try:
            for request in requests:
                if time.monotonic() > deadline:
                    outcomes.append(
                        Outcome.failed(
                            request.key,
                            f"not sent: the batch to {self.url} took over "
                            f"{self.batch_seconds:g} s (batch_seconds)",
                        )
                    )
                    continue
                outcome = self._post(connection, target, request)
                if not outcome.ok and outcome.retry:
                    connection.close()  # a fresh connection for the next request
                outcomes.append(outcome)
        finally:
            connection.close()
        return outcomes

    def _post(
        self, connection: http.client.HTTPConnection, target: str, request: OutgoingRequest
    ) -> Outcome:
        body = json.dumps(request.document(), ensure_ascii=False).encode()
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": request.key,
        }
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return Outcome.failed(request.key, f"POST {self.url}: {type(exc).__name__}: {exc}")
        status = response.status
        if 200 <= status < 300:
            return Outcome.delivered(request.key, _answered_state(self.url, request.key, answer))
        text = answer[:200].decode("utf-8", "replace").strip()
        error = f"POST {self.url} answered {status} {response.reason}" + (
            f": {text}" if text else ""
        )
        return Outcome.failed(request.key, error, retry=status >= 500 or status in _TRANSIENT)


def _answered_state(url: str, key: str, body: bytes) -> str | None:
    """The supply state of a JSON answer ``{"state": ...}``, or ``None``."""
    if not body.strip():
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    state = document.get("state") if isinstance(document, dict) else None
    if state is None:
        return None
    if state not in SUPPLY_STATES:
        log.warning("%s answered request %s with the unknown state %r; ignored", url, key, state)
        return None
    return str(state)


# -- building sinks from the settings -------------------------------------------------------


def _options(name: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"outbox.sinks.{name}.{key}: unknown key {key!r}; a {table['type']} sink takes "
                f"{', '.join(allowed)}",
                key=f"outbox.sinks.{name}.{key}",
            )


def _text(name: str, table: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = table.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"outbox.sinks.{name}.{key} must be a non-empty text, got {value!r}",
            key=f"outbox.sinks.{name}.{key}",
        )
    return value


def _bool(name: str, table: Mapping[str, Any], key: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(
            f"outbox.sinks.{name}.{key} must be true or false, got {value!r}",
            key=f"outbox.sinks.{name}.{key}",
        )
    return value


def build_file_sink(name: str, table: Mapping[str, Any]) -> FileSink:
    """A :class:`FileSink` from ``[outbox.sinks.NAME]`` (``path``, ``fsync``, ``answers``)."""
    _options(name, table, ("type", "path", "fsync", "answers"))
    path = _text(name, table, "path", required=True)
    answers = _text(name, table, "answers")
    return FileSink(
        name, Path(str(path)), _bool(name, table, "fsync"), Path(answers) if answers else None
    )


def build_http_sink(name: str, table: Mapping[str, Any]) -> HttpSink:
    """An :class:`HttpSink` from ``[outbox.sinks.NAME]`` (``url``, ``timeout``, ``headers``,
    ``batch_seconds``)."""
    _options(name, table, ("type", "url", "timeout", "headers", "batch_seconds"))
    url = str(_text(name, table, "url", required=True))
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"outbox.sinks.{name}.url must be an http:// or https:// address, got {url!r}",
            key=f"outbox.sinks.{name}.url",
        )
    timeout = table.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise ConfigError(
            f"outbox.sinks.{name}.timeout must be a number of seconds above 0 and at most 600, "
            f"got {timeout!r}",
            key=f"outbox.sinks.{name}.timeout",
        )
    headers = table.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError(
            f"outbox.sinks.{name}.headers must be a table of texts, got {headers!r}",
            key=f"outbox.sinks.{name}.headers",
        )
    budget = table.get("batch_seconds", 60)
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 < budget <= 3600:
        raise ConfigError(
            f"outbox.sinks.{name}.batch_seconds must be a number of seconds above 0 and at most "
            f"3600, got {budget!r}",
            key=f"outbox.sinks.{name}.batch_seconds",
        )
    return HttpSink(name, url, float(timeout), dict(headers), float(budget))


def builtin_types() -> list[SinkType]:
    """The sink types every deployment has: ``file`` and ``http``."""
    return [SinkType("file", build_file_sink), SinkType("http", build_http_sink)]
