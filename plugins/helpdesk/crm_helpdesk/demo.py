"""The service chapter of ``crm demo`` (``crm_demo``): a support team at work.

On the company the core's chapters built: support tiers for the accounts, a second queue
(``Billing``, least open tickets first) beside the default one, agents and a manager, a small
knowledge base, then two weeks of tickets from every channel: answered, waiting on the
customer, resolved with the article that helped, surveys answered, and a few left too long, so
that the SLA sweep finds breaches and warnings to escalate.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from crm_helpdesk import kb, reports, sla, tickets
from crm_helpdesk.entities import CHANNELS
from crm_helpdesk.settings import helpdesk_settings
from crm_helpdesk.surveys import answer_survey

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["tell"]

ARTICLES = (
    (
        "Resetting your password",
        "Getting started",
        "Open the sign-in page, choose 'Forgot password' and follow the link we e-mail you. "
        "The link expires after one hour. If no e-mail arrives, check the spam folder or ask "
        "us to resend it.",
    ),
    (
        "Adding users to your account",
        "Getting started",
        "Administrators add users under Settings, Users. Each user receives an invitation e-mail; "
        "licences are billed from the day the invitation is accepted.",
    ),
    (
        "Understanding your invoice",
        "Billing",
        "Invoices list licences, usage and taxes per month. Credit notes appear as negative lines. "
        "Payment is due thirty days after the invoice date.",
    ),
    (
        "Changing the payment method",
        "Billing",
        "Update the credit card or switch to bank transfer under Settings, Billing. Changes apply "
        "from the next invoice.",
    ),
    (
        "Printer does not print labels",
        "Troubleshooting",
        "Check that the label printer is the default printer, that the label size matches the "
        "roll, "
        "and update the printer driver. Restart the print spooler if jobs stay queued.",
    ),
    (
        "Sync stops with error 504",
        "Troubleshooting",
        "A gateway timeout during synchronisation means the export is too large for one request. "
        "Lower the batch size in the sync settings and run the sync again.",
    ),
    (
        "Exporting your data",
        "Getting started",
        "Every list can be exported as CSV or JSON from its menu. Exports respect your "
        "permissions: "
        "you only export the records you may read.",
    ),
    (
        "Two-factor authentication",
        "Getting started",
        "Turn on two-factor authentication under Profile, Security, scan the code with an "
        "authenticator app and keep the recovery codes in a safe place.",
    ),
)
DRAFT = (
    "Migrating from the old portal",
    "Getting started",
    "Draft: steps to move saved reports from the old portal.",
)

REQUESTS = (
    ("Cannot reset my password", "The reset e-mail never arrives.", 0),
    ("Invoice shows the wrong number of licences", "We were billed for 25 users, we have 20.", 2),
    ("Label printer prints blank labels", "Since this morning every label comes out blank.", 4),
    ("Sync fails with error 504", "The nightly sync stopped with a gateway timeout.", 5),
    ("How do I add a colleague?", "A new colleague starts on Monday.", 1),
    ("Please change our credit card", "Our card expires next month.", 3),
    ("Need our data as CSV", "Our auditors ask for an export of all contacts.", 6),
    ("Turn on two-factor authentication", "Security asks us to enable it for all users.", 7),
)


def _users(crm: Crm) -> list[tuple[int, str]]:
    with crm.unit_of_work() as uow:
        return [(r.id, r.values["username"]) for r in uow.query("user").order_by("id").limit(6)]


def tell(crm: Crm, echo: Callable[[str], None], *, today: dt.date | None = None) -> None:
    """Tell the service chapter on *crm* (after the core's chapters)."""
    rng = random.Random(20250601)
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    if today is not None:
        now = dt.datetime.combine(today, dt.time(15, 0), tzinfo=dt.UTC)
    users = _users(crm)
    if len(users) < 2:
        echo("Service: skipped (the demo company has fewer than two users)")
        return
    manager, agents = users[0], users[1:5]
    resolved: list[tuple[int, int]] = []
    with crm.unit_of_work() as uow:
        accounts = uow.query("account").order_by("id").limit(24).all()
        for index, account in enumerate(accounts):
            tier = "premium" if index % 4 == 0 else "standard" if index % 4 == 1 else "basic"
            uow.update(account, support_tier=tier)
        general = tickets.find_queue(uow, helpdesk_settings(crm).default_queue)
        billing = uow.create(
            "queue",
            name="Billing",
            assignment="least_open",
            manager_id=manager[0],
            description="Invoices, payments and licences",
        ).id
        uow.update("queue", general, manager_id=manager[0], escalation_queue_id=None)
        for user_id, _ in agents:
            uow.create("queue_agent", queue_id=general, user_id=user_id)
        for user_id, _ in agents[:2]:
            uow.create("queue_agent", queue_id=billing, user_id=user_id)
        shelves = {
            name: uow.create("kb_category", name=name).id
            for name in ("Getting started", "Billing", "Troubleshooting")
        }
        articles = []
        for title, shelf, body in ARTICLES:
            article = uow.create(
                "kb_article",
                title=title,
                body=body,
                category_id=shelves[shelf],
                owner_id=manager[0],
            )
            articles.append(uow.move(article, "published").id)
        uow.create(
            "kb_article",
            title=DRAFT[0],
            body=DRAFT[2],
            category_id=shelves[DRAFT[1]],
            owner_id=manager[0],
        )

        for number in range(28):
            subject, description, article_index = REQUESTS[number % len(REQUESTS)]
            opened = now - dt.timedelta(hours=rng.randint(1, 14 * 24))
            account = accounts[rng.randrange(len(accounts))] if accounts else None
            queue = billing if article_index in (1, 2, 3) else general
            ticket = tickets.open_ticket(
                uow,
                subject,
                description=description,
                account_id=account.id if account else None,
                channel=CHANNELS[number % len(CHANNELS)],
                queue_id=queue,
                opened_at=opened,
                priority=rng.choice(("low", "normal", "normal", "high", "urgent")),
            )
            fate = rng.random()
            if fate < 0.15:
                continue  # nobody answered yet: the sweep will find it
            answered = opened + dt.timedelta(minutes=rng.randint(10, 600))
            if answered > now:
                continue
            tickets.reply(
                uow,
                ticket,
                "Thank you, we are looking into it.",
                kind="call" if ticket.channel == "phone" else "email",
                starts_at=answered,
            )
            if fate < 0.3:
                uow.move("ticket", ticket.id, "pending_customer")
                continue
            if fate < 0.4:
                continue
            done_at = answered + dt.timedelta(hours=rng.randint(1, 72))
            if done_at > now:
                continue
            uow.create("ticket_article", ticket_id=ticket.id, article_id=articles[article_index])
            uow.move("ticket", ticket.id, "resolved", resolved_at=done_at)
            resolved.append((ticket.id, number))
        sweep = sla.sla_sweep(uow, now)
        uow.commit()

    with crm.unit_of_work() as uow:
        tokens = [s.values["token"] for s in uow.query("csat_survey").order_by("id")]
    scores = (5, 4, 5, 3, 5, 4, 2, 5, 4, 5)
    for index, token in enumerate(tokens[: max(1, len(tokens) * 2 // 3)]):
        answer_survey(
            crm,
            token,
            scores[index % len(scores)],
            "Quick and friendly" if index % 3 == 0 else None,
        )

    with crm.unit_of_work() as uow:
        month = now.astimezone(crm.registry.timezone or dt.UTC).strftime("%Y-%m")
        report = reports.monthly_report(uow, month).total
        status = sla.sla_status(uow)
        top = kb.helped_counts(uow)
        best = max(top.items(), key=lambda item: (item[1], -item[0]), default=None)
        best_title = uow.get("kb_article", best[0]).title if best else None
        hits = kb.search(uow, "password reset")
    unfinished = sum(s.open for s in status)
    breached = sum(s.breached for s in status)

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}%"

    echo("")
    echo("Service")
    echo(f"  queues General and Billing, {len(agents)} agents, manager {manager[1]}")
    echo(
        f"  knowledge base: {len(ARTICLES)} articles published, 1 draft; "
        f"search 'password reset' finds "
        f"{', '.join(repr(h.article.title) for h in hits) or 'nothing'}"
    )
    echo(
        f"  28 tickets: {len(resolved)} resolved, {unfinished} unfinished, "
        f"{breached} past an SLA target"
    )
    echo(f"  SLA sweep: {sweep.summary()}")
    echo(
        f"  this month: first responses in time {percent(report.response_attainment)}, "
        f"resolutions in time {percent(report.resolution_attainment)}, "
        f"CSAT {percent(report.csat)} ({report.surveys} surveys)"
    )
    if best_title:
        echo(f"  most helpful article: {best_title!r} ({best[1]} tickets)")  # type: ignore[index]
