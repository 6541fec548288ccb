"""Dunning: preview, levels one step per run, suppression (credits, blocked items), partial
payments, instalment plans, idempotent runs, fees and interest, e-mail over a real SMTP
server, letters and planned calls, the timeline."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal

import pytest
from billing_support import DAY, seed, settings
from crmcore import PluginInfo, hookimpl
from crmcore.errors import ValidationError
from crmcore.money import Money
from crmcore.testing import SmtpServer

from crm_billing import dunning
from crm_billing.invoices import credit_invoice, invoice_from_order, post_invoices
from crm_billing.notices import send_in, send_pending
from crm_billing.payments import record_payment

LEVELS = [
    {"days": 5, "counted_from": "due", "fee": "0", "interest_rate": "0", "channel": "email", "template": "reminder"},
    {"days": 10, "counted_from": "previous", "fee": "5.00", "interest_rate": "10", "channel": "email", "template": "reminder"},
    {"days": 10, "counted_from": "previous", "fee": "10.00", "interest_rate": "10", "channel": "letter", "template": "final"},
    {"days": 5, "counted_from": "previous", "fee": "0", "interest_rate": "0", "channel": "phone", "template": "call"},
]
DUE = DAY + dt.timedelta(days=30)  # net30


def eur(text: str) -> Money:
    return Money(Decimal(text), "EUR")


def make(crm_factory, tmp_path, smtp: SmtpServer | None = None, *, file: bool = False, extra=(), **billing):
    values = {"dunning_procedures": {"standard": LEVELS}, "letters_dir": str(tmp_path / "letters"), **billing}
    if smtp is not None:
        values["smtp"] = {"host": smtp.host, "port": smtp.port}
    crm = crm_factory(plugins=["billing", *extra], settings=settings(tmp_path, **values), file=file)
    s = seed(crm)
    with crm.unit_of_work() as uow:
        uow.update(uow.get("account", s["account"].id), email="ap@acme.example")
        uow.commit()
    return crm, s


def post(crm, s, quantity=1, **header):
    with crm.unit_of_work() as uow:
        invoice = post_invoices(uow, [invoice_from_order(uow, s["order"].id, {s["lines"][0].id: quantity},
                                                         invoice_date=DAY, **header).id])[0]
        uow.commit()
    return invoice


def run(crm, on):
    with crm.unit_of_work() as uow:
        summary = dunning.run(uow, on)
        uow.commit()
    return summary, send_pending(crm)


def test_preview_shows_level_one_and_writes_nothing(crm_factory, tmp_path):
    crm, s = make(crm_factory, tmp_path)
    invoice = post(crm, s)
    with crm.unit_of_work() as uow:
        early = dunning.preview(uow, DUE + dt.timedelta(days=3))
        found = dunning.preview(uow, DUE + dt.timedelta(days=6))
        assert uow.query("dunning_notice").all() == []
    assert early[0].items == () and "level 1 after 5 days since the due date; 3 so far" in early[0].suppressed[0].reason
    (customer,) = found
    assert customer.levels == [1] and customer.amount_due == invoice.grand_total
    assert customer.items[0].reason == "6 days since the due date (level 1 after 5)"


def test_the_end_to_end_flow_reminds_the_remainder_only_and_stops_after_the_credit_note(crm_factory, tmp_path, smtp_server):
    crm, s = make(crm_factory, tmp_path, smtp_server)
    invoice = post(crm, s)
    first, report = run(crm, DUE + dt.timedelta(days=6))
    assert report.sent == 1 and smtp_server.recipients == [["ap@acme.example"]]
    message = smtp_server.messages[0]
    assert message["Subject"] == "Payment reminder 1: 1190.00 EUR overdue"
    assert invoice.number in message.get_content()
    again, report = run(crm, DUE + dt.timedelta(days=6))  # a rerun the same day sends nothing
    assert again.notices == () and report.sent == 0 and len(smtp_server.messages) == 1
    path = tmp_path / "statement.csv"
    path.write_text(f"date,amount,currency,account,reference\n{DUE.isoformat()},1000.00,EUR,Acme Metalworks,{invoice.number}\n")
    from crm_billing.statements import import_statement
    with crm.unit_of_work() as uow:
        import_statement(uow, path)
        uow.commit()
    second, report = run(crm, DUE + dt.timedelta(days=16))
    (notice,) = second.notices
    assert (notice.level, notice.amount_due, notice.fee) == (2, eur("190.00"), eur("5.00"))
    assert notice.interest == eur("0.83")  # 190.00 × 10 % × 16 / 365
    assert "190.00 EUR" in smtp_server.messages[1]["Subject"]
    with crm.unit_of_work() as uow:
        fee_invoice = uow.get("invoice", notice.fee_invoice_id)
        assert fee_invoice.state == "posted" and fee_invoice.grand_total == eur("5.83")
        post_invoices(uow, [credit_invoice(uow, invoice.id).id], today=DUE)
        post_invoices(uow, [credit_invoice(uow, fee_invoice.id).id], today=DUE)
        uow.commit()
    third, report = run(crm, DUE + dt.timedelta(days=40))
    assert third.notices == () and len(smtp_server.messages) == 2
    with crm.unit_of_work() as uow:
        kinds = {entry.entity for entry in uow.timeline("account", s["account"].id)}
    assert "dunning_notice" in kinds


def test_credits_covering_the_overdue_amount_suppress_the_customer(crm_factory, tmp_path):
    crm, s = make(crm_factory, tmp_path)
    first = post(crm, s)
    second = post(crm, s)
    with crm.unit_of_work() as uow:  # the first paid twice over: the rest stays unapplied
        named = uow.query("instalment").where(invoice_id=first.id).first().id
        payment = record_payment(uow, account_id=s["account"].id, amount="2380.00 EUR", received_on=DAY, instalment_ids=[named])
        uow.commit()
    with crm.unit_of_work() as uow:
        (customer,) = dunning.preview(uow, DUE + dt.timedelta(days=10))
    assert customer.items == () and payment.unapplied == eur("1190.00")
    assert customer.suppressed[0].reason == "credits and unapplied payments of 1190.00 EUR cover the overdue 1190.00 EUR"
    assert customer.suppressed[0].invoice_number == second.number


def test_a_customer_who_paid_after_the_last_statement_import_is_not_reminded(crm_factory, tmp_path):
    crm, s = make(crm_factory, tmp_path)
    invoice = post(crm, s)
    path = tmp_path / "statement.csv"
    path.write_text("date,amount,currency,account,reference\n2026-03-10,15.00,EUR,Initech,other\n")
    from crm_billing.statements import import_statement
    with crm.unit_of_work() as uow:
        import_statement(uow, path)
        uow.commit()
    with crm.unit_of_work() as uow:  # the money came after the import: recorded by hand
        record_payment(uow, account_id=s["account"].id, amount="1190.00 EUR", received_on=DUE + dt.timedelta(days=2),
                       reference=invoice.number)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert dunning.preview(uow, DUE + dt.timedelta(days=10)) == []


def test_a_credit_note_covering_the_due_amount_stops_reminders(crm_factory, tmp_path):
    crm, s = make(crm_factory, tmp_path)
    invoice = post(crm, s)
    with crm.unit_of_work() as uow:
        post_invoices(uow, [credit_invoice(uow, invoice.id).id], today=DAY)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert dunning.preview(uow, DUE + dt.timedelta(days=60)) == []


def test_a_blocked_item_is_not_reminded_and_says_why(crm_factory, tmp_path):
    crm, s = make(crm_factory, tmp_path)
    invoice = post(crm, s)
    with crm.unit_of_work() as uow:
        uow.update(uow.query("instalment").where(invoice_id=invoice.id).first(), blocked=True)
        uow.commit()
    with crm.unit_of_work() as uow:
        (customer,) = dunning.preview(uow, DUE + dt.timedelta(days=60))
        summary = dunning.run(uow, DUE + dt.timedelta(days=60))
    assert customer.items == () and customer.suppressed[0].reason == "blocked" and summary.notices == ()


def test_an_instalment_plan_reminds_only_the_overdue_instalment(crm_factory, tmp_path):
    crm, s = make(crm_factory, tmp_path)
    invoice = post(crm, s, payment_terms="split")  # 595.00 due after 30 days, 595.00 after 60
    with crm.unit_of_work() as uow:
        (customer,) = dunning.preview(uow, DAY + dt.timedelta(days=40))
        first = uow.query("instalment").where(invoice_id=invoice.id, sequence=1).first()
    assert [i.instalment_id for i in customer.items] == [first.id] and customer.amount_due == eur("595.00")


def test_levels_climb_one_step_per_run_and_never_skip(crm_factory, tmp_path):
    crm, s = make(crm_factory, tmp_path, fee_policy="waive")
    post(crm, s)
    levels = []
    for days in (100, 101, 200, 300, 400):
        with crm.unit_of_work() as uow:
            summary = dunning.run(uow, DUE + dt.timedelta(days=days))
            uow.commit()
        levels.append([n.level for n in summary.notices])
    assert levels == [[1], [], [2], [3], [4]]
    with crm.unit_of_work() as uow:
        notices = {n.level: n for n in uow.query("dunning_notice").all()}
        call = uow.get("activity", notices[4].activity_id)
    assert notices[2].fee == eur("0") and notices[3].status == "printed" and notices[3].document_id is not None
    assert (tmp_path / "letters").is_dir() and list((tmp_path / "letters").glob("*.pdf"))
    assert (call.kind, call.status, call.account_id) == ("call", "planned", s["account"].id)


def test_threat_only_shows_fees_without_booking_them(crm_factory, tmp_path):
    crm, s = make(crm_factory, tmp_path, fee_policy="threat")
    post(crm, s)
    for days in (6, 16):
        with crm.unit_of_work() as uow:
            summary = dunning.run(uow, DUE + dt.timedelta(days=days))
            uow.commit()
    (notice,) = summary.notices
    assert notice.fee == eur("5.00") and notice.fee_invoice_id is None


class RefusingServer(SmtpServer):
    refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802 - aiosmtpd's name
        if address in self.refuse:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def refusing_smtp():
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = RefusingServer("127.0.0.1", port)
    server.refuse = {"ap@acme.example"}
    controller = Controller(server, hostname=server.host, port=port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def test_a_refused_recipient_is_recorded_and_retried(crm_factory, tmp_path, refusing_smtp):
    crm, s = make(crm_factory, tmp_path, refusing_smtp)
    post(crm, s)
    summary, report = run(crm, DUE + dt.timedelta(days=6))
    assert (report.sent, report.failed) == (0, 1) and refusing_smtp.messages == []
    with crm.unit_of_work() as uow:
        notice = uow.get("dunning_notice", summary.notices[0].id)
    assert notice.status == "failed" and "550" in notice.last_error and notice.attempts == 1
    refusing_smtp.refuse = set()
    report = send_pending(crm)
    assert report.sent == 1 and refusing_smtp.recipients == [["ap@acme.example"]]


def test_the_worker_runs_dunning_daily_and_sends_the_mail(crm_factory, tmp_path, smtp_server, caplog):
    from crmcore.jobs import run_worker

    caplog.set_level("INFO", logger="crm_billing.jobs")
    crm, s = make(crm_factory, tmp_path, smtp_server)
    post(crm, s)
    with crm.unit_of_work() as uow:
        (first,) = uow.query("job").where(kind="billing.dunning", status="queued").all()
    at = first.run_at + dt.timedelta(seconds=1)
    assert at.astimezone(crm.registry.timezone).hour == 6
    run_worker(crm, once=True, now=at)  # the dunning job: one notice, the sending queued
    run_worker(crm, once=True, now=at)  # the sending
    assert smtp_server.recipients == [["ap@acme.example"]]
    with crm.unit_of_work() as uow:
        (following,) = uow.query("job").where(kind="billing.dunning", status="queued").all()
        done = uow.get("job", first.id)
    assert following.run_at - first.run_at == dt.timedelta(days=1)
    assert done.status == "done"
    day = at.astimezone(crm.registry.timezone).date()
    logged = [r.getMessage() for r in caplog.records if r.name == "crm_billing.jobs"]
    assert logged == [f"dunning of {day}: 0 of 1 notices considered", f"dunning of {day}: 1 of 1 notices considered",
                      f"dunning of {day} done: notices made: 1 email; instalments raised a level: 1; "
                      "already made before: 0; suppressed or waiting: 0"]


def test_a_run_reports_its_progress_chunk_by_chunk(crm_factory, tmp_path, monkeypatch):
    crm, s = make(crm_factory, tmp_path)
    with crm.unit_of_work() as uow:
        others = uow.create_many("account", [{"name": f"Customer {n}"} for n in range(4)])
        uow.commit()
    post(crm, s)
    with crm.unit_of_work() as uow:
        drafts = [uow.create("invoice", account_id=a.id, currency="EUR", invoice_date=DAY) for a in others]
        uow.create_many("invoice_line", [{"invoice_id": d.id, "description": "Audit", "unit_price": "100.00 EUR"}
                                         for d in drafts])
        post_invoices(uow, [d.id for d in drafts], today=DAY)
        uow.commit()
    monkeypatch.setattr(dunning, "RUN_CHUNK", 2)
    seen: list[tuple[int, int]] = []
    with crm.unit_of_work() as uow:
        summary = dunning.run(uow, DUE + dt.timedelta(days=6), progress=lambda done, total: seen.append((done, total)))
        uow.commit()
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]
    assert len(summary.notices) == 5 and summary.instalments == 5


def test_two_runs_at_once_make_each_notice_once(crm_factory, tmp_path):
    crm, s = make(crm_factory, tmp_path, file=True)
    post(crm, s)
    on = DUE + dt.timedelta(days=6)
    with crm.unit_of_work() as first, crm.unit_of_work() as second:
        made = dunning.run(first, on)
        first.commit()
        later = dunning.run(second, on)
        second.commit()
    assert len(made.notices) == 1 and later.notices == () and later.already_done in (0, 1)
    with crm.unit_of_work() as uow:
        assert len(uow.query("dunning_notice").all()) == 1


def test_an_account_follows_the_procedure_it_names(crm_factory, tmp_path, smtp_server):
    quick = [{"days": 1, "counted_from": "due", "fee": "0", "interest_rate": "0", "channel": "phone", "template": "call"}]
    crm, s = make(crm_factory, tmp_path, smtp_server, dunning_procedures={"standard": LEVELS, "key_accounts": quick})
    post(crm, s)
    with crm.unit_of_work() as uow:
        uow.update(uow.get("account", s["account"].id), dunning_procedure="vip")
        uow.commit()
    with crm.unit_of_work() as uow:
        (customer,) = dunning.preview(uow, DUE + dt.timedelta(days=2))
        assert customer.procedure == "standard" and "names the dunning procedure 'vip', which the settings lack" in customer.note
        uow.update(uow.get("account", s["account"].id), dunning_procedure="key_accounts")
        uow.commit()
    summary, report = run(crm, DUE + dt.timedelta(days=2))
    (notice,) = summary.notices
    assert (notice.channel, notice.procedure, notice.status) == ("phone", "key_accounts", "planned")
    assert report.sent == 0 and smtp_server.messages == []


def test_a_preview_and_a_run_need_the_rights_of_billing(crm_factory, tmp_path):
    from crmcore import security as admin
    from crmcore.errors import PermissionDeniedError

    security = {"profiles": {"sales": {"privileges": {"account": ["read"]}},
                             "clerk": {"privileges": {"instalment": ["read"], "invoice": ["read"]}}},
                "roles": {"sales": {"profiles": ["sales"]}, "clerk": {"profiles": ["clerk"]}}}
    crm = crm_factory(plugins=["billing"], settings={**settings(tmp_path, dunning_procedures={"standard": LEVELS}),
                                                     "security": security})
    s = seed(crm)
    post(crm, s)
    with crm.unit_of_work() as uow:
        admin.add_user(uow, "sam", roles=["sales"])
        admin.add_user(uow, "cleo", roles=["clerk"])
        uow.commit()
    on = DUE + dt.timedelta(days=6)
    with crm.unit_of_work(crm.actor("sam")) as uow:
        assert dunning.preview(uow, on) == []  # instalments they may not read are not shown
    with crm.unit_of_work(crm.actor("cleo")) as uow:
        (customer,) = dunning.preview(uow, on)
        assert [item.level for item in customer.items] == [1]
        with pytest.raises(PermissionDeniedError):
            dunning.run(uow, on)


def test_a_notice_left_sending_by_a_stopped_sender_is_sent_later(crm_factory, tmp_path, smtp_server):
    crm, s = make(crm_factory, tmp_path, smtp_server)
    post(crm, s)
    with crm.unit_of_work() as uow:
        (notice,) = dunning.run(uow, DUE + dt.timedelta(days=6)).notices
        uow.update(notice, status="sending")  # claimed, then the sender stopped
        uow.commit()
    assert send_pending(crm).sent == 0 and smtp_server.messages == []  # a fresh claim is left alone
    report = send_pending(crm, stale_after=dt.timedelta(0))
    assert report.sent == 1 and smtp_server.recipients == [["ap@acme.example"]]
    with crm.unit_of_work() as uow:
        assert uow.get("dunning_notice", notice.id).status == "sent"


class FailingCommit:
    """A plugin of the test whose ``crm_before_commit`` fails the commit while ``failing``."""

    PLUGIN = PluginInfo(name="test_failing_commit")

    def __init__(self) -> None:
        self.failing = False

    @hookimpl
    def crm_before_commit(self, uow) -> None:
        if self.failing:
            raise ValidationError({"commit": ["the commit fails (test)"]})


def test_the_send_job_sends_nothing_when_its_commit_fails_and_each_mail_once(crm_factory, tmp_path, smtp_server):
    failing = FailingCommit()
    crm, s = make(crm_factory, tmp_path, smtp_server, extra=[failing])
    post(crm, s)
    with crm.unit_of_work() as uow:
        (notice,) = dunning.run(uow, DUE + dt.timedelta(days=6)).notices
        uow.commit()
    failing.failing = True
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="the commit fails"):
        send_in(uow)
    failing.failing = False
    assert smtp_server.messages == []
    with crm.unit_of_work() as uow:
        assert uow.get("dunning_notice", notice.id).status == "pending"
    with crm.unit_of_work() as uow:
        report = send_in(uow)
    assert (report.sent, report.failed) == (1, 0) and smtp_server.recipients == [["ap@acme.example"]]
    with crm.unit_of_work() as uow:
        done = uow.get("dunning_notice", notice.id)
        assert (done.status, done.attempts) == ("sent", 1)
        assert send_in(uow).sent == 0
    assert send_pending(crm).sent == 0 and len(smtp_server.messages) == 1


def test_the_send_job_on_the_worker_commits_its_claim_before_sending(crm_factory, tmp_path, smtp_server):
    from crmcore.jobs import enqueue, run_worker

    failing = FailingCommit()
    crm, s = make(crm_factory, tmp_path, smtp_server, extra=[failing])
    post(crm, s)
    at = dt.datetime.combine(DUE + dt.timedelta(days=6), dt.time(12), dt.UTC)
    with crm.unit_of_work() as uow:
        (notice,) = dunning.run(uow, DUE + dt.timedelta(days=6)).notices
        job = enqueue(uow, "billing.send_notices", {}, run_at=at, key="billing.send_notices")
        uow.commit()
    failing.failing = True
    run_worker(crm, once=True, now=at + dt.timedelta(seconds=1))  # the job fails: its claim is not committed
    failing.failing = False
    assert smtp_server.messages == []
    with crm.unit_of_work() as uow:
        assert uow.get("dunning_notice", notice.id).status == "pending"
        retry = uow.get("job", job)
    assert retry.status == "queued" and retry.attempts == 1
    run_worker(crm, once=True, now=retry.run_at + dt.timedelta(seconds=1))
    assert smtp_server.recipients == [["ap@acme.example"]]
    with crm.unit_of_work() as uow:
        assert uow.get("dunning_notice", notice.id).status == "sent"
        assert uow.get("job", job).status == "done"
