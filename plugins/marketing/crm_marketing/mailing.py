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
import email.policy
import hashlib
import hmac
import smtplib
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from email.header import Header
from email.mime.text import MIMEText
from typing import Any

import attrs
import jinja2
from crmcore.errors import ValidationError
from jinja2.sandbox import SandboxedEnvironment

from crm_marketing.errors import CampaignError

#: Headers are not folded below the 998 characters a line may have (links stay on one line).
_UNFOLDED = email.policy.compat32.clone(max_line_length=998)

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

    def render(self, context: Mapping[str, Any]) -> tuple[str, str]:
        """The subject and body for one member.

        :raises CampaignError: naming the template's error (an unknown variable, say).
        """
        try:
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


def build(sender: str, to: str, subject: str, body: str, link: str) -> bytes:
    """One message as bytes (UTF-8 text), with a ``List-Unsubscribe`` header. The subject's line
    breaks become spaces, so a rendered subject cannot add headers."""
    message = MIMEText(body, "plain", "utf-8")
    message["From"] = sender
    message["To"] = to
    subject = " ".join(subject.split())
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")  # type: ignore[assignment]
    message["List-Unsubscribe"] = f"<{link}>"
    return message.as_bytes(policy=_UNFOLDED)


def _batches(items: Iterable[Outgoing], size: int) -> Iterator[list[Outgoing]]:
    batch: list[Outgoing] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def send_all(host: str, port: int, items: Iterable[Outgoing], *, batch_size: int) -> tuple[list[str], dict[str, str]]:
    """Send *items* over SMTP, one connection per batch.

    A server that cannot be reached (or drops the connection) stops the sending: the messages
    not sent are returned as refused with the reason, so the caller records what did go out.

    :returns: the keys sent, and ``{key: error}`` of the messages not sent.
    """
    sent: list[str] = []
    refused: dict[str, str] = {}
    batches = _batches(items, batch_size)
    for batch in batches:
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
            reason = f"cannot send through {host}:{port}: {exc}"
            for item in batch[done:]:
                refused[item.key] = reason
            for rest in batches:
                for item in rest:
                    refused[item.key] = reason
            break
    return sent, refused
