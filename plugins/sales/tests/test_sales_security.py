"""The one secured road through the sales features: forecasts, lead checks, conversion and
import dedupe see exactly what the actor may read (hidden fields refuse a figure as a query's
aggregate does), and a record the actor may not read behaves exactly like a missing one."""

from __future__ import annotations

import decimal
import json
from typing import Any

import pytest
from click.testing import CliRunner
from crmcore import Actor, ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from crmcore.cli import CliState, main
from crmcore.records import Record
from crmcore.security import add_user
from crmcore.transfer import ImportFailedError, import_rows

from crm_sales import (
    ConversionError,
    check_lead,
    check_leads,
    convert_lead,
    convert_leads,
    history_forecast,
    weighted_pipeline,
)
from crm_sales.forecast import period_of

ALL = {"lead": "all", "contact": "all", "account": "all", "opportunity": "all", "activity": "all"}
SECURITY = {
    "profiles": {
        "sales": {"privileges": ALL},
        "intern": {"privileges": ALL, "fields": {"opportunity": {"amount": "hidden"}, "lead": {"email": "hidden"}}},
    },
    "roles": {
        "manager": {"profiles": ["sales"]},
        "rep": {"parent": "manager", "profiles": ["sales"]},
        "intern": {"parent": "manager", "profiles": ["intern"]},
    },
    "entities": {name: {"sharing": "private"} for name in ("lead", "account", "contact", "opportunity")},
}
NAMES = (("boss", "manager"), ("rep1", "rep"), ("rep2", "rep"), ("intern", "intern"))
D = decimal.Decimal


@pytest.fixture
def office(crm_factory: Any) -> tuple[Any, dict[str, Actor]]:
    """A manager, two reps and an intern (who may not see opportunity amounts nor lead
    e-mail addresses), each with
    deals; leads, accounts, contacts and deals are private to their owners (and managers)."""
    crm = crm_factory(security=SECURITY, sales={"default_region": "GB"}, database=crm_factory.database_url(file=True))  # the command line reconnects
    with crm.unit_of_work() as uow:
        users = {name: add_user(uow, name, roles=[role]) for name, role in NAMES}
        uow.commit()
    actors = {name: Actor(user.id, name) for name, user in users.items()}
    deals = {
        "rep1": [("A", "1000.50 EUR", "2026-02-15", "initiation"), ("B", "333.33 EUR", "2026-05-20", "rfp_received"),
                 ("C", "100 USD", "2026-03-01", "won"), ("D", "70 EUR", None, "initiation")],
        "rep2": [("E", "2000 EUR", "2026-04-15", "final_stage"), ("F", "500 EUR", "2026-02-28", "won"),
                 ("G", None, "2026-02-01", "qualification")],
        "intern": [("H", "10 EUR", "2026-02-02", "initiation")],
    }
    with crm.unit_of_work() as uow:
        for name, rows in deals.items():
            for deal, amount, close, stage in rows:
                uow.create("opportunity", name=deal, amount=amount, close_date=close, stage=stage, owner_id=users[name].id)
        uow.commit()
    return crm, actors


def as_actor(actors: dict[str, Actor], name: str) -> Actor | None:
    return None if name == "system" else actors[name]


# -- forecasts ------------------------------------------------------------------------------------


def naive_forecast(uow: Any) -> dict[tuple[str | None, str | None], tuple[int, D, D, D]]:
    """``{(quarter, currency): (open deals, amount, weighted, won)}`` from the records the actor
    may read, one by one."""
    kinds = {s.name: s.kind for s in uow.crm.workflow.defaults["opportunity"].stages}
    totals: dict[tuple[str | None, str | None], list[Any]] = {}
    for deal in uow.query("opportunity").all():
        kind = kinds[deal.stage]
        if kind == "lost":
            continue
        money = deal.amount
        into = totals.setdefault((period_of(deal.close_date, "quarter"), money and money.currency), [0, D(0), D(0), D(0)])
        amount = money.amount if money is not None else D(0)
        if kind == "open":
            into[0] += 1
            into[1] += amount
            into[2] += amount * (deal.probability or 0) / 100
        else:
            into[3] += amount
    return {key: tuple(values) for key, values in totals.items()}


def forecast_of(rows: Any) -> dict[tuple[str | None, str | None], tuple[int, D, D, D]]:
    def amount(m: Any) -> D:
        return D(0) if m is None else m.amount
    return {(r.period, r.currency): (r.count, amount(r.amount), amount(r.weighted), amount(r.won)) for r in rows}


@pytest.mark.parametrize("name, deals", [("rep1", "ABCD"), ("rep2", "EFG"), ("boss", "ABCDEFGH"), ("system", "ABCDEFGH")])
def test_the_forecast_covers_exactly_the_deals_the_actor_may_read(office, name, deals):
    crm, actors = office
    with crm.unit_of_work(as_actor(actors, name)) as uow:
        assert "".join(sorted(d.name for d in uow.query("opportunity").all())) == deals
        rows = weighted_pipeline(uow, period="quarter")
        assert forecast_of(rows) == naive_forecast(uow)
        history = history_forecast(uow, period="quarter")
        open_deals = uow.query("opportunity").where(("stage", "not in", ["won", "lost"])).count()
    assert sum(r.count for r in history.rows) == open_deals == sum(r.count for r in rows)


def test_a_rep_does_not_see_the_other_reps_amounts_in_the_forecast(office):
    crm, actors = office
    with crm.unit_of_work(actors["rep1"]) as uow:
        rows = weighted_pipeline(uow, period="quarter", by="owner")
    assert {r.label for r in rows} == {"rep1"}
    assert D("2000.00") not in {r.amount.amount for r in rows if r.amount is not None}


def test_the_interns_forecast_is_refused_as_an_aggregate_of_the_hidden_amount_is(office):
    crm, actors = office
    with crm.unit_of_work(actors["intern"]) as uow:
        with pytest.raises(PermissionDeniedError) as aggregate:
            uow.query("opportunity").aggregate(sum=["amount"])
        for forecast in (weighted_pipeline, history_forecast):
            for by in (None, "owner", "team", "pipeline"):
                with pytest.raises(PermissionDeniedError) as refused:
                    forecast(uow, by=by)
                assert str(refused.value) == str(aggregate.value)
                assert refused.value.field == "amount"


def cli(crm: Any, *args: str) -> Any:
    """``crm *args`` on the app under test."""
    state = CliState()
    state._app = crm
    return CliRunner().invoke(main, list(args), obj=state)


def test_the_interns_forecast_command_shows_no_amount(office):
    crm, _ = office
    for args in (["forecast"], ["forecast", "--json"], ["forecast", "--history", "--json", "--by", "owner"]):
        result = cli(crm, "--as", "intern", *args)
        assert result.exit_code != 0
        assert "amount is hidden from intern" in result.output
        assert not any(text in result.output for text in ("1000.50", "2000", "333.33", "EUR"))


def test_a_reps_forecast_command_shows_their_deals_only(office):
    crm, actors = office
    result = cli(crm, "--as", "rep1", "forecast", "--period", "quarter", "--json")
    assert result.exit_code == 0, result.output
    with crm.unit_of_work(actors["rep1"]) as uow:
        expected = [r.to_dict() for r in weighted_pipeline(uow, period="quarter")]
    assert json.loads(result.stdout)["rows"] == expected
    assert "2000" not in result.stdout and "500.00" not in result.stdout


# -- duplicate checks -----------------------------------------------------------------------------


def add_lead(crm: Any, actor: Actor | None, **values: Any) -> Record:
    with crm.unit_of_work(actor) as uow:
        lead = uow.create("lead", {"last_name": "Lovelace", "status": "qualified", **values})
        uow.commit()
    return lead


def test_a_lead_the_rep_may_not_read_is_no_duplicate_of_theirs(office):
    crm, actors = office
    hidden = add_lead(crm, actors["rep2"], email="ada@analytical.org", phone="+44 20 7946 0958")
    mine = add_lead(crm, actors["rep1"], email="ADA@analytical.org", phone="020 7946 0958")
    with crm.unit_of_work(actors["rep1"]) as uow:
        with pytest.raises(NotFoundError):
            uow.get("lead", hidden.id)
        assert check_lead(uow, mine.id).ok and [c.duplicates for c in check_leads(uow, store=False)] == [()]
        unsaved = check_lead(uow, {"email": "ada@analytical.org"})
        assert unsaved.duplicates == (("lead", mine.id),)
        assert not any(str(hidden.id) in issue.message for issue in unsaved.issues)
    with crm.unit_of_work() as uow:
        assert check_lead(uow, mine.id).duplicates == (("lead", hidden.id),)
    with crm.unit_of_work(actors["boss"]) as uow:
        assert check_lead(uow, mine.id).duplicates == (("lead", hidden.id),)


def test_a_lead_record_handed_in_is_read_again(office):
    crm, actors = office
    hidden = add_lead(crm, actors["rep2"], email="ada@analytical.org")
    with crm.unit_of_work(actors["rep1"]) as uow:
        with pytest.raises(NotFoundError) as invisible:
            check_lead(uow, Record("lead", {"id": hidden.id, "version": 1, "email": "ada@analytical.org"}))
        with pytest.raises(NotFoundError) as missing:
            check_lead(uow, 9999)
    assert str(invisible.value).replace(str(hidden.id), "N") == str(missing.value).replace("9999", "N")


def test_conversion_matches_only_accounts_and_contacts_the_actor_may_read(office):
    crm, actors = office
    with crm.unit_of_work(actors["rep2"]) as uow:
        theirs = uow.create("account", name="Analytical Engines")
        contact = uow.create("contact", last_name="Lovelace", email="ada@analytical.org")
        uow.commit()
    lead = add_lead(crm, actors["rep1"], company="analytical engines", email="ADA@analytical.org")
    with crm.unit_of_work(actors["rep1"]) as uow:
        done = convert_lead(uow, lead.id)
        uow.commit()
    assert done.account_created and done.account.id != theirs.id
    assert done.contact_created and done.contact.id != contact.id
    again = add_lead(crm, None, company="Analytical Engines", email="ada@analytical.org")
    with crm.unit_of_work() as uow:
        found = convert_lead(uow, again.id)
    assert not found.account_created and found.account.id == theirs.id  # the system actor sees all
    assert not found.contact_created and found.contact.id == contact.id


def test_a_lead_field_hidden_from_the_actor_neither_matches_nor_is_carried(office):
    crm, actors = office
    with crm.unit_of_work() as uow:
        contact = uow.create("contact", last_name="Lovelace", email="ada@analytical.org", owner_id=actors["intern"].user_id)
        lead = uow.create("lead", last_name="Lovelace", status="qualified", email="ada@analytical.org",
                          owner_id=actors["intern"].user_id)
        uow.commit()
    with crm.unit_of_work(actors["intern"]) as uow:
        assert uow.get("contact", contact.id).email == "ada@analytical.org"
        for check in (lambda: check_leads(uow, store=False), lambda: check_lead(uow, lead.id)):
            with pytest.raises(PermissionDeniedError, match="lead.email is hidden from intern"):
                check()
        done = convert_lead(uow, lead.id)
        uow.commit()
    assert done.contact_created and done.contact.id != contact.id and done.contact.get("email") is None


def test_import_dedupe_ignores_records_the_actor_may_not_read(office):
    crm, actors = office
    hidden = add_lead(crm, actors["rep2"], email="ada@analytical.org")
    rows = [{"last_name": "Lovelace", "email": "ada@analytical.org"}]
    with crm.unit_of_work(actors["rep1"]) as uow:
        report = import_rows(uow, "lead", rows, dedupe_on="email")
        uow.commit()
    assert report.created == 1 and report.invalid == 0 and report.skipped == 0
    with crm.unit_of_work() as uow, pytest.raises(ImportFailedError) as refused:
        import_rows(uow, "lead", rows, dedupe_on="email")
    assert f"lead {hidden.id}" in str(refused.value) or "matches 2 existing" in str(refused.value)


# -- conversion: records handed in, invisible and missing ---------------------------------------


def message(error: pytest.ExceptionInfo[Any], record_id: int) -> str:
    return str(error.value).replace(str(record_id), "N")


def test_an_invisible_lead_converts_like_a_missing_one(office):
    crm, actors = office
    hidden = add_lead(crm, actors["rep2"], company="Acme")
    forged = Record("lead", {"id": hidden.id, "version": 1, "last_name": "Lovelace", "status": "qualified"})
    with crm.unit_of_work(actors["rep1"]) as uow:
        with pytest.raises(NotFoundError) as missing:
            convert_lead(uow, 9999)
        for given in (hidden.id, forged, [forged], [hidden.id, 9999]):
            with pytest.raises(NotFoundError) as invisible:
                if isinstance(given, list):
                    convert_leads(uow, given)
                else:
                    convert_lead(uow, given)
            assert type(invisible.value) is type(missing.value)
            assert message(invisible, hidden.id) == message(missing, 9999)
        assert uow.query("account").count() == 0


def test_a_stale_lead_record_is_a_conflict(office):
    crm, actors = office
    lead = add_lead(crm, actors["rep1"], company="Acme")
    with crm.unit_of_work(actors["rep1"]) as uow:
        uow.update(lead, title="CTO")
        with pytest.raises(ConflictError, match=f"lead {lead.id} changed since version 1"):
            convert_lead(uow, lead)


def test_a_record_of_another_entity_is_not_converted(office):
    crm, actors = office
    with crm.unit_of_work(actors["rep1"]) as uow:
        account = uow.create("account", name="Acme")
        with pytest.raises(ValidationError, match="takes leads, got a account record"):
            convert_lead(uow, account)


def test_a_lead_converted_by_someone_else_is_not_found_for_a_rep_who_could_not_read_it(office):
    crm, actors = office
    lead = add_lead(crm, actors["rep2"], company="Acme")
    with crm.unit_of_work(actors["rep2"]) as uow:
        convert_lead(uow, lead.id)
        uow.commit()
    with crm.unit_of_work(actors["rep1"]) as uow:
        with pytest.raises(NotFoundError) as invisible:
            convert_lead(uow, lead.id)
        with pytest.raises(NotFoundError) as missing:
            convert_lead(uow, 9999)
    assert message(invisible, lead.id) == message(missing, 9999)
    for who in ("rep2", "boss"):
        with crm.unit_of_work(actors[who]) as uow, pytest.raises(ConversionError, match="converting twice is refused"):
            convert_lead(uow, lead.id)


def test_an_invisible_account_is_refused_like_a_missing_one(office):
    crm, actors = office
    with crm.unit_of_work(actors["rep2"]) as uow:
        theirs = uow.create("account", name="Acme")
        uow.commit()
    lead = add_lead(crm, actors["rep1"], company="Acme")
    with crm.unit_of_work(actors["rep1"]) as uow:
        with pytest.raises(NotFoundError) as invisible:
            convert_lead(uow, lead.id, account_id=theirs.id)
        with pytest.raises(NotFoundError) as missing:
            convert_lead(uow, lead.id, account_id=9999)
    assert message(invisible, theirs.id) == message(missing, 9999)


def test_import_cannot_dedupe_on_a_field_hidden_from_the_actor(office):
    crm, actors = office
    with crm.unit_of_work(actors["intern"]) as uow, pytest.raises(PermissionDeniedError, match="lead.email is hidden from intern"):
        import_rows(uow, "lead", [{"last_name": "Lovelace", "email": "ada@analytical.org"}], dedupe_on="email")
