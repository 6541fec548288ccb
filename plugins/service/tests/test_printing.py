"""The printable work report."""

from __future__ import annotations

import datetime as dt
import io

from pypdf import PdfReader

from crm_service import printing


def _pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def test_a_text_pdf_reads_back_paged_with_its_title() -> None:
    lines = [f"line {i} (with parentheses) and \\ a backslash" for i in range(130)]
    data = printing.text_pdf(lines, title="Test")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 3
    assert reader.metadata.title == "Test"
    pages = _pages(data)
    assert "line 0 (with parentheses) and \\ a backslash" in pages[0]
    assert "line 59 " in pages[0] and "line 60 " not in pages[0]
    assert "line 129 " in pages[2]


def test_text_outside_latin_1_prints_as_question_marks() -> None:
    data = printing.text_pdf(["Jürgen → Zoë"])
    assert "Jürgen ? Zoë" in _pages(data)[0]


def test_a_work_report_prints_its_lines_coverage_and_sign_off(crm_factory) -> None:
    crm = crm_factory(plugins=["service"])
    with crm.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        uow.create("warranty_term", name="Pump", product="P", months=12, parts_pct=0,
                   travel_pct=0)
        pump = uow.create("installed_unit", serial_number="SN-1", product_code="P",
                          product_name="Pump", account_id=acme.id,
                          install_date=dt.date(2026, 1, 1))
        order = uow.create("service_order", subject="Pump leaks", account_id=acme.id,
                           site_address="Rua XV, 1\nBlumenau")
        uow.create("order_unit", order_id=order.id, unit_id=pump.id)
        report = uow.create("work_report", order_id=order.id, work_date=dt.date(2026, 6, 1),
                            notes="Seal replaced.", signed_by="J. Customer",
                            signed_at=dt.datetime(2026, 6, 1, 15, tzinfo=dt.UTC))
        uow.create("work_line", report_id=report.id, unit_id=pump.id, line_type="labour",
                   quantity="2", description="Repair")
        uow.create("work_line", report_id=report.id, unit_id=pump.id, line_type="parts",
                   quantity="1", unit_price="42.00 EUR", description="Seal")
        uow.commit()
    with crm.unit_of_work() as uow:
        text = printing.work_report_lines(uow, report.id)
        data = printing.work_report_pdf(uow, report.id)
    assert text[0] == f"Work report {report.id} - service order {order.id}"
    assert "Site: Rua XV, 1 Blumenau" in text
    assert "Unit: SN-1 P Pump" in text
    assert "          2.00 x 80.00 EUR = 160.00 EUR; covered 100%; you pay 0.00 EUR" in text
    assert ("Total of the work: 202.00 EUR; covered by warranty or contract: 160.00 EUR; "
            "to pay: 42.00 EUR") in text
    assert "Signed off by J. Customer on 2026-06-01 15:00 UTC" in text
    printed = _pages(data)[0]
    assert "Signed off by J. Customer on 2026-06-01 15:00 UTC" in printed
    assert "to pay: 42.00 EUR" in printed
