"""Campaign e-mail: Jinja2 templates, signed unsubscribe links, and sending over SMTP.

Templates are the campaign's ``subject`` and ``message``, rendered in Jinja2's sandbox (a
template is data a marketer writes; it cannot reach Python) with the member (``first_name``,
``name``, ``company``, ``email``), the ``campaign`` (``name``, ``product_group``) and the
member's ``unsubscribe_url``. The link carries a token signed with ``[plugins.marketing]
secret`` (HMAC-SHA256): :func:`read_token` refuses a token whose signature does not match, so
nobody can unsubscribe someone else by editing a link.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import hashlib
import hmac
import smtplib
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from email.header import Header
from typing import Any

import attrs
import jinja2
from crmcore.errors import ValidationError
from jinja2.sandbox import SandboxedEnvironment

from crm_marketing.errors import CampaignError

__all__ = ["Outgoing", "Templates", "make_token", "read_token", "send_all"]


@attrs.frozen
class Outgoing:
    """One message to send: the member's key, the envelope and the message as bytes."""

    key: str
    sender: str
    to: str
    data: bytes


class Templates:
    """A campaign's subject and body, compiled once for every member."""

    def __init__(self, subject: str, body: str) -> None:
        env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
        try:
            self.subject = env.from_string(subject)
            self.body = env.from_string(body)
        except jinja2.TemplateSyntaxError as exc:
            raise CampaignError({"message": [f"template error on line {exc.lineno}: {exc.message}"]},
                                entity="campaign") from exc
        self._globals = dict(env.globals)
        self._shared = not self.subject.blocks and not self.body.blocks

    def render(self, context: Mapping[str, Any]) -> tuple[str, str]:
        """The subject and body for one member.

        :raises CampaignError: naming the template's error (an unknown variable, say).
        """
        try:
            if self._shared:  # one context for both templates (neither has blocks)
                shared = self.body.new_context({**self._globals, **context}, shared=True)
                concat = self.body.environment.concat  # type: ignore[attr-defined]
                return (concat(self.subject.root_render_func(shared)).strip(),  # type: ignore[attr-defined]
                        concat(self.body.root_render_func(shared)))  # type: ignore[attr-defined]
            return self.subject.render(context).strip(), self.body.render(context)
        except jinja2.TemplateError as exc:
            raise CampaignError({"message": [f"cannot render the campaign's template: {exc}"]},
                                entity="campaign") from exc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(secret: str, campaign_id: int, entity: str, record_id: int) -> str:
    """A token naming the member (*entity*, *record_id*) of a campaign, signed with *secret*."""
    payload = f"{campaign_id}.{entity}.{record_id}".encode()
    signature = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:18]
    return f"{_b64(payload)}.{_b64(signature)}"


def read_token(secret: str, token: str) -> tuple[int, str, int]:
    """``(campaign id, entity, record id)`` of a token :func:`make_token` signed.

    :raises ValidationError: for a token that is malformed or whose signature does not match.
    """
    bad = ValidationError({"token": [f"unsubscribe token {token!r} is not valid; use the link of the e-mail as sent"]})
    try:
        encoded, signature = token.split(".")
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except ValueError:
        raise bad from None
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:18]
    if not hmac.compare_digest(expected, given):
        raise bad
    try:
        campaign, entity, record = payload.decode().split(".")
        return int(campaign), entity, int(record)
    except ValueError:
        raise bad from None


def unsubscribe_link(base: str, token: str) -> str:
    """*base* with ``token`` added to its query."""
    joiner = "&" if urllib.parse.urlsplit(base).query else "?"
    return f"{base}{joiner}token={token}"


def _header_value(value: str) -> str:
    """A header value on one line: line breaks (and runs of blanks) become one space, so a
    value cannot add headers."""
    return " ".join(value.split())


def build(sender: str, to: str, subject: str, body: str, link: str) -> bytes:
    """One message as bytes (UTF-8 text, base64 encoded), with a ``List-Unsubscribe`` header.
    The subject's line breaks become spaces, so a rendered subject cannot add headers; a
    subject that is not ASCII is encoded (RFC 2047).

    Written straight as bytes, the same message :class:`email.mime.text.MIMEText` makes, at a
    fraction of its cost (it is built once per recipient).
    """
    subject = _header_value(subject)
    if not subject.isascii():
        subject = Header(subject, "utf-8").encode()
    head = (f'Content-Type: text/plain; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n'
            f"From: {_header_value(sender)}\nTo: {_header_value(to)}\nSubject: {subject}\n"
            f"List-Unsubscribe: <{_header_value(link)}>\n\n")
    return head.encode() + base64.encodebytes(body.encode())


def _batches(items: Iterable[Outgoing], size: int) -> Iterator[list[Outgoing]]:
    batch: list[Outgoing] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def send_all(host: str, port: int, items: Iterable[Outgoing], *, batch_size: int,
             connections: int = 1) -> tuple[list[str], dict[str, str]]:
    """Send *items* over SMTP, one connection per batch, *connections* batches at a time (each
    on its own connection, in a thread, while the next messages are built): a server takes
    messages from several connections at once, so the round trips of one overlap the others'.
    At most twice *connections* batches are held at any time: memory stays flat.

    A server that cannot be reached (or drops the connection) stops the sending: the messages
    not sent are returned as refused with the reason, so the caller records what did go out.

    :returns: the keys sent, and ``{key: error}`` of the messages not sent.
    """
    sent: list[str] = []
    refused: dict[str, str] = {}
    batches = _batches(items, batch_size)
    if connections <= 1:
        for batch in batches:
            done, failure = _send_batch(host, port, batch, sent, refused)
            if failure is not None:
                _refuse_rest(batch[done:], batches, failure, refused)
                break
        return sent, refused
    with concurrent.futures.ThreadPoolExecutor(max_workers=connections, thread_name_prefix="smtp") as pool:
        pending: collections.deque[tuple[list[Outgoing], concurrent.futures.Future[Any]]] = collections.deque()
        failure = None
        for batch in batches:
            pending.append((batch, pool.submit(_send_batch, host, port, batch, sent, refused)))
            while len(pending) >= 2 * connections or (pending and pending[0][1].done()):
                failure = _settle(pending.popleft(), refused) or failure
            if failure is not None:
                break
        while pending:
            failure = _settle(pending.popleft(), refused) or failure
        if failure is not None:
            _refuse_rest([], batches, failure, refused)
    return sent, refused


def _settle(entry: tuple[list[Outgoing], concurrent.futures.Future[Any]], refused: dict[str, str]) -> str | None:
    """Wait for one batch; the reason the sending must stop, if its connection failed."""
    batch, future = entry
    done, failure = future.result()
    if failure is not None:
        for item in batch[done:]:
            refused[item.key] = failure
    return failure


def _refuse_rest(batch: list[Outgoing], batches: Iterator[list[Outgoing]], reason: str,
                 refused: dict[str, str]) -> None:
    for item in batch:
        refused[item.key] = reason
    for rest in batches:
        for item in rest:
            refused[item.key] = reason


def _send_batch(host: str, port: int, batch: list[Outgoing], sent: list[str],
                refused: dict[str, str]) -> tuple[int, str | None]:
    """Send one batch over one connection: how many were handled, and the reason the
    connection failed (``None`` when it did not)."""
    done = 0
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            for item in batch:
                try:
                    smtp.sendmail(item.sender, [item.to], item.data)
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
                    refused[item.key] = str(exc)
                else:
                    sent.append(item.key)
                done += 1
    except (OSError, smtplib.SMTPException) as exc:
        return done, f"cannot send through {host}:{port}: {exc}"
    return done, None
