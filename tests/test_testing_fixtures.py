"""The pytest plugin's fixtures that plugin authors use: users with roles and groups, and the
databases the factory builds (kept between tests by the DDL of their tables)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import NotFoundError
from crmcore.security.admin import user_groups, user_roles
from crmcore.testing import CrmFactory

SECURITY = {
    "security": {
        "profiles": {"rep": {"privileges": {"*": ["all"]}}},
        "roles": {"sales_rep": {"profiles": ["rep"]}},
        "groups": {"emea": {}},
        "entities": {"lead": {"sharing": "private"}},
    },
}


def test_make_user_gives_the_user_its_roles_and_groups(crm_factory, make_user):
    crm = crm_factory(settings=SECURITY)
    rep = make_user(crm, "rep1", roles=["sales_rep"], groups=["emea"], email="rep1@example.com")
    other = make_user(crm, "rep2", roles=["sales_rep"])

    with crm.unit_of_work(rep) as uow:
        mine = uow.create("lead", last_name="Lovelace", company="Analytical Engines")
        uow.commit()
    with crm.unit_of_work(other) as uow, pytest.raises(NotFoundError):
        uow.get("lead", mine.id)  # private leads: another rep does not see it
    with crm.unit_of_work() as uow:
        user = uow.get("user", rep.user_id)
        assert (user_roles(uow, user), user_groups(uow, user), user.email) == (["sales_rep"], ["emea"], "rep1@example.com")


def test_make_user_refuses_an_unknown_role(crm_factory, make_user):
    crm = crm_factory(settings=SECURITY)
    with pytest.raises(NotFoundError, match="no_such_role"):
        make_user(crm, "rep1", roles=["no_such_role"])


def test_http_sink_records_calls_acts_once_per_key_and_fails_on_demand(http_sink: Any) -> None:
    import json
    import urllib.error
    import urllib.request

    def post(body: dict[str, Any], key: str | None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
        request = urllib.request.Request(http_sink.url + "hook", json.dumps(body).encode(), headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, None

    http_sink.fail_first = 1
    http_sink.answer = {"state": "accepted"}
    assert post({"n": 1}, "k-1")[0] == 503
    assert post({"n": 1}, "k-1") == (200, {"state": "accepted"})
    assert post({"n": 1}, "k-1")[0] == 200
    assert post({"n": 2}, None)[0] == 200
    assert [c["body"] for c in http_sink.calls] == [{"n": 1}, {"n": 1}, {"n": 1}, {"n": 2}]
    assert http_sink.calls[0]["path"] == "/hook"
    assert http_sink.accepted == {"k-1": {"n": 1}, "": [{"n": 2}]}
    assert http_sink.duplicates == 1


def columns(app: Any, table: str) -> set[str]:
    with app.engine.connect() as connection:
        return {c["name"] for c in sa.inspect(connection).get_columns(table)}


def test_a_database_built_again_for_the_same_tables_is_empty_and_counts_ids_from_one(
    crm_database_url: str, tmp_path_factory: Any, _crm_schema_pool: Any
) -> None:
    for _ in range(3):  # the second and third get what the first left, emptied (or a copy)
        factory = CrmFactory(crm_database_url, tmp_path_factory, _crm_schema_pool)
        try:
            app = factory()
            with app.unit_of_work() as uow:
                assert uow.query("account").count() == 0
                account = uow.create("account", name="Acme")
                uow.commit()
            assert account.id == 1
        finally:
            factory.close()


def test_apps_whose_tables_differ_get_each_their_own_tables(crm_factory: Any) -> None:
    plain = crm_factory()
    coded = crm_factory(custom_fields={"account": {"code": {"type": "string", "unique": True}}})
    plain_again = crm_factory()
    assert "custom_code" in columns(coded, "crm_account")
    assert "custom_code" not in columns(plain, "crm_account")
    assert "custom_code" not in columns(plain_again, "crm_account")
    with coded.engine.connect() as connection:
        uniques = sa.inspect(connection).get_unique_constraints("crm_account")
    assert [u["column_names"] for u in uniques] == [["custom_code"]]


def test_a_new_database_url_gets_its_tables_once_and_keeps_what_its_apps_write(crm_factory: Any) -> None:
    url = crm_factory.database_url(file=True)
    first = crm_factory(database=url)
    with first.unit_of_work() as uow:
        uow.create("account", name="Acme")
        uow.commit()
    second = crm_factory(database=url)  # its tables exist: created again they would be empty
    with second.unit_of_work() as uow:
        assert [a.name for a in uow.query("account").all()] == ["Acme"]
