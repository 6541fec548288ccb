"""Quote and order PDFs, read back with pypdf."""

from __future__ import annotations

import io

import pytest
from crmcore.errors import ConfigError
from orders_support import seed, settings
from pypdf import PdfReader

from crm_orders.orders import order_from_quote
from crm_orders.printing import load_layout, render_document
from crm_orders.quotes import quote_from_opportunity, send_quote


def text_of(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_a_quote_and_its_order_print_their_lines_and_totals(crm_factory, tmp_path):
    crm = crm_factory(plugins=["orders"], settings=settings(tmp_path))
    s = seed(crm)
    with crm.unit_of_work() as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id)
        send_quote(uow, quote.id)
        uow.move("quote", quote.id, "accepted")
        order = order_from_quote(uow, quote.id)
        quoted = text_of(render_document(uow, "quote", quote.id))
        ordered = text_of(render_document(uow, "sales_order", order.id))
        uow.commit()
    assert f"Quote Q-{quote.id}" in quoted
    assert "Customer: Acme Metalworks" in quoted
    assert "Lathe L1" in quoted and "Drive belt" in quoted and "Training day" in quoted
    assert "9,500.00" in quoted and "3%" in quoted
    assert "Tax VAT19 19%" in quoted and "Tax VAT7 7%" in quoted
    assert "23,003.94 EUR" in quoted  # the grand total
    assert f"Order confirmation SO-{order.id}" in ordered and f"From quote: {quote.id}" in ordered
    assert "23,003.94 EUR" in ordered


def test_a_deployment_replaces_the_layout(crm_factory, tmp_path):
    layout = tmp_path / "layout.toml"
    layout.write_text(
        '[page]\nsize = "Letter"\n[quote]\nheading = "OFFER $number for $account"\nfooter = ["Prices valid until $valid_until"]\n'
        '[[columns]]\nlabel = "Item"\nkey = "product"\nwidth = 40\n[[columns]]\nlabel = "Amount"\nkey = "total"\nwidth = 40\n'
        '[totals]\ntotal = "TO PAY"\n', encoding="utf-8")
    crm = crm_factory(plugins=["orders"], settings=settings(tmp_path, pdf_layout=str(layout)))
    s = seed(crm)
    with crm.unit_of_work() as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id)
        text = text_of(render_document(uow, "quote", quote.id))
    assert f"OFFER Q-{quote.id} for Acme Metalworks" in text
    assert "LATHE-1" in text and "Item" in text and "Description" not in text
    assert "TO PAY" in text and "Prices valid until" in text


@pytest.mark.parametrize(("content", "message"), [
    ('[page]\nsize = "B7"\n[[columns]]\nkey = "net"\n', "page.size: unknown size 'B7'"),
    ('[[columns]]\nkey = "price"\n', "columns\\[1\\].key: unknown column 'price'"),
    ('[quote]\nheading = "x"\n', "columns: the line table needs at least one column"),
    ("[page", "is not valid TOML"),
])
def test_a_bad_layout_is_refused_naming_the_key(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_layout(path)
