"""The entitlement: decisions as a table of cases, then through the database."""

from __future__ import annotations

import datetime as dt

import pytest
from crmcore import Money, PermissionDeniedError, ValidationError
from crmcore import security as admin
from service_support import account, unit

from crm_service import entitlement
from crm_service.entitlement import (
    BILLABLE,
    CONTRACT,
    COVERED,
    OVERRIDE,
    PARTIAL,
    WARRANTY,
    Coverage,
    decide,
)

D = dt.date


def _w(id, start, end, labour=100, parts=100, travel=0):
    return Coverage(WARRANTY, id, f"warranty {id}", start, end,
                    {"labour": labour, "parts": parts, "travel": travel})


def _c(id, start, end, labour=0, parts=0, travel=0, counts=True):
    return Coverage(CONTRACT, id, f"contract {id}", start, end,
                    {"labour": labour, "parts": parts, "travel": travel}, counts=counts)


def _o(id, start, end, percent, line_type=None):
    types = (line_type,) if line_type else ("labour", "parts", "travel")
    return Coverage(OVERRIDE, id, f"override {id}", start, end, {t: percent for t in types},
                    reason="goodwill")


YEAR = (D(2026, 1, 1), D(2026, 12, 31))

CASES = [
    # (name, coverages, day, line type, status, percent, granting source and id)
    ("nothing applies", [], D(2026, 6, 1), "labour", BILLABLE, 0, None),
    ("warranty covers labour", [_w(1, *YEAR)], D(2026, 6, 1), "labour", COVERED, 100,
     (WARRANTY, 1)),
    ("warranty on its last day", [_w(1, *YEAR)], D(2026, 12, 31), "parts", COVERED, 100,
     (WARRANTY, 1)),
    ("warranty the day after", [_w(1, *YEAR)], D(2027, 1, 1), "parts", BILLABLE, 0, None),
    ("warranty before it starts", [_w(1, *YEAR)], D(2025, 12, 31), "labour", BILLABLE, 0, None),
    ("warranty excludes travel", [_w(1, *YEAR)], D(2026, 6, 1), "travel", BILLABLE, 0,
     (WARRANTY, 1)),
    ("contract covers half the parts", [_c(7, *YEAR, parts=50)], D(2026, 6, 1), "parts",
     PARTIAL, 50, (CONTRACT, 7)),
    ("the better coverage wins", [_w(1, *YEAR, parts=30), _c(7, *YEAR, parts=50)],
     D(2026, 6, 1), "parts", PARTIAL, 50, (CONTRACT, 7)),
    ("a warranty wins a tie", [_c(7, *YEAR, labour=100), _w(1, *YEAR)], D(2026, 6, 1),
     "labour", COVERED, 100, (WARRANTY, 1)),
    ("contract after the warranty ended", [_w(1, D(2025, 1, 1), D(2025, 12, 31)),
                                           _c(7, *YEAR, labour=100)],
     D(2026, 2, 1), "labour", COVERED, 100, (CONTRACT, 7)),
    ("a draft contract does not count", [_c(7, *YEAR, labour=100, counts=False)],
     D(2026, 6, 1), "labour", BILLABLE, 0, None),
    ("an override wins over a better warranty", [_w(1, *YEAR), _o(3, *YEAR, 0, "labour")],
     D(2026, 6, 1), "labour", BILLABLE, 0, (OVERRIDE, 3)),
    ("an override of another type does not apply", [_w(1, *YEAR), _o(3, *YEAR, 0, "travel")],
     D(2026, 6, 1), "labour", COVERED, 100, (WARRANTY, 1)),
    ("an open-ended override", [_o(3, D(2026, 1, 1), None, 40)], D(2030, 1, 1), "travel",
     PARTIAL, 40, (OVERRIDE, 3)),
    ("the latest override wins", [_o(3, *YEAR, 40), _o(4, *YEAR, 100)], D(2026, 6, 1),
     "parts", COVERED, 100, (OVERRIDE, 4)),
]


@pytest.mark.parametrize(
    ("coverages", "day", "line_type", "status", "percent", "source"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decisions(coverages, day, line_type, status, percent, source) -> None:
    decision = decide(coverages, day, line_type)
    assert (decision.status, decision.percent) == (status, percent)
    assert (decision.source, decision.source_id) == (source or (None, None))


def test_a_decision_says_why() -> None:
    decision = decide([_c(7, *YEAR, parts=50)], D(2026, 6, 1), "parts")
    assert decision.reason == "contract 7 covers 50% of parts until 2026-12-31"
    assert decision.granted_by == "service_contract 7"
    assert decide([], D(2026, 6, 1), "travel").reason == (
        "no warranty or contract covers travel on 2026-06-01")


def test_shares_are_exact_to_the_cent() -> None:
    decision = decide([_c(7, *YEAR, parts=33)], D(2026, 6, 1), "parts")
    amount = Money("100.00", "EUR")
    assert decision.covered_share(amount) == Money("33.00", "EUR")
    assert decision.customer_share(amount) == Money("67.00", "EUR")


def test_an_unknown_line_type_is_named() -> None:
    with pytest.raises(ValidationError, match="unknown line type 'food'"):
        decide([], D(2026, 6, 1), "food")


# -- through the database ------------------------------------------------------------------------


@pytest.fixture
def crm(crm_factory):
    app = crm_factory(plugins=["service"])
    with app.unit_of_work() as uow:
        uow.create("warranty_term", name="Pump 12 months", product="PUMP-1", months=12,
                   travel_pct=0)
        uow.commit()
    return app


def _contract(uow, number, account_id, labour=0, parts=0, travel=0, **values):
    fields = {"number": number, "account_id": account_id, "starts_on": D(2026, 1, 1),
              "ends_on": D(2027, 12, 31), "labour_pct": labour, "parts_pct": parts,
              "travel_pct": travel, **values}
    return uow.create("service_contract", fields)


def test_a_registered_unit_is_covered_by_its_warranty(crm) -> None:
    pump = unit(crm, "SN-1", "PUMP-1", install_date=D(2026, 1, 5))
    with crm.unit_of_work() as uow:
        decision = entitlement.entitlement(uow, pump, D(2026, 6, 1), "labour")
        later = entitlement.entitlement(uow, pump.id, D(2027, 1, 5), "labour")
    assert (decision.status, decision.source) == (COVERED, WARRANTY)
    assert later.status == BILLABLE


def test_contracts_cover_a_unit_by_item_site_or_account(crm) -> None:
    acme = account(crm)
    with crm.unit_of_work() as uow:
        plant = uow.create("location", name="Plant", account_id=acme)
        hall = uow.create("location", name="Hall", account_id=acme, parent_id=plant.id)
        in_hall = uow.create("installed_unit", serial_number="H-1", product_code="X",
                             account_id=acme, location_id=hall.id)
        elsewhere = uow.create("installed_unit", serial_number="E-1", product_code="X",
                               account_id=acme)
        by_unit = _contract(uow, "SC-U", acme, parts=20)
        by_site = _contract(uow, "SC-S", acme, parts=40)
        by_account = _contract(uow, "SC-A", acme, travel=100)
        uow.create("contract_item", contract_id=by_unit.id, unit_id=elsewhere.id)
        uow.create("contract_item", contract_id=by_site.id, location_id=plant.id)
        uow.create("contract_item", contract_id=by_account.id)
        day = D(2026, 6, 1)
        found = entitlement.entitlement_many(uow, [
            (in_hall.id, day, "parts"), (elsewhere.id, day, "parts"),
            (in_hall.id, day, "travel"), (elsewhere.id, day, "labour"),
        ])
    assert [(d.status, d.percent, d.source_id) for d in found] == [
        (PARTIAL, 40, by_site.id), (PARTIAL, 20, by_unit.id),
        (COVERED, 100, by_account.id), (BILLABLE, 0, by_unit.id),
    ]


def test_an_expired_contract_covered_its_days_a_cancelled_one_nothing(crm) -> None:
    acme = account(crm)
    with crm.unit_of_work() as uow:
        pump = uow.create("installed_unit", serial_number="P", product_code="X", account_id=acme)
        expired = _contract(uow, "SC-E", acme, labour=100, status="expired")
        cancelled = _contract(uow, "SC-C", acme, parts=100, status="cancelled")
        for contract in (expired, cancelled):
            uow.create("contract_item", contract_id=contract.id, unit_id=pump.id)
        labour, parts = entitlement.entitlement_many(
            uow, [(pump.id, D(2026, 3, 1), "labour"), (pump.id, D(2026, 3, 1), "parts")])
    assert (labour.status, labour.source_id) == (COVERED, expired.id)
    assert parts.status == BILLABLE


def test_many_lines_on_many_units_are_decided_together(crm) -> None:
    with crm.unit_of_work() as uow:
        made = uow.create_many("installed_unit", [
            {"serial_number": f"S-{i}", "product_code": "PUMP-1",
             "install_date": D(2026, 1, 1) if i % 2 else None} for i in range(1200)
        ])
        lines = [(u.id, D(2026, 6, 1), t) for u in made for t in ("labour", "travel")]
        found = entitlement.entitlement_many(uow, lines)
    statuses = [d.status for d in found]
    assert statuses.count(COVERED) == 600
    assert statuses.count(BILLABLE) == 1800


SECURITY = {
    "profiles": {
        "technician": {"privileges": {"installed_unit": "all", "entitlement_override": "all"}},
        "manager": {"privileges": {
            "installed_unit": "all",
            "entitlement_override": ["create", "read", "update", "delete",
                                     "service.entitlement_override.grant"],
        }},
    },
    "roles": {"manager": {"profiles": ["manager"]}, "technician": {"profiles": ["technician"]}},
}


def test_an_override_needs_the_privilege_and_a_reason_and_is_audited(crm_factory) -> None:
    app = crm_factory(plugins=["service"], settings={"security": SECURITY})
    pump = unit(app, "SN-1", "PUMP-1")
    with app.unit_of_work() as uow:
        tech = admin.add_user(uow, "tess", roles=["technician"])
        boss = admin.add_user(uow, "max", roles=["manager"])
        uow.commit()
    override = {"unit_id": pump.id, "line_type": "parts", "valid_from": D(2026, 1, 1),
                "percent": 100, "reason": "goodwill after a late delivery"}
    with app.unit_of_work(app.actor("tess")) as uow, pytest.raises(PermissionDeniedError):
        uow.create("entitlement_override", override)
    with app.unit_of_work(app.actor("max")) as uow:
        with pytest.raises(ValidationError, match="reason"):
            uow.create("entitlement_override", {**override, "reason": "   "})
        made = uow.create("entitlement_override", override)
        uow.commit()
    with app.unit_of_work() as uow:
        decision = entitlement.entitlement(uow, pump, D(2026, 2, 1), "parts")
        [entry] = uow.history("entitlement_override", made.id)
    assert (decision.status, decision.source, decision.source_id) == (COVERED, OVERRIDE, made.id)
    assert "goodwill" in decision.reason
    assert entry.actor_id == boss.id and entry.changes["reason"][1] == override["reason"]
    assert tech.id != boss.id
