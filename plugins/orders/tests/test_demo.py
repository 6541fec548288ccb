"""``crm demo`` tells the quotes-and-orders chapter: the seed's flow on the demo company."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from crmcore import create_app, demo

SETTINGS = """\
[crm]
plugins = ["orders"]

[plugins.orders]
routes = {{ Hardware = "production", Services = "delivery" }}

[outbox.sinks.production]
type = "file"
path = "{root}/production"

[outbox.sinks.delivery]
type = "file"
path = "{root}/delivery"

[outbox.sinks.sales_office_review]
type = "file"
path = "{root}/office"
"""


def test_the_demo_runs_the_seed_flow(tmp_path: Path) -> None:
    settings = tmp_path / "crm.toml"
    settings.write_text(SETTINGS.format(root=tmp_path), encoding="utf-8")
    lines: list[str] = []
    demo.run(str(tmp_path / "demo.db"), settings=str(settings), echo=lines.append, today=dt.date(2026, 3, 20))
    text = "\n".join(lines)
    assert "\nQuotes and orders\n" in text
    assert "reaches rfp_received with 3 catalog lines" in text
    assert "12 x Laptop 14-inch" in text and "price_list_line" in text and "customer_discount)" in text
    assert "the deal moved to quotation_sent" in text and "v2 supersedes v1" in text
    assert "fulfilment requests: delivery -> delivery, production -> production" in text
    assert "the worker delivered 2 requests" in text and "is won at" in text
    dropped = [json.loads(p.read_text()) for p in (tmp_path / "production").glob("*.json")]
    assert len(dropped) == 1
    crm = create_app({"crm": {"database": f"sqlite:///{tmp_path / 'demo.db'}", "plugins": ["orders"]}})
    with crm.unit_of_work() as uow:
        order = uow.query("sales_order").first()
        assert order.state == "confirmed"
        assert uow.get("opportunity", order.opportunity_id).stage == "won"


def test_without_sinks_the_order_stays_a_draft(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(str(tmp_path / "demo.db"), plugins=["orders"], echo=lines.append, today=dt.date(2026, 3, 20))
    text = "\n".join(lines)
    assert "stays a draft: configure the outbox sinks sales_office_review (" in text
