"""Documents on any record, versions stored by content hash, text and finding documents."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from crmcore import NotFoundError, PermissionDeniedError, ValidationError
from documents_support import app, users

from crm_documents import documents, samples, search
from crm_documents.text import extract


def test_a_document_on_an_opportunity_with_versions(crm_factory: Any, tmp_path: Path) -> None:
    crm = app(crm_factory, tmp_path)
    (ada,) = users(crm, "ada")
    with crm.unit_of_work(ada) as uow:
        account = uow.create("account", name="Acme")
        deal = uow.create(
            "opportunity", name="Renewal", account_id=account.id, stage="qualification"
        )
        doc = documents.attach(
            uow, deal, "Offer", b"first offer", filename="offer.txt", kind="offer"
        )
        assert (doc.values["record_entity"], doc.values["record_id"]) == ("opportunity", deal.id)
        assert doc.values["opportunity_id"] == deal.id and doc.values["account_id"] == account.id
        assert (doc.values["content_type"], doc.values["size"]) == ("text/plain", 11)
        second = documents.add_version(uow, doc, b"second offer", comment="cheaper")
        again = documents.add_version(uow, doc, b"first offer", filename="offer.txt")
        found = documents.versions(uow, doc)
        assert [v.values["number"] for v in found] == [1, 2, 3]
        assert found[0].values["content_hash"] == again.values["content_hash"]
        assert found[0].values["uploader_id"] == ada.user_id
        assert documents.content(uow, doc)[1] == b"first offer"
        assert documents.content(uow, doc, 2)[1] == b"second offer"
        with pytest.raises(NotFoundError, match="no version 9"):
            documents.content(uow, doc, 9)
        with pytest.raises(PermissionDeniedError, match="does not change"):
            uow.update(second, comment="edited")
        uow.commit()
    stored = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert len(stored) == 2  # three versions, two contents


def test_a_document_on_any_entity_and_its_errors(crm_factory: Any, tmp_path: Path) -> None:
    crm = app(crm_factory, tmp_path)
    (ada,) = users(crm, "ada")
    with crm.unit_of_work(ada) as uow:
        team = uow.create("team", name="North")
        doc = documents.attach(uow, team, "Team charter", b"we ship")
        assert doc.values["record_entity"] == "team" and doc.values["account_id"] is None
        linked = uow.create(
            "document", title="Old style", account_id=uow.create("account", name="A").id
        )
        assert linked.values["record_entity"] == "account"
        with pytest.raises(ValidationError, match="no entity type 'spaceship'"):
            documents.attach(uow, ("spaceship", 1), "x")
        with pytest.raises(ValidationError, match="no account 999 you may read"):
            documents.attach(uow, ("account", 999), "x")
        with pytest.raises(ValidationError, match="ends .* before it starts"):
            documents.attach(uow, team, "x", valid_from="2026-02-01", valid_until="2026-01-01")
        with pytest.raises(ValidationError, match="the content is empty"):
            documents.attach(uow, team, "x", b"")
        with pytest.raises(ValidationError, match="cannot read"):
            documents.attach(uow, team, "x", tmp_path / "missing.pdf")


def test_pdf_and_text_contents_are_searchable(crm_factory: Any, tmp_path: Path) -> None:
    crm = app(crm_factory, tmp_path)
    (ada,) = users(crm, "ada")
    pdf = tmp_path / "contract.pdf"
    pdf.write_bytes(samples.pdf("Maintenance agreement\nQuarterly servicing of label printers"))
    assert "label printers" in (extract(pdf.read_bytes(), "application/pdf") or "")
    with crm.unit_of_work(ada) as uow:
        account = uow.create("account", name="Acme")
        contract = documents.attach(uow, account, "Acme contract", pdf, kind="contract")
        assert contract.values["content_type"] == "application/pdf"
        report = documents.attach(uow, account, "Visit", b"Replaced the rollers of two printers")
        documents.attach(uow, account, "Photo", b"\x89PNG....", filename="photo.png")
        uow.commit()
    with crm.unit_of_work(ada) as uow:
        assert [h.document.id for h in search.search(uow, "servicing printers")] == [contract.id]
        assert {h.document.id for h in search.search(uow, "printer")} == {contract.id, report.id}
        assert [h.document.id for h in search.search(uow, "print", kind="contract")] == [
            contract.id
        ]
        assert search.search(uow, "acme")[0].document.values["title"] == "Acme contract"
        assert search.search(uow, "") == []
        documents.add_version(uow, report, b"Nothing about rollers any more")
        assert [h.document.id for h in search.search(uow, "printers")] == [contract.id]


def test_finding_documents_by_kind_record_and_dates(crm_factory: Any, tmp_path: Path) -> None:
    crm = app(crm_factory, tmp_path)
    (ada,) = users(crm, "ada")
    with crm.unit_of_work(ada) as uow:
        acme = uow.create("account", name="Acme")
        other = uow.create("account", name="Other")
        early = documents.attach(
            uow,
            acme,
            "Support contract",
            kind="contract",
            valid_from="2026-01-01",
            valid_until="2026-06-30",
            notice_days=30,
        )
        late = documents.attach(
            uow,
            acme,
            "Hosting contract",
            kind="contract",
            valid_from="2026-01-01",
            valid_until="2026-12-31",
            notice_days=90,
        )
        documents.attach(uow, other, "Offer", kind="offer")

        def ids(**where: Any) -> list[int]:
            return [row["id"] for row in documents.find(uow, **where)]

        assert early.values["notice_date"] == dt.date(2026, 5, 31)
        assert late.values["notice_date"] == dt.date(2026, 10, 2)
        assert ids(kind="contract") == [early.id, late.id]
        assert ids(record=acme) == [early.id, late.id]
        assert ids(account_id=acme.id, title="host") == [late.id]
        assert ids(ending_before=dt.date(2026, 7, 1)) == [early.id]
        assert ids(notice_before=dt.date(2026, 11, 1)) == [early.id, late.id]
        assert ids(valid_on=dt.date(2026, 8, 1), kind="contract") == [late.id]
        moved = uow.update(late, notice_days=30)
        assert moved.values["notice_date"] == dt.date(2026, 12, 1)
