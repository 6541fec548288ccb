"""``crm documents ...`` through click's ``CliRunner``, on the database under test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from crmcore.cli import CliState, main

from crm_documents import samples


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_PLUGINS", raising=False)
    (tmp_path / "crm.toml").write_text(
        '[crm]\nplugins = ["documents"]\n[plugins.documents]\nstorage_path = "store"\n'
    )


@pytest.fixture
def db(crm_factory: Any, tmp_path: Path) -> str:
    url: str = crm_factory.database_url(file=True)
    app = crm_factory(
        plugins=["documents"],
        database=url,
        settings={"plugins": {"documents": {"storage_path": str(tmp_path / "store")}}},
    )
    with app.unit_of_work() as uow:
        ada = uow.create("user", username="ada")
        uow.create("account", name="Acme", owner_id=ada.id)
        uow.commit()
    return url


def crm(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], obj=CliState(), catch_exceptions=False)


def ok(db: str, *args: str) -> str:
    result = crm(db, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_add_list_search_get_and_versions(db: str, tmp_path: Path) -> None:
    (tmp_path / "contract.pdf").write_bytes(samples.pdf("Printer maintenance agreement"))
    (tmp_path / "v2.txt").write_text("Printer and scanner maintenance agreement, signed")
    out = ok(
        db,
        "--as",
        "ada",
        "documents",
        "add",
        "account",
        "1",
        "Acme contract",
        "contract.pdf",
        "--kind",
        "contract",
        "--valid-until",
        "2026-12-31",
        "--notice-days",
        "90",
    )
    assert "document 1 'Acme contract' attached to account 1" in out
    assert "version 2" in ok(
        db, "--as", "ada", "documents", "add-version", "1", "v2.txt", "--comment", "signed"
    )
    listed = json.loads(ok(db, "--as", "ada", "documents", "list", "--kind", "contract", "--json"))
    assert [(d["title"], d["notice_date"], d["version_count"]) for d in listed] == [
        ("Acme contract", "2026-10-02", 2)
    ]
    assert "Acme contract" in ok(db, "--as", "ada", "documents", "list", "--record", "account:1")
    assert ok(db, "--as", "ada", "documents", "list", "--notice-before", "2026-10-01") == ""
    assert "Acme contract" in ok(db, "--as", "ada", "documents", "search", "scanner")
    versions = json.loads(ok(db, "--as", "ada", "documents", "versions", "1", "--json"))
    assert [(v["number"], v["media_type"]) for v in versions] == [
        (1, "application/pdf"),
        (2, "text/plain"),
    ]
    ok(db, "--as", "ada", "documents", "get", "1", "--version", "1", "--output", "back.pdf")
    assert (tmp_path / "back.pdf").read_bytes() == (tmp_path / "contract.pdf").read_bytes()
    assert "kind: contract" in ok(db, "--as", "ada", "documents", "get", "1")
    refused = crm(db, "--as", "ada", "documents", "add", "account", "9", "Nope")
    assert refused.exit_code != 0 and "no account 9 you may read" in refused.output
