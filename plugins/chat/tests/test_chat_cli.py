"""``crm chat ...`` through click's ``CliRunner``, on the database under test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from crmcore.cli import CliState, main


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_PLUGINS", raising=False)
    (tmp_path / "crm.toml").write_text('[crm]\nplugins = ["chat"]\n')


@pytest.fixture
def db(crm_factory: Any) -> str:
    url: str = crm_factory.database_url(file=True)
    app = crm_factory(plugins=["chat"], database=url)
    with app.unit_of_work() as uow:
        for name in ("ada", "bob", "cy"):
            uow.create("user", username=name)
        uow.create("account", name="Acme")
        uow.commit()
    return url


def crm(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], obj=CliState(), catch_exceptions=False)


def ok(db: str, *args: str) -> str:
    result = crm(db, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_post_read_and_list_rooms(db: str) -> None:
    assert "posted message 1 (#1) in General" in ok(
        db, "--as", "ada", "chat", "post", "public", "Hello **all**, see #account:1"
    )
    ok(db, "--as", "ada", "chat", "post", "@bob", "psst", "--mention", "account:1")
    rooms = json.loads(ok(db, "--as", "bob", "chat", "rooms", "--json"))
    assert {(r["name"], r["unread"]) for r in rooms} == {("General", 1), ("ada & bob", 1)}
    read = json.loads(ok(db, "--as", "bob", "chat", "read", "public", "--json"))
    assert [m["body"] for m in read] == ["Hello **all**, see [Acme]"]
    assert read[0]["mentions"] == [{"entity": "account", "id": 1, "label": "Acme"}]
    assert "#1    ada: psst" in ok(db, "--as", "bob", "chat", "read", "@ada", "--since", "0")
    rooms = json.loads(ok(db, "--as", "bob", "chat", "rooms", "--json"))
    assert {r["unread"] for r in rooms} == {0}
    about = json.loads(ok(db, "--as", "cy", "chat", "about", "account", "1", "--json"))
    assert [(m["room"], m["author"]) for m in about] == [("General", "ada")]  # not the pair's
    assert len(json.loads(ok(db, "--as", "bob", "chat", "about", "account", "1", "--json"))) == 2
    assert "General" in ok(db, "--as", "cy", "chat", "rooms")
    assert "ada & bob" not in ok(db, "--as", "cy", "chat", "rooms")


def test_private_rooms_edits_deletes_and_errors(db: str) -> None:
    assert "with 2 members" in ok(db, "--as", "ada", "chat", "create", "Deal desk", "bob")
    ok(db, "--as", "ada", "chat", "post", "Deal desk", "draft")
    ok(db, "--as", "ada", "chat", "edit", "1", "final")
    assert "final" in ok(db, "--as", "bob", "chat", "read", "Deal desk")
    refused = crm(db, "--as", "cy", "chat", "read", "Deal desk")
    assert refused.exit_code != 0 and "no room named 'Deal desk'" in refused.output
    refused = crm(db, "--as", "bob", "chat", "delete", "1")
    assert refused.exit_code != 0 and "only its author" in refused.output
    ok(db, "--as", "ada", "chat", "delete", "1")
    assert "(message deleted)" in ok(db, "--as", "bob", "chat", "read", "Deal desk")
    ok(db, "--as", "bob", "chat", "mode", "Deal desk", "--notify", "mentions", "--mute")
    (room,) = [
        r
        for r in json.loads(ok(db, "--as", "bob", "chat", "rooms", "--json"))
        if r["name"] == "Deal desk"
    ]
    assert (room["notify"], room["muted"]) == ("mentions", True)
