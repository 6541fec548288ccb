"""One secured road: nothing trusts a record handed in by a caller.

Two reps, their manager, an intern who never sees an opportunity's amount, a user with no
privileges and an administrator. The reps attack each other with records built by hand (field
names are public, versions can be guessed): every write, tag, reference and explanation is
decided on the rows in the database, and a record a user may not read behaves exactly like one
that does not exist.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from crmcore import (
    Actor,
    ConflictError,
    EntityType,
    Field,
    NotFoundError,
    PermissionDeniedError,
    ReferenceError,
    ValidationError,
    hookimpl,
)
from crmcore.fields import Reference, String
from crmcore.money import Money
from crmcore.records import Record
from crmcore.security import admin
from crmcore.transfer import import_rows

SECURITY = {
    "profiles": {
        "sales": {"privileges": {"lead": "all", "account": "all", "opportunity": "all", "tag": ["create", "read"]}},
        "intern": {
            "privileges": {"opportunity": ["read", "update"], "account": ["read", "update"]},
            "fields": {"opportunity": {"amount": "hidden"}},
        },
        "admin": {"privileges": {"*": ["all", "security.explain"]}, "modify_all": True},
    },
    "roles": {
        "ceo": {"profiles": ["admin"]},
        "sales_manager": {"parent": "ceo", "profiles": ["sales"]},
        "sales_rep": {"parent": "sales_manager", "profiles": ["sales"]},
        "intern": {"parent": "sales_rep", "profiles": ["intern"]},
    },
    "entities": {name: {"sharing": "private"} for name in ("lead", "account", "opportunity")},
    "rules": [
        {"name": "interns work on deals", "entity": "opportunity", "owned_by": "role-tree:sales_manager",
         "shared_with": "role:intern", "access": "read_write"},
        {"name": "interns read accounts", "entity": "account", "owned_by": "role-tree:sales_manager",
         "shared_with": "role:intern", "access": "read"},
    ],
}
MISSING = 987_654


@pytest.fixture
def road(crm_factory: Any) -> tuple[Any, dict[str, Actor], dict[str, dict[str, Record]]]:
    crm = crm_factory(security=SECURITY)
    with crm.unit_of_work() as uow:
        users = {
            name: admin.add_user(uow, name, roles=roles)
            for name, roles in {"ceo": ["ceo"], "manager": ["sales_manager"], "rep1": ["sales_rep"], "rep2": ["sales_rep"],
                                "intern": ["intern"], "nobody": []}.items()
        }
        uow.commit()
    actors = {name: Actor(user.id, name) for name, user in users.items()}
    records: dict[str, dict[str, Record]] = {}
    for rep in ("rep1", "rep2"):
        with crm.unit_of_work(actors[rep]) as uow:
            account = uow.create("account", name=f"{rep} account")
            records[rep] = {
                "lead": uow.create("lead", last_name=f"{rep} lead", company="Acme"),
                "account": account,
                "deal": uow.create("opportunity", name=f"{rep} deal", account_id=account.id, amount="60000 EUR"),
            }
            uow.commit()
    return crm, actors, records


def _row(crm: Any, record: Record) -> Record:
    """The record as its row stands (read by the system)."""
    with crm.unit_of_work() as uow:
        return uow.get(record.entity, record.id)


def _forged(crm: Any, record: Record, **values: Any) -> Record:
    """A record built by hand (outside any unit): the row's field names and version, with
    *values* changed."""
    return Record(record.entity, {**_row(crm, record).values, **values})


def _missing(record: Record) -> Record:
    """A hand-built record of the same entity with an id that does not exist."""
    return Record(record.entity, {**record.values, "id": MISSING})


def _refusal(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(NotFoundError) as info:
        call(*args, **kwargs)
    assert type(info.value) is NotFoundError
    return str(info.value)


def _same_as_missing(call: Any, record: Record, *args: Any, **kwargs: Any) -> None:
    """*call* refuses *record* and a missing record of its entity with the same message."""
    told = _refusal(call, record, *args, **kwargs)
    assert told == f"{record.entity} {record.id} not found"
    assert _refusal(call, _missing(record), *args, **kwargs) == f"{record.entity} {MISSING} not found"


# -- writes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 99])
def test_a_hand_built_record_neither_changes_an_invisible_lead_nor_takes_it_over(road: Any, version: int) -> None:
    crm, actors, records = road
    lead = records["rep1"]["lead"]
    forged = _forged(crm, lead, owner_id=actors["rep2"].user_id, version=version)
    own = _forged(crm, records["rep2"]["lead"])
    with crm.unit_of_work(actors["rep2"]) as uow:
        _same_as_missing(uow.update, forged, company="Mine now", owner_id=actors["rep2"].user_id)
        _same_as_missing(uow.move, forged, "working")
        _same_as_missing(uow.delete, forged)
        _same_as_missing(uow.check_access, forged, "update")
        with pytest.raises(NotFoundError, match=f"^lead {lead.id} not found$"):
            uow.move_many([own, forged], "working")
        uow.commit()
    row = _row(crm, lead)
    assert (row.owner_id, row.company, row.status, row.version) == (actors["rep1"].user_id, "Acme", lead.status, 1)


def test_forged_values_at_the_right_version_are_replaced_by_the_row(road: Any) -> None:
    crm, actors, records = road
    deal = records["rep1"]["deal"]
    forged = _forged(crm, deal, amount=Money(Decimal(1), "EUR"), owner_id=actors["rep2"].user_id, description="forged")
    with crm.unit_of_work(actors["rep1"]) as uow:
        updated = uow.update(forged, amount="60000 EUR", next_step="call")
        assert (updated.amount, updated.owner_id, updated.description) == (Money(Decimal(60000), "EUR"), actors["rep1"].user_id, None)
        uow.commit()
    with crm.unit_of_work() as uow:
        last = uow.history("opportunity", deal.id)[-1]
    assert last.changes == {"next_step": (None, "call")}
    taken = _forged(crm, deal, owner_id=actors["rep2"].user_id)
    with crm.unit_of_work(actors["rep2"]) as uow:  # the forged owner gives rep2 nothing either
        _same_as_missing(uow.update, taken, next_step="mine")


def test_a_stale_record_conflicts_and_a_fresh_one_moves(road: Any) -> None:
    crm, actors, records = road
    deal = records["rep1"]["deal"]
    with crm.unit_of_work(actors["rep1"]) as uow:
        uow.update("opportunity", deal.id, next_step="call")
        uow.commit()
    fresh = _forged(crm, deal)
    with crm.unit_of_work(actors["rep1"]) as uow:
        for call in (lambda r: uow.update(r, description="late"), lambda r: uow.move(r, "identification"),
                     lambda r: uow.move_many([r], "identification"), uow.delete):
            with pytest.raises(ConflictError, match=f"opportunity {deal.id} changed since version 1 was read"):
                call(deal)
        assert uow.move(fresh, "identification").stage == "identification"


def test_a_move_takes_the_pipeline_of_the_row(road: Any) -> None:
    crm, actors, records = road
    deal = records["rep1"]["deal"]
    forged = _forged(crm, deal, stage="negotiation", pipeline="nonexistent")
    with crm.unit_of_work(actors["rep1"]) as uow:
        moved = uow.move(forged, "identification")
        assert (moved.stage, moved.pipeline) == ("identification", deal.pipeline)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.history("opportunity", deal.id)[-1].changes["stage"][0] == deal.stage


def test_the_intern_updates_what_it_reads_without_touching_the_hidden_amount(road: Any) -> None:
    crm, actors, records = road
    deal = records["rep1"]["deal"]
    forged = _forged(crm, deal, amount=Money(Decimal(5), "EUR"))
    with crm.unit_of_work(actors["intern"]) as uow:
        assert "amount" not in uow.update(forged, description="noted").values
        seen = uow.get("opportunity", deal.id)
        assert "amount" not in seen.values
        assert "amount" not in uow.update(seen, next_step="ask the boss").values
        assert "amount" not in uow.update("opportunity", deal.id, next_step="ask the boss").values  # nothing changes
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("opportunity", deal.id).amount == Money(Decimal(60000), "EUR")
        assert all("amount" not in entry.changes for entry in uow.history("opportunity", deal.id)[1:])


def test_a_record_the_unit_issued_is_written_without_being_read_again(road: Any) -> None:
    crm, actors, records = road
    with crm.unit_of_work(actors["rep1"]) as uow:
        deals = uow.query("opportunity").all()
        reads: list[str] = []
        original = uow._select_one

        def counted(*args: Any, **kwargs: Any) -> Record:
            reads.append("one")
            return original(*args, **kwargs)

        uow._select_one = counted  # type: ignore[method-assign]
        moved = uow.move(deals[0], "identification")
        updated = uow.update(moved, next_step="call")
        assert reads == []
        uow.update(Record("opportunity", updated.values), description="read first")
        assert reads == ["one"]


# -- tags ------------------------------------------------------------------------------------------


def test_tags_follow_the_access_to_the_record(road: Any) -> None:
    crm, actors, records = road
    mine, theirs = records["rep1"]["lead"], records["rep2"]["lead"]
    taken = _forged(crm, mine, owner_id=actors["rep2"].user_id)
    with crm.unit_of_work(actors["rep1"]) as uow:
        uow.tag(mine, "vip", "gold")
        uow.commit()
    with crm.unit_of_work(actors["rep2"]) as uow:
        uow.tag(theirs, "vip")
        _same_as_missing(uow.tags, mine)
        _same_as_missing(uow.tag, mine, "vip")
        _same_as_missing(uow.untag, mine, "vip")
        with pytest.raises(NotFoundError, match=f"^lead {mine.id} not found$"):
            uow.tag_many([theirs, taken], "stolen")
        assert uow.tag_counts("lead") == [("vip", 1)]
        assert uow.tag_counts() == [("vip", 1)]
        assert [r.id for r in uow.tagged("lead", "gold")] == []
        uow.commit()
    with crm.unit_of_work(actors["manager"]) as uow:  # the manager reads both
        assert uow.tags(mine) == ["gold", "vip"]
        assert uow.tag_counts("lead") == [("vip", 2), ("gold", 1)]
    with crm.unit_of_work(actors["nobody"]) as uow:
        with pytest.raises(PermissionDeniedError, match="nobody may not update lead records"):
            uow.tag(mine, "vip")
        with pytest.raises(PermissionDeniedError):
            uow.untag(mine, "gold")
        assert uow.tag_counts() == []
    with crm.unit_of_work(actors["intern"]) as uow:  # reads the account, may not tag it (no update on it)
        account = uow.get("account", records["rep1"]["account"].id)
        assert uow.tags(account) == []
        with pytest.raises(PermissionDeniedError, match=f"intern may not update account {account.id}"):
            uow.tag(account, "vip")
    with crm.unit_of_work() as uow:
        assert uow.tags(mine) == ["gold", "vip"]
        assert uow.tag_counts("lead") == [("vip", 2), ("gold", 1)]


# -- references ------------------------------------------------------------------------------------


def test_a_reference_to_an_unreadable_record_is_refused_like_a_missing_one(road: Any) -> None:
    crm, actors, records = road
    theirs = records["rep1"]["account"].id
    mine = records["rep2"]["deal"]

    def message(target: int) -> str:
        return f"no account with id {target}; create it first or correct the id"

    with crm.unit_of_work(actors["rep2"]) as uow:
        for target in (theirs, MISSING):
            with pytest.raises(ReferenceError) as info:
                uow.create("opportunity", name="Mine", account_id=target)
            assert info.value.messages == {"account_id": [message(target)]}
            with pytest.raises(ReferenceError) as info:
                uow.update(mine, account_id=target)
            assert info.value.messages == {"account_id": [message(target)]}
        report = import_rows(uow, "opportunity", [{"name": "A", "account_id": theirs}, {"name": "B", "account_id": MISSING},
                                                  {"name": "C", "account_id": records["rep2"]["account"].id}], skip_invalid=True)
        assert (report.created, report.invalid) == (1, 2)
        assert [e.message for e in report.errors] == [message(theirs), message(MISSING)]
        # owners are named whatever the profiles say of reading users
        handed = uow.create("lead", last_name="Handed over", owner_id=actors["rep1"].user_id)
        assert handed.owner_id == actors["rep1"].user_id
    with crm.unit_of_work(actors["manager"]) as uow:  # the manager reads rep1's account
        assert uow.create("opportunity", name="Team deal", account_id=theirs).account_id == theirs
    with crm.unit_of_work() as uow:  # the system sees all
        assert uow.update(uow.get("opportunity", mine.id), account_id=theirs).account_id == theirs


def test_allows_values_decides_on_values_that_no_longer_stand_in_a_row(road: Any) -> None:
    crm, actors, records = road
    lead = records["rep1"]["lead"]
    with crm.unit_of_work() as uow:
        snapshot = dict(uow.get("lead", lead.id).values)
        uow.delete("lead", lead.id)
        uow.commit()
    for who, expected in (("rep1", True), ("manager", True), ("rep2", False), ("nobody", False)):
        with crm.unit_of_work(actors[who]) as uow:
            assert uow.allows_values("lead", snapshot) is expected, who
            assert uow.allows_values("lead", {**snapshot, "owner_id": actors["rep2"].user_id}) is (who in ("rep2", "manager"))


def test_an_entity_referable_by_all_is_named_by_actors_who_cannot_read_it(crm_factory: Any) -> None:
    class Plans:
        """A plugin's configuration entity any rep may name, and a private one nobody else may."""

        @hookimpl
        def crm_entity_types(self) -> list[EntityType]:
            return [EntityType("price_plan", fields=(Field("name", String(50)),), referable_by_all=True),
                    EntityType("secret_plan", fields=(Field("name", String(50)),))]

        @hookimpl
        def crm_entity_fields(self, entity_type: str) -> list[Field] | None:
            if entity_type == "account":
                return [Field("price_plan_id", Reference("price_plan")), Field("secret_plan_id", Reference("secret_plan"))]
            return None

    crm = crm_factory(plugins=[Plans()], security=SECURITY)
    with crm.unit_of_work() as uow:
        rep = admin.add_user(uow, "rep", roles=["sales_rep"])
        plan = uow.create("price_plan", name="Gold")
        secret = uow.create("secret_plan", name="Platinum")
        uow.commit()
    with crm.unit_of_work(Actor(rep.id, "rep")) as uow:
        with pytest.raises(NotFoundError):
            uow.get("price_plan", plan.id)  # reading still needs read access
        assert uow.create("account", name="Acme", price_plan_id=plan.id).price_plan_id == plan.id
        with pytest.raises(ReferenceError) as info:
            uow.create("account", name="Globex", secret_plan_id=secret.id)
        assert info.value.messages == {"secret_plan_id": [f"no secret_plan with id {secret.id}; create it first or correct the id"]}


# -- explain ---------------------------------------------------------------------------------------


def test_explain_answers_about_readable_records_and_administrators_about_any(road: Any) -> None:
    crm, actors, records = road
    lead = records["rep1"]["lead"]
    taken = _forged(crm, lead, owner_id=actors["rep2"].user_id)
    with crm.unit_of_work(actors["rep2"]) as uow:
        _same_as_missing(uow.explain, lead)
        _same_as_missing(uow.explain, taken, "update")
        with pytest.raises(PermissionDeniedError, match="security.explain"):
            uow.explain(lead, user=actors["rep1"])
        own = uow.explain(records["rep2"]["lead"], "update", user=actors["rep2"])
        assert own.allowed and own.chain[-1] == "matched: the actor owns the record"
    with crm.unit_of_work(actors["rep1"]) as uow:
        assert uow.explain(taken).allowed  # the row's owner decides
    with crm.unit_of_work(actors["ceo"]) as uow:
        denied = uow.explain(lead, "read", user=actors["rep2"])
        assert not denied.allowed and denied.chain[-1] == "no grant matches this record"
        assert uow.explain(lead, "update", user=actors["manager"]).allowed
        with pytest.raises(NotFoundError, match=f"^lead {MISSING} not found$"):
            uow.explain(_missing(lead), user=actors["rep2"])
    assert crm.explain("rep2", lead).chain[-1] == "no grant matches this record"


def test_an_administrator_explains_records_it_cannot_read(crm_factory: Any) -> None:
    security = {**SECURITY, "profiles": {**SECURITY["profiles"], "auditor": {"privileges": {"lead": ["security.explain"]}}},
                "roles": {**SECURITY["roles"], "auditor": {"profiles": ["auditor"]}}}
    crm = crm_factory(security=security)
    with crm.unit_of_work() as uow:
        auditor = admin.add_user(uow, "auditor", roles=["auditor"])
        lead = uow.create("lead", last_name="Hidden")
        uow.commit()
    with crm.unit_of_work(Actor(auditor.id, "auditor")) as uow:
        with pytest.raises(NotFoundError):
            uow.get("lead", lead.id)
        decision = uow.explain(lead)
        assert not decision.allowed and "no profile of auditor grants read on lead" in decision.chain[0]


# -- system scope ----------------------------------------------------------------------------------


def test_a_system_scope_acts_with_more_rights_and_says_for_whom_and_why(road: Any) -> None:
    crm, actors, records = road
    theirs = records["rep2"]["lead"]
    rep1 = actors["rep1"]
    with crm.unit_of_work(rep1) as uow:
        with pytest.raises(ValidationError, match="system_scope needs a reason"):
            with uow.system_scope("  "):
                pass
        with uow.system_scope("hand-over after a call") as system:
            assert system.actor.is_system
            system.update(system.get("lead", theirs.id), company="Handed")
            with system.system_scope("bulk follow-up"):
                system.move_many([system.get("opportunity", records["rep2"]["deal"].id)], "identification")
        assert uow.actor == rep1
        with pytest.raises(NotFoundError):
            uow.get("lead", theirs.id)
        mine = uow.update(uow.get("lead", records["rep1"]["lead"].id), company="Mine")
        uow.commit()
    with crm.unit_of_work() as uow:
        handed = uow.history("lead", theirs.id)[-1]
        moved = uow.history("opportunity", records["rep2"]["deal"].id)[-1]
        own = uow.history("lead", mine.id)[-1]
    assert (handed.actor_id, handed.on_behalf_of, handed.reason) == (None, rep1.user_id, "hand-over after a call")
    assert handed.changes == {"company": ("Acme", "Handed")}
    assert (moved.actor_id, moved.on_behalf_of, moved.reason) == (None, rep1.user_id, "bulk follow-up")
    assert moved.changes["stage"][1] == "identification" and "@scope" not in moved.changes
    assert (own.actor_id, own.on_behalf_of, own.reason) == (rep1.user_id, None, None)
