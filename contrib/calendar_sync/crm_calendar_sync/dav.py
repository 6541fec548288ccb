"""The CalDAV and CardDAV requests of a sync, through the ``caldav`` client's HTTP layer.

One :class:`DavCollection` per calendar or address book collection: ``sync-collection``
reports with a sync token (RFC 6578), the collection's ``getctag`` and a ``PROPFIND`` listing
of ETags where the server has no sync tokens, ``calendar-multiget`` (``addressbook-multiget``
for an address book) for the items that changed (one request per 100), and conditional
writes: ``PUT`` with ``If-Match`` (an update of the version last seen) or ``If-None-Match: *``
(a creation that never overwrites), ``DELETE`` with ``If-Match``.
Every request is counted (:attr:`DavCollection.requests`). Nothing here schedules: no iTIP
methods, no outbox; a server's implicit scheduling is turned off attendee by attendee by the
writer (``SCHEDULE-AGENT=CLIENT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, unquote, urljoin, urlsplit
from xml.sax.saxutils import escape

import attrs
import caldav
from caldav.lib import error as dav_errors

__all__ = ["DavCollection", "DavError", "InvalidSyncToken", "RemoteItem", "SyncReport"]

_NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav", "CS": "http://calendarserver.org/ns/"}
_XML = '<?xml version="1.0" encoding="utf-8"?>\n'
_BATCH = 100
#: Per collection kind: the multiget report, its namespace, the data property, the file suffix
#: of new items and the content type of writes.
_KINDS = {
    "calendar": ("calendar-multiget", "urn:ietf:params:xml:ns:caldav", "calendar-data", ".ics",
                 "text/calendar; charset=utf-8"),
    "addressbook": ("addressbook-multiget", "urn:ietf:params:xml:ns:carddav", "address-data", ".vcf",
                    "text/vcard; charset=utf-8"),
}


class DavError(Exception):
    """A CalDAV request answered with an unexpected status."""

    def __init__(self, method: str, url: str, status: int) -> None:
        super().__init__(f"{method} {url} answered {status}")
        self.method, self.url, self.status = method, url, status


class InvalidSyncToken(DavError):
    """The server no longer knows the sync token (RFC 6578 ``valid-sync-token``)."""


@attrs.frozen
class RemoteItem:
    """One calendar object resource: its path, ETag and iCalendar text."""

    href: str
    etag: str | None
    data: str | None = None


@attrs.frozen
class SyncReport:
    """What changed in a collection: ``{href: etag}`` changed or new, hrefs deleted, the new
    token; ``complete`` when it lists every item (a first or full sync)."""

    changed: dict[str, str | None]
    deleted: tuple[str, ...]
    token: str | None
    complete: bool


class DavCollection:
    """A CalDAV calendar collection at *url*, reached with *username* and *password*."""

    def __init__(self, url: str, username: str | None, password: str | None, *, timeout: int = 30,
                 kind: str = "calendar") -> None:
        """:param kind: ``"calendar"`` (CalDAV, iCalendar items) or ``"addressbook"`` (CardDAV,
        vCard items): the multiget report and the content type of writes follow it."""
        if kind not in _KINDS:
            raise ValueError(f"collection kind {kind!r}: choose one of {', '.join(_KINDS)}")
        self.kind = kind
        self.url = url if url.endswith("/") else url + "/"
        self.path = urlsplit(self.url).path
        self.client = caldav.DAVClient(url=self.url, username=username, password=password, timeout=timeout)
        self.requests = 0

    def __repr__(self) -> str:
        return f"<DavCollection {self.url} requests={self.requests}>"

    def _request(self, method: str, url: str, body: str = "", headers: dict[str, str] | None = None) -> caldav.davclient.DAVResponse:
        self.requests += 1
        return self.client.request(url, method, body, headers or {})

    def href_url(self, href: str) -> str:
        return urljoin(self.url, href)

    def new_href(self, uid: str) -> str:
        """The path of a new item for *uid* in the collection (``/`` and ``:``, which some
        servers refuse in a name, as ``_``)."""
        return self.path + quote(uid.replace("/", "_").replace(":", "_"), safe="@.-_") + _KINDS[self.kind][3]

    def _responses(self, response: caldav.davclient.DAVResponse) -> list[tuple[str, int | None, dict[str, str | None]]]:
        found = []
        tree = response.tree
        if tree is None:
            return found
        for item in tree.findall("D:response", _NS):
            href = unquote(item.findtext("D:href", default="", namespaces=_NS).strip())
            href = urlsplit(href).path or href
            status = _status(item.findtext("D:status", default="", namespaces=_NS))
            props: dict[str, str | None] = {}
            for propstat in item.findall("D:propstat", _NS):
                if _status(propstat.findtext("D:status", default="", namespaces=_NS)) not in (200, None):
                    continue
                listed = propstat.find("D:prop", _NS)
                for prop in listed if listed is not None else ():
                    props[prop.tag] = prop.text
            found.append((href, status, props))
        return found

    def sync(self, token: str | None) -> SyncReport:
        """A ``sync-collection`` report from *token* (``None``: every item).

        :raises InvalidSyncToken: when the server refuses the token.
        :raises DavError: when the server has no sync-collection report.
        """
        body = (f'{_XML}<D:sync-collection xmlns:D="DAV:"><D:sync-token>{escape(token or "")}</D:sync-token>'
                "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>")
        try:
            response = self._request("REPORT", self.url, body, {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
        except dav_errors.AuthorizationError:  # the client raises on 403, the answer to a bad token
            if token:
                raise InvalidSyncToken("REPORT sync-collection", self.url, 403) from None
            raise
        if response.status != 207:
            error = InvalidSyncToken if token and response.status in (403, 409) else DavError
            raise error("REPORT sync-collection", self.url, response.status)
        changed: dict[str, str | None] = {}
        deleted = []
        for href, status, props in self._responses(response):
            if href.rstrip("/") == self.path.rstrip("/"):
                continue
            if status == 404:
                deleted.append(href)
            else:
                changed[href] = props.get("{DAV:}getetag")
        new_token = response.tree.findtext("D:sync-token", default=None, namespaces=_NS)
        return SyncReport(changed, tuple(deleted), new_token, complete=not token)

    def ctag(self) -> str | None:
        """The collection's ``getctag`` (changes whenever an item does), if the server has one."""
        body = (f'{_XML}<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:prop><CS:getctag/>'
                "</D:prop></D:propfind>")
        response = self._request("PROPFIND", self.url, body, {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"})
        if response.status != 207:
            return None
        for _, _, props in self._responses(response):
            return props.get("{http://calendarserver.org/ns/}getctag")
        return None

    def listing(self) -> dict[str, str | None]:
        """``{href: etag}`` of every item (``PROPFIND`` depth 1)."""
        body = f'{_XML}<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'
        response = self._request("PROPFIND", self.url, body, {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
        if response.status != 207:
            raise DavError("PROPFIND", self.url, response.status)
        return {href: props.get("{DAV:}getetag") for href, _, props in self._responses(response)
                if href.rstrip("/") != self.path.rstrip("/")}

    def fetch(self, hrefs: Sequence[str]) -> list[RemoteItem]:
        """The ETag and text of *hrefs* (``calendar-multiget`` or ``addressbook-multiget``, 100
        per request); items gone meanwhile are left out."""
        report, namespace, data_name, _, _ = _KINDS[self.kind]
        found: list[RemoteItem] = []
        for start in range(0, len(hrefs), _BATCH):
            chunk = hrefs[start:start + _BATCH]
            listed = "".join(f"<D:href>{escape(quote(href))}</D:href>" for href in chunk)
            body = (f'{_XML}<C:{report} xmlns:D="DAV:" xmlns:C="{namespace}">'
                    f"<D:prop><D:getetag/><C:{data_name}/></D:prop>{listed}</C:{report}>")
            response = self._request("REPORT", self.url, body, {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
            if response.status != 207:
                raise DavError(f"REPORT {report}", self.url, response.status)
            for href, status, props in self._responses(response):
                data = props.get(f"{{{namespace}}}{data_name}")
                if status in (None, 200) and data:
                    found.append(RemoteItem(href, props.get("{DAV:}getetag"), data))
        return found

    def put(self, href: str, body: str, *, etag: str | None) -> tuple[int, str | None]:
        """Write *href*: over the version *etag* (``If-Match``), or only if it does not exist
        (``If-None-Match: *``) when *etag* is ``None``.

        :returns: the status (412 when the condition failed) and the new ETag.
        """
        headers = {"Content-Type": _KINDS[self.kind][4]}
        headers.update({"If-Match": etag} if etag else {"If-None-Match": "*"})
        response = self._request("PUT", self.href_url(href), body, headers)
        if response.status not in (200, 201, 204, 412):
            raise DavError("PUT", self.href_url(href), response.status)
        return response.status, response.headers.get("ETag")

    def delete(self, href: str, *, etag: str | None) -> int:
        """Delete *href* if it is still at *etag*; the status (412 when it changed, 404 when gone)."""
        response = self._request("DELETE", self.href_url(href), "", {"If-Match": etag} if etag else {})
        if response.status not in (200, 204, 404, 412):
            raise DavError("DELETE", self.href_url(href), response.status)
        return response.status


def _status(line: str | None) -> int | None:
    parts = (line or "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
