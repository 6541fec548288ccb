"""What a dunning notice becomes on its channel: an e-mail sent over SMTP after the commit, a
letter PDF (fpdf2) stored as a document of the account, or a planned call for the account's
owner; fees and interest booked on an invoice of their own when the fee policy collects them.

Texts come from Jinja2 templates (``<template>.subject`` and ``<template>.txt``) rendered in a
sandbox: the built-in ones beside this module, or those of the ``templates_dir`` setting,
which replace them by name.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from crmcore import Actor
from crmcore.errors import ConflictError

from crm_billing.settings import BillingSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record

__all__ = ["SendReport", "book", "render", "send_in", "send_pending"]

_BUILTIN = Path(__file__).resolve().parent / "templates"


def _environment(settings: BillingSettings) -> Any:
    from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    loaders = [FileSystemLoader(settings.templates_dir)] if settings.templates_dir else []
    return SandboxedEnvironment(loader=ChoiceLoader([*loaders, FileSystemLoader(str(_BUILTIN))]),
                                undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def render(settings: BillingSettings, template: str, context: dict[str, Any]) -> tuple[str, str]:
    """The subject and body of *template* for *context*."""
    env = _environment(settings)
    subject = env.get_template(f"{template}.subject").render(context).strip()
    return subject, env.get_template(f"{template}.txt").render(context)


def _context(notice: Record, account: Record) -> dict[str, Any]:
    return {"account": {"id": account.id, "name": account.name, "email": account.values.get("email")},
            "level": notice.level, "on": notice.run_date.isoformat(), "items": notice.items or [],
            "amount_due": notice.amount_due, "fee": notice.fee, "interest": notice.interest,
            "fee_policy": notice.fee_policy, "channel": notice.channel}


def _template(settings: BillingSettings, notice: Record) -> str:
    procedure = notice.procedure if notice.procedure in settings.procedures else None
    return settings.levels_of(procedure)[notice.level - 1].template


def book(uow: UnitOfWork, notices: list[Record], settings: BillingSettings, on: dt.date) -> list[Record]:
    """Fees, calls and letters of freshly made *notices* (as the system, in *uow*)."""
    from crm_billing.invoices import new_invoice, post_invoices

    if not notices:
        return []
    accounts = {a.id: a for a in uow.find_many("account", "id", sorted({n.account_id for n in notices}))}
    changes: dict[int, dict[str, Any]] = {n.id: {} for n in notices}
    if settings.fee_policy == "collect":
        fee_invoices = []
        for notice in notices:
            lines = [{"description": f"Reminder fee, level {notice.level}", "unit_price": notice.fee}] if notice.fee.amount > 0 else []
            if notice.interest.amount > 0:
                lines.append({"description": f"Interest on overdue instalments to {on.isoformat()}", "unit_price": notice.interest})
            if lines:
                invoice = new_invoice(uow, account_id=notice.account_id, currency=notice.fee.currency, lines=lines,
                                      title=f"Dunning level {notice.level} of {on.isoformat()}", invoice_date=on)
                fee_invoices.append(invoice.id)
                changes[notice.id]["fee_invoice_id"] = invoice.id
        post_invoices(uow, fee_invoices, today=on)
    calls = [n for n in notices if n.channel == "phone"]
    if calls:
        rows = []
        for notice in calls:
            subject, body = render(settings, _template(settings, notice), _context(notice, accounts[notice.account_id]))
            owner = accounts[notice.account_id].values.get("owner_id")
            rows.append({"kind": "call", "subject": subject[:200], "description": body, "status": "planned",
                         "account_id": notice.account_id, "due_at": dt.datetime.combine(on, dt.time(9), uow.registry.timezone),
                         **({"owner_id": owner} if owner else {})})
        for notice, activity in zip(calls, uow.create_many("activity", rows), strict=True):
            changes[notice.id]["activity_id"] = activity.id
    letters = [n for n in notices if n.channel == "letter"]
    if letters:
        folder = Path(settings.letters_dir or "letters")
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for notice in letters:
            subject, body = render(settings, _template(settings, notice), _context(notice, accounts[notice.account_id]))
            path = folder / f"dunning-{notice.account_id}-{notice.level}-{on.isoformat()}.pdf"
            _write_letter(path, accounts[notice.account_id], subject, body)
            rows.append({"title": subject[:200], "filename": path.name, "content_type": "application/pdf",
                         "size": path.stat().st_size, "uri": str(path.resolve()), "account_id": notice.account_id})
        for notice, document in zip(letters, uow.create_many("document", rows), strict=True):
            changes[notice.id].update(document_id=document.id, status="printed")
    updates = [(n, c) for n in notices if (c := changes[n.id])]
    if updates:
        uow.update_many("dunning_notice", updates)
    return uow.get_many("dunning_notice", [n.id for n in notices])


def _write_letter(path: Path, account: Record, subject: str, body: str) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    address = [account.name, *(account.values.get(f) or "" for f in ("billing_street", "billing_postal_code", "billing_city"))]
    pdf.multi_cell(0, 6, "\n".join(line for line in address if line))
    pdf.ln(10)
    pdf.set_font("Helvetica", style="B", size=13)
    pdf.multi_cell(0, 8, subject.encode("latin-1", "replace").decode("latin-1"))
    pdf.set_font("Helvetica", size=11)
    pdf.ln(4)
    pdf.multi_cell(0, 6, body.encode("latin-1", "replace").decode("latin-1"))
    pdf.output(str(path))


@attrs.frozen
class SendReport:
    """E-mail notices sent, failed (kept for the next run) and taken by another worker."""

    sent: int
    failed: int
    skipped: int


#: A notice left ``sending`` this long (its sender stopped between the claim and the result)
#: is claimed again.
STALE_SENDING = dt.timedelta(minutes=15)


def send_pending(crm: Crm, *, progress: Callable[[int, int], Any] | None = None,
                 stale_after: dt.timedelta = STALE_SENDING) -> SendReport:
    """Send every pending or failed e-mail notice, one unit of work each: a notice is claimed
    (``sending``, a versioned write another worker loses) before its message leaves, then
    marked ``sent``, or ``failed`` with the error and retried by the next call. A notice
    still ``sending`` *stale_after* its claim (the sender stopped in between) is claimed
    again: a reminder may then leave twice, never not at all.

    :param progress: called as ``progress(done, total)``: once with ``done = 0``, then after
        each notice.
    """
    settings = crm.state(BillingSettings)
    stale = dt.datetime.now(dt.UTC) - stale_after
    with crm.unit_of_work(Actor.system()) as uow:
        wanted = uow.select("dunning_notice", fields=("id", "status", "version", "updated_at")).where(
            ("status", "in", ("pending", "failed", "sending")), channel="email").order_by("id").all()
        # a stale claim is taken over only as it was listed (its version): not if it moved since
        stuck = {r["id"]: r["version"] for r in wanted if r["status"] == "sending" and r["updated_at"] <= stale}
        ids = [r["id"] for r in wanted if r["status"] != "sending" or r["id"] in stuck]
    sent = failed = skipped = 0
    if progress is not None:
        progress(0, len(ids))
    for done, notice_id in enumerate(ids, start=1):
        if progress is not None and done > 1:
            progress(done - 1, len(ids))
        try:
            with crm.unit_of_work(Actor.system()) as uow:
                notice = uow.get("dunning_notice", notice_id)
                if notice.status not in ("pending", "failed") and not (
                        notice.status == "sending" and stuck.get(notice.id) == notice.version):
                    skipped += 1
                    continue
                notice = uow.update(notice, status="sending")
                uow.commit()
        except ConflictError:
            skipped += 1
            continue
        error = _deliver(crm, settings, notice_id)
        if error:
            failed += 1
        else:
            sent += 1
    if progress is not None and ids:
        progress(len(ids), len(ids))
    return SendReport(sent, failed, skipped)


def send_in(uow: UnitOfWork, *, stale_after: dt.timedelta = STALE_SENDING) -> SendReport:
    """Send every pending or failed e-mail notice (and those left ``sending`` *stale_after*
    their claim) for the worker's job, whose unit of work is *uow*.

    No message leaves inside *uow*'s transaction: the notices are claimed (``sending``) in
    *uow*, which is then committed (and so ended: the worker records the job's outcome on its
    own); only then is each message sent and its notice marked ``sent`` (or ``failed``) in a
    unit of work of its own. A commit that fails sends nothing, and the notices stay as they
    were for the next pass. A message leaves twice only when the process stops between
    sending it and committing its mark: the notice is left ``sending`` and claimed again
    *stale_after* later (at least once, never not at all).
    """
    crm = uow.crm
    settings = crm.state(BillingSettings)
    stale = dt.datetime.now(dt.UTC) - stale_after
    with uow.acting_as(Actor.system()):
        notices = [n for n in uow.query("dunning_notice").where(
            ("status", "in", ("pending", "failed", "sending")), channel="email").order_by("id").all()
            if n.status != "sending" or n.values["updated_at"] <= stale]
        if notices:
            uow.update_many("dunning_notice", [(n, {"status": "sending"}) for n in notices])
    uow.commit()
    sent = failed = 0
    for notice in notices:
        if _deliver(crm, settings, notice.id):
            failed += 1
        else:
            sent += 1
    return SendReport(sent, failed, 0)


def _deliver(crm: Crm, settings: BillingSettings, notice_id: int) -> str | None:
    """Send the claimed notice *notice_id*, then mark it ``sent`` or ``failed`` (one more
    attempt, the error) in a unit of work of its own; the error text, or ``None``."""
    with crm.unit_of_work(Actor.system()) as uow:
        notice = uow.get("dunning_notice", notice_id)
        account = uow.get("account", notice.account_id)
        error = _send(settings, notice, account)
        uow.update(notice, status="failed" if error else "sent", attempts=(notice.attempts or 0) + 1,
                   last_error=error[:500] if error else None)
        uow.commit()
    return error


def _send(settings: BillingSettings, notice: Record, account: Record) -> str | None:
    """Send one notice; the error text, or ``None`` when the server accepted it."""
    to = account.values.get("email")
    if not to:
        return f"account {account.id} has no e-mail address; add one and the next run sends it"
    subject, body = render(settings, _template(settings, notice), _context(notice, account))
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.sender, to, subject
    message.set_content(body)
    smtp = settings.smtp
    try:
        if smtp.tls == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=30, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=30)
        with client:
            if smtp.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, smtp.password)
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        return f"the server refused {to!r}: " + "; ".join(f"{code} {text.decode(errors='replace')}" for code, text in exc.recipients.values())
    except (smtplib.SMTPException, OSError) as exc:
        return f"sending to {smtp.host}:{smtp.port} failed: {exc}"
    return None
