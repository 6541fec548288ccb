"""Payment terms make instalments; payments (by hand or from a statement) settle them oldest
first or as named; over- and under-payments leave an explicit open balance."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from billing_support import DAY, seed, settings
from crmcore.errors import ConfigError, ValidationError
from crmcore.money import Money

from crm_billing.invoices import credit_invoice, invoice_from_order, post_invoices
from crm_billing.payments import open_positions, record_payment
from crm_billing.statements import import_statement


def eur(text: str) -> Money:
    return Money(Decimal(text), "EUR")


@pytest.fixture
def crm(crm_factory, tmp_path):
    return crm_factory(plugins=["billing"], settings=settings(tmp_path))


def posted(crm, s, **header):
    with crm.unit_of_work() as uow:
        invoice = post_invoices(uow, [invoice_from_order(uow, s["order"].id, {s["lines"][0].id: 1}, invoice_date=DAY, **header).id])[0]
        uow.commit()
    return invoice  # 1000.00 + 19 % = 1190.00 EUR


def instalments(crm, invoice_id):
    with crm.unit_of_work() as uow:
        return uow.query("instalment").where(invoice_id=invoice_id).order_by("sequence").all()


def test_terms_must_add_up_to_a_hundred_percent(crm_factory, tmp_path):
    with pytest.raises(ConfigError, match=r"payment_terms.bad: the percents add up to 90, not 100"):
        crm_factory(plugins=["billing"], settings=settings(tmp_path, payment_terms={"bad": [{"days": 10, "percent": 90}]},
                                                             default_terms="bad"))


def test_a_payment_settles_the_oldest_instalment_first_and_an_underpayment_stays_open(crm):
    s = seed(crm)
    invoice = posted(crm, s, payment_terms="split")
    with crm.unit_of_work() as uow:
        payment = record_payment(uow, account_id=s["account"].id, amount="700.00 EUR", received_on=DAY)
        uow.commit()
    first, second = instalments(crm, invoice.id)
    assert (first.residual, second.residual, payment.unapplied) == (eur("0.00"), eur("490.00"), eur("0.00"))
    with crm.unit_of_work() as uow:
        assert uow.get("invoice", invoice.id).state == "partially_paid"
        position = open_positions(uow, [s["account"].id], on=dt.date(2026, 6, 1))[(s["account"].id, "EUR")]
    assert position.receivable == eur("490.00") and position.net == eur("490.00")


def test_a_named_instalment_is_settled_before_older_ones(crm):
    s = seed(crm)
    invoice = posted(crm, s, payment_terms="split")
    first, second = instalments(crm, invoice.id)
    with crm.unit_of_work() as uow:
        record_payment(uow, account_id=s["account"].id, amount="595.00 EUR", received_on=DAY, instalment_ids=[second.id])
        uow.commit()
    first, second = instalments(crm, invoice.id)
    assert (first.residual, second.residual) == (eur("595.00"), eur("0.00"))
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match=f"instalment {second.id} is already settled"):
        record_payment(uow, account_id=s["account"].id, amount="1.00 EUR", received_on=DAY, instalment_ids=[second.id])
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match=f"instalment {first.id} is not an instalment of account {s['other'].id}"):
        record_payment(uow, account_id=s["other"].id, amount="1.00 EUR", received_on=DAY, instalment_ids=[first.id])


def test_an_overpayment_pays_the_invoice_and_leaves_the_customer_a_credit(crm):
    s = seed(crm)
    invoice = posted(crm, s)
    with crm.unit_of_work() as uow:
        payment = record_payment(uow, account_id=s["account"].id, amount="1200.00 EUR", received_on=DAY)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("invoice", invoice.id).state == "paid"
        position = open_positions(uow, [s["account"].id], on=DAY)[(s["account"].id, "EUR")]
    assert payment.unapplied == eur("10.00") and position.net == eur("-10.00")


def test_a_credit_note_beyond_what_is_open_stays_as_credit(crm):
    s = seed(crm)
    invoice = posted(crm, s)
    with crm.unit_of_work() as uow:
        record_payment(uow, account_id=s["account"].id, amount="1000.00 EUR", received_on=DAY)
        note = post_invoices(uow, [credit_invoice(uow, invoice.id).id], today=DAY)[0]
        uow.commit()
    with crm.unit_of_work() as uow:
        note = uow.get("invoice", note.id)
        position = open_positions(uow, [s["account"].id], on=DAY)[(s["account"].id, "EUR")]
        assert uow.get("invoice", invoice.id).state == "paid"
    assert note.open_amount == eur("1000.00") and position.credits == eur("1000.00") and position.net == eur("-1000.00")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_statement_imports_payments_once(crm, tmp_path):
    s = seed(crm)
    invoice = posted(crm, s)
    path = write(tmp_path, "march.csv", "date,amount,currency,account,reference\n"
                 f"2026-03-20,500.00,EUR,Acme Metalworks,{invoice.number}\n"
                 f"2026-03-25,90.00,EUR,{s['account'].id},rest\n")
    with crm.unit_of_work() as uow:
        first = import_statement(uow, path)
        uow.commit()
    with crm.unit_of_work() as uow:
        again = import_statement(uow, path)
        uow.commit()
    assert (len(first.payments), first.skipped, len(again.payments), again.skipped) == (2, 0, 0, 2)
    with crm.unit_of_work() as uow:
        assert uow.get("invoice", invoice.id).open_amount == eur("600.00")


@pytest.mark.parametrize(("line", "message"), [
    ("31/03/2026,5.00,EUR,Initech,x", "bad.csv, row 3, field 'date': '31/03/2026' is not a date"),
    ("2026-03-31,5;00,EUR,Initech,x", "bad.csv, row 3, field 'amount': '5;00' is not an amount"),
    ("2026-03-31,-5.00,EUR,Initech,x", "bad.csv, row 3, field 'amount': '-5.00' must be above zero"),
    ("2026-03-31,5.00,EUX,Initech,x", "bad.csv, row 3, field 'currency': 'EUX' is not an ISO 4217 currency"),
    ("2026-03-31,5.00,EUR,Nobody,x", "bad.csv, row 3, field 'account': 'Nobody' names no account"),
    ("2026-03-31,5.00,EUR,999,x", "bad.csv, row 3, field 'account': '999' is no account id"),
])
def test_a_bad_statement_line_is_named_and_nothing_is_imported(crm, tmp_path, line, message):
    seed(crm)
    path = write(tmp_path, "bad.csv", "date,amount,currency,account,reference\n2026-03-30,5.00,EUR,Initech,ok\n" + line + "\n")
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match=message):
        import_statement(uow, path)
    with crm.unit_of_work() as uow:
        assert uow.query("payment").all() == []


def test_a_statement_without_the_needed_columns_is_refused(crm, tmp_path):
    path = write(tmp_path, "short.csv", "date,amount\n2026-03-30,5.00\n")
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match=r"short.csv: the header lacks column\(s\) \['currency', 'account', 'reference'\]"):
        import_statement(uow, path)
