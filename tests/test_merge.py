"""Merging duplicates: the plan, the merge with its relations and tombstones, the undo, the
merge privilege, and finding the duplicates."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from crmcore import Actor, NotFoundError, PermissionDeniedError
from crmcore.hookspecs import hookimpl
from crmcore.merge import MergeRefusedError, MergeRelation
from crmcore.security import admin

SECURITY = {
    "profiles": {
        "merger": {"privileges": {"*": ["all", "merge"]}, "modify_all": True},
        "sales": {"privileges": {"*": ["all"]}},
    },
    "roles": {"steward": {"profiles": ["merger"]}, "rep": {"profiles": ["sales"]}},
}


@pytest.fixture
def world(crm_factory: Any) -> tuple[Any, dict[str, int]]:
    crm = crm_factory()
    with crm.unit_of_work() as uow:
        a = uow.create("account", name="Acme Ltd", phone="+44 20 7946 0958")
        b = uow.create("account", name="ACME Limited", phone="+44 20-7946-0958", website="https://acme.example")
        c = uow.create("account", name="Acme Ltd.")
        other = uow.create("account", name="Globex")
        contacts = [uow.create("contact", last_name=f"Person {i}", account_id=x.id) for i, x in enumerate((a, b, b, c, other))]
        uow.tag(a, "vip")
        uow.tag(b, "vip", "golf")
        uow.commit()
    return crm, {"a": a.id, "b": b.id, "c": c.id, "other": other.id, **{f"contact{i}": x.id for i, x in enumerate(contacts)}}


def test_the_plan_lists_the_rows_that_would_move_and_writes_nothing(world: Any) -> None:
    crm, ids = world
    with crm.unit_of_work() as uow:
        plan = uow.plan_merge("account", [ids["b"], ids["c"]], into=ids["a"])
        relations = {r.name: r for r in plan.relations}

        assert relations["contact.account_id"].count == 3
        assert sorted(relations["contact.account_id"].moving) == sorted([ids["contact1"], ids["contact2"], ids["contact3"]])
        assert relations["tags"].count == 1 and relations["tags"].merged_count == 1
        assert plan.values["website"] == (None, "https://acme.example")
        assert uow.get("account", ids["b"]).id == ids["b"]


def test_a_merge_repoints_references_unions_tags_and_leaves_tombstones(world: Any) -> None:
    crm, ids = world
    with crm.unit_of_work() as uow:
        result = uow.merge("account", [ids["b"], ids["c"]], into=ids["a"])
        uow.commit()
    with crm.unit_of_work() as uow:
        kept = uow.get("account", ids["a"])
        assert kept.website == "https://acme.example"
        assert uow.get("account", ids["b"]).id == ids["a"]  # the old id resolves to the record kept
        assert {c.id for c in uow.query("account").all()} == {ids["a"], ids["other"]}
        assert uow.query("contact").where(account_id=ids["a"]).count() == 4
        assert uow.tags(kept) == ["golf", "vip"]
        assert [e.action for e in uow.history("account", ids["b"])][-1] == "merged"
    assert result.merge_id >= 1


def test_undo_brings_back_the_records_their_rows_and_their_tags(world: Any) -> None:
    crm, ids = world
    with crm.unit_of_work() as uow:
        merge_id = uow.merge("account", [ids["b"], ids["c"]], into=ids["a"]).merge_id
        uow.commit()
    with crm.unit_of_work() as uow:
        uow.undo_merge(merge_id)
        uow.commit()
    with crm.unit_of_work() as uow:
        b = uow.get("account", ids["b"])
        assert b.name == "ACME Limited" and b.id == ids["b"]
        assert uow.get("account", ids["a"]).website is None
        assert uow.query("contact").where(account_id=ids["b"]).count() == 2
        assert uow.tags(b) == ["golf", "vip"]
        assert uow.tags(uow.get("account", ids["a"])) == ["vip"]
        with pytest.raises(NotFoundError, match="undone already"):
            uow.undo_merge(merge_id)


def test_undo_is_refused_once_a_moved_row_was_written_over(world: Any) -> None:
    crm, ids = world
    with crm.unit_of_work() as uow:
        merge_id = uow.merge("account", [ids["b"]], into=ids["a"]).merge_id
        uow.commit()
    with crm.unit_of_work() as uow:
        uow.update("contact", ids["contact1"], first_name="Changed")
        uow.commit()
    with crm.unit_of_work() as uow, pytest.raises(MergeRefusedError, match=f"contact {ids['contact1']} changed"):
        uow.undo_merge(merge_id)


def test_the_caller_chooses_a_fields_value_by_record_or_strategy(world: Any) -> None:
    crm, ids = world
    with crm.unit_of_work() as uow:
        uow.update("account", ids["a"], description="first")
        uow.update("account", ids["b"], description="second")
        plan = uow.plan_merge("account", [ids["b"]], into=ids["a"], fields={"name": ids["b"], "description": "concatenate"})

        assert plan.values["name"] == ("Acme Ltd", "ACME Limited")
        assert plan.values["description"] == ("first", "first\nsecond")


def test_merging_needs_the_merge_privilege(crm_factory: Any) -> None:
    crm = crm_factory(security=SECURITY)
    with crm.unit_of_work() as uow:
        rep = admin.add_user(uow, "rep", roles=["rep"])
        steward = admin.add_user(uow, "steward", roles=["steward"])
        uow.commit()
    with crm.unit_of_work(Actor(rep.id, "rep")) as uow:
        a, b = uow.create("account", name="A"), uow.create("account", name="B")
        uow.commit()
    with crm.unit_of_work(Actor(rep.id, "rep")) as uow, pytest.raises(PermissionDeniedError, match="may not merge account"):
        uow.merge("account", [b.id], into=a.id)
    with crm.unit_of_work(Actor(steward.id, "steward")) as uow:
        uow.merge("account", [b.id], into=a.id)
        uow.commit()


def test_duplicates_are_found_by_phone_and_fuzzy_name(world: Any) -> None:
    crm, ids = world
    with crm.unit_of_work() as uow:
        groups = uow.find_duplicates("account", min_score=0.8)

    assert [g.ids for g in groups] == [tuple(sorted((ids["a"], ids["b"], ids["c"])))]
    assert "phone" in groups[0].reasons


def test_fuzzy_names_are_matched_without_numpy(crm_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's install has no numpy (an optional part of rapidfuzz); finding duplicates by
    name must not need it."""
    monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy now fails
    crm = crm_factory()
    with crm.unit_of_work() as uow:
        first = uow.create("account", name="Alpha Dynamics Inc.")
        second = uow.create("account", name="Alpha Dynamics")
        uow.create("account", name="Zeta Logistics")
        groups = uow.find_duplicates("account", min_score=0.5)
    assert [g.ids for g in groups] == [tuple(sorted((first.id, second.id)))]
    assert any(reason.startswith("name ") for reason in groups[0].reasons)


class _Refuser:
    @hookimpl
    def crm_merge_relations(self) -> list[MergeRelation]:
        return [MergeRelation(entity="contact", field="account_id", strategy="refuse")]


def test_a_relation_that_refuses_stops_the_merge(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[_Refuser()])
    with crm.unit_of_work() as uow:
        a, b = uow.create("account", name="A"), uow.create("account", name="B")
        uow.create("contact", last_name="Held", account_id=b.id)
        with pytest.raises(MergeRefusedError, match="refuses merges"):
            uow.merge("account", [b.id], into=a.id)
        assert uow.get("account", b.id).name == "B"


def test_the_crm_commands_find_plan_merge_and_undo(cli: Any) -> None:
    for args in (("create", "account", "name=Initech"), ("create", "account", "name=Initech Inc"),
                 ("create", "contact", "last_name=Lumbergh", "account_id=2")):
        assert cli(*args).exit_code == 0

    found = cli("dedupe", "find", "account", "--min-score", "0.7")
    assert found.exit_code == 0 and found.stdout.startswith("account 1 2  score 0.80")
    dry = cli("merge", "account", "1", "2", "--into", "1", "--dry-run")
    assert dry.exit_code == 0 and "contact.account_id (repoint): 1 moving" in dry.stdout
    assert cli("show", "account", "2").exit_code == 0
    done = cli("merge", "account", "1", "2", "--into", "1")
    assert done.exit_code == 0 and "crm merge undo 1" in done.stdout
    assert "Initech" in cli("show", "account", "2").stdout  # the old id shows the record kept
    assert "account 2 into 1" in cli("merge", "list").stdout
    assert cli("merge", "undo", "1").exit_code == 0
    assert "Initech Inc" in cli("show", "account", "2").stdout


def test_phone_numbers_without_a_country_code_are_read_in_the_configured_region(crm_factory: Any) -> None:
    crm = crm_factory(settings={"plugins": {"core": {"phone_region": "GB"}}})
    with crm.unit_of_work() as uow:
        first = uow.create("contact", last_name="Lovelace", phone="020 7946 0958")
        second = uow.create("contact", last_name="Babbage", phone="+44 20 7946 0958")
        groups = uow.find_duplicates("contact", min_score=0.8)

    assert [(g.ids, g.reasons) for g in groups] == [((first.id, second.id), ("phone",))]


def test_a_merge_refuses_fields_that_do_not_exist_and_needs_another_record(world: Any) -> None:
    from crmcore import ValidationError

    crm, ids = world
    with crm.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="unknown field"):
            uow.plan_merge("account", [ids["b"]], into=ids["a"], fields={"colour": ids["b"]})
        with pytest.raises(ValidationError, match="at least one other account"):
            uow.plan_merge("account", [ids["a"]], into=ids["a"])
