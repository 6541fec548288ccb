"""Geographies and segments: the tree, saved filters and static lists, members computed as the
actor who asks, and refused bad input."""

from __future__ import annotations

from typing import Any

import pytest
from crmcore import ValidationError
from marketing_support import office, world

from crm_marketing.geography import Tree, read_tree
from crm_marketing.segments import conditions_of, member_count, members


def test_subtree_and_ancestors_follow_the_tree() -> None:
    tree = Tree({1: None, 2: 1, 3: 2, 4: 1, 5: None})
    assert tree.subtree(1) == {1, 2, 3, 4}
    assert tree.subtree(3) == {3}
    assert tree.ancestors(3) == [3, 2, 1]


def test_roll_up_sums_children_into_parents() -> None:
    tree = Tree({1: None, 2: 1, 3: 2, 4: 1})
    totals = tree.roll_up({1: 1, 2: 10, 3: 100, 4: 1000, None: 5}, 0)
    assert totals == {3: 100, 2: 110, 4: 1000, 1: 1111}


def test_conditions_of_turns_json_lists_into_conditions() -> None:
    assert conditions_of(["industry=Retail", ["employees", ">", 5], {"not": ["name", "=", "X"]}]) == [
        "industry=Retail", ("employees", ">", 5), {"not": ("name", "=", "X")}]
    with pytest.raises(ValidationError, match="is not a condition"):
        conditions_of([42])


def test_a_geography_cannot_move_below_itself(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        geo = world(uow)
        with pytest.raises(ValidationError, match="lies below geography"):
            uow.update(geo["DE"], parent_id=geo["DE-BY-MUC"].id)
        uow.update(geo["DE-HE"], parent_id=geo["FR"].id)  # a legal move
        assert read_tree(uow).subtree(geo["FR"].id) == {
            geo[c].id for c in ("FR", "FR-PAR", "DE-HE", "DE-HE-FRA")}


def test_a_segment_with_a_bad_condition_is_refused_at_commit(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        uow.create("segment", name="Bad", member_entity="account", conditions=["colour=red"])
        with pytest.raises(ValidationError, match="segment 'Bad'.*colour"):
            uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.query("segment").count() == 0
        good = uow.create("segment", name="Good", member_entity="account", conditions=["industry=Retail"])
        uow.commit()
    with crm.unit_of_work() as uow:
        uow.update(good, conditions=[["industry", "between", "x"]])
        with pytest.raises(ValidationError, match="segment 'Good'"):
            uow.commit()


def _accounts(crm: Any, actors: dict[str, Any]) -> dict[str, Any]:
    with crm.unit_of_work() as uow:
        geo = world(uow)
        made = {}
        for name, owner, industry, city in (
            ("Alpha", "rep1", "Retail", "DE-BY-MUC"), ("Beta", "rep1", "Retail", "DE-HE-FRA"),
            ("Gamma", "rep2", "Retail", "DE-BY-MUC"), ("Delta", "rep2", "Banking", "DE-BY"),
            ("Epsilon", "rep2", "Retail", "FR-PAR"),
        ):
            made[name] = uow.create("account", name=name, industry=industry,
                                    geography_id=geo[city].id, owner_id=actors[owner].user_id)
        uow.create("segment", name="Retail in Bavaria", member_entity="account",
                   conditions=["industry=Retail"], geography_id=geo["DE-BY"].id)
        uow.commit()
    return made


def test_filter_segment_members_match_conditions_and_geography(crm_factory: Any) -> None:
    crm, actors = office(crm_factory)
    made = _accounts(crm, actors)
    with crm.unit_of_work(actors["boss"]) as uow:
        found = [m["id"] for m in members(uow, "Retail in Bavaria")]
    assert found == [made["Alpha"].id, made["Gamma"].id]


def test_members_are_those_the_actor_may_read(crm_factory: Any) -> None:
    crm, actors = office(crm_factory)
    made = _accounts(crm, actors)
    with crm.unit_of_work(actors["rep1"]) as uow:
        assert [m["id"] for m in members(uow, "Retail in Bavaria")] == [made["Alpha"].id]
    with crm.unit_of_work(actors["rep2"]) as uow:
        assert [m["id"] for m in members(uow, "Retail in Bavaria")] == [made["Gamma"].id]


def test_static_segment_lists_records_and_contacts_reach_their_account_geography(
    crm_factory: Any,
) -> None:
    crm, actors = office(crm_factory)
    made = _accounts(crm, actors)
    with crm.unit_of_work() as uow:
        geo = {g.code: g for g in uow.query("geography").all()}
        ada = uow.create("contact", last_name="Lovelace", account_id=made["Alpha"].id,
                         owner_id=actors["rep1"].user_id)
        bob = uow.create("contact", last_name="Babbage", account_id=made["Epsilon"].id,
                         owner_id=actors["rep2"].user_id)
        eve = uow.create("contact", last_name="Eve", account_id=made["Gamma"].id,
                         owner_id=actors["rep2"].user_id)
        listed = uow.create("segment", name="Friends", member_entity="contact", kind="static",
                            geography_id=geo["DE"].id)
        uow.create_many("segment_entry", [{"segment_id": listed.id, "record_id": c.id}
                                          for c in (ada, bob, eve)])
        uow.commit()
    with crm.unit_of_work(actors["boss"]) as uow:
        rows = members(uow, "Friends", roles=True)
    assert [r["id"] for r in rows] == [ada.id, eve.id]  # Paris is not in Germany
    assert rows[0]["account_id"] == made["Alpha"].id and rows[0]["owner_id"] == actors["rep1"].user_id
    with crm.unit_of_work(actors["rep2"]) as uow:
        assert [r["id"] for r in members(uow, listed)] == [eve.id]
        assert member_count(uow, listed) == 1
        assert member_count(uow, "Retail in Bavaria") == 1


def test_member_chunks_page_through_members_in_id_order(crm_factory: Any) -> None:
    from crm_marketing.segments import member_chunks

    crm, actors = office(crm_factory)
    made = _accounts(crm, actors)
    with crm.unit_of_work() as uow:
        uow.create("segment", name="Retail", member_entity="account", conditions=["industry=Retail"])
        uow.commit()
    with crm.unit_of_work(actors["boss"]) as uow:
        chunks = [[m["id"] for m in chunk] for chunk in member_chunks(uow, "Retail", size=2)]
    retail = [made[n].id for n in ("Alpha", "Beta", "Gamma", "Epsilon")]
    assert chunks == [retail[:2], retail[2:]]
    with crm.unit_of_work(actors["rep2"]) as uow:  # the query of one entity and the select agree
        whole = members(uow, "Retail", roles=True)
        assert whole == [row for chunk in member_chunks(uow, "Retail", roles=True, size=1) for row in chunk]
        assert [(r["id"], r["owner_id"], r["account_id"], r["opt_out"]) for r in whole] == [
            (made[n].id, actors["rep2"].user_id, made[n].id, False) for n in ("Gamma", "Epsilon")]
