"""An order and the invoice made from it keep identical totals (stored and recomputed) for
random lines, taxes, discounts and rounding modes (amounts the money columns hold, so
the document has something to post): both go through the orders plugin's
engine with the order's pricing."""

from __future__ import annotations

from decimal import Decimal as D

from billing_support import settings
from crm_orders.orders import confirm_order
from crm_orders.totals import rounding_for
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from crm_billing.invoices import invoice_from_order, invoice_totals, lines_of, post_invoices

amounts = st.decimals(min_value=1, max_value=100000, places=4, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=1, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
percents = st.decimals(min_value=0, max_value=90, places=2, allow_nan=False, allow_infinity=False)
taxes = st.sampled_from([(None, D(0)), ("std", D(19)), ("red", D(7)), ("low", D("5.5"))])


@st.composite
def orders(draw):
    currency = draw(st.sampled_from(["EUR", "JPY", "CHF"]))
    rounding = rounding_for(currency, mode=draw(st.sampled_from(["line", "global"])),
                            default_method=draw(st.sampled_from(["half_up", "half_even"])))
    lines = []
    for position in range(1, draw(st.integers(min_value=1, max_value=6)) + 1):
        code, rate = draw(taxes)
        lines.append({"position": position, "description": f"line {position}", "quantity": draw(quantities),
                      "unit_price": f"{draw(amounts)} {currency}", "discounts": [str(d) for d in draw(st.lists(percents, max_size=2))],
                      "tax_code": code, "tax_rate": rate})
    return {"currency": currency, "document_discount": draw(st.one_of(st.just(D(0)), percents)),
            "rounding_mode": rounding.mode, "rounding_method": rounding.method, "rounding_places": rounding.places}, lines


@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders())
def test_an_order_and_its_invoice_have_identical_totals(crm_factory, tmp_path, order_and_lines):
    header, lines = order_and_lines
    crm = crm_factory(plugins=["billing"], settings=settings(tmp_path))
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        order = uow.create("sales_order", title="Order", account_id=account.id, state="draft", **header)
        uow.create_many("sales_order_line", [{**line, "sales_order_id": order.id} for line in lines])
        uow.commit()
    with crm.unit_of_work() as uow:
        confirm_order(uow, order.id)
        invoice = invoice_from_order(uow, order.id)
        posted = post_invoices(uow, [invoice.id])[0]
        uow.commit()
    with crm.unit_of_work() as uow:
        order = uow.get("sales_order", order.id)
        posted = uow.get("invoice", posted.id)
        recomputed = invoice_totals(posted.values, lines_of(uow, [posted.id])[posted.id])
    names = ("subtotal", "discount_total", "net_total", "tax_total", "grand_total")
    assert [posted.values[n] for n in names] == [order.values[n] for n in names]
    assert [recomputed.as_fields()[n] for n in names] == [order.values[n] for n in names]
