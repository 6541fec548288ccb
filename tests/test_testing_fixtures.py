"""The pytest plugin's fixtures that plugin authors use: users with roles and groups."""

from __future__ import annotations

from typing import Any

import pytest

from crmcore import NotFoundError
from crmcore.security.admin import user_groups, user_roles

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
