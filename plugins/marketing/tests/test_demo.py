"""``crm demo`` tells a marketing chapter when the plugin is enabled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crmcore import create_app, demo


def test_the_demo_has_a_marketing_chapter(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(str(tmp_path / "demo.db"), plugins=["marketing"], echo=lines.append, today=dt.date(2026, 3, 20))
    text = "\n".join(lines)
    assert "\nMarketing\n" in text
    assert "35 sent, 1 opted out" in text and "the local SMTP server received 35 messages" in text
    assert "10 visits planned" in text
    assert "won 'Cobol Works spring licences' (24,000.00 USD)" in text
    assert ("ROI Spring newsletter: reached 35, responded 3, leads 3, converted 1, won 1, revenue 24,000.00 USD, "
            "cost 1,200.00 USD (once), ROI 1900 %") in text
    assert "Software · United States: target 220,000.00 USD, actual 24,000.00 USD, attainment 10.91 %" in text
    assert "offer tasks planned for the owners (orders is not enabled, so no quotes)" in text
    assert "Plan Plan 2026 · segment 'Northeast accounts': target 60,000.00 USD, actual 24,000.00 USD" in text
    app = create_app({"crm": {"database": f"sqlite:///{tmp_path / 'demo.db'}", "plugins": ["marketing"]}})
    with app.unit_of_work() as uow:
        assert uow.query("campaign_touch").where(kind="opt_out").count() == 1
        assert uow.query("contact").where(email_opt_out=True).count() == 2
    app.close()


def test_the_demo_offers_quotes_with_orders_and_slices_the_plan_by_segment_and_owner(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(str(tmp_path / "demo.db"), plugins=["catalog", "orders", "marketing"], echo=lines.append,
             today=dt.date(2026, 3, 20))
    text = "\n".join(lines)
    offer = next(line for line in lines if line.startswith("Offer: 'Northeast spring offer'"))
    assert "draft quotes made through orders" in offer, offer
    assert "Plan Plan 2026 · segment 'Northeast accounts': target 60,000.00 USD" in text
    assert "· owner " in text and "target 50,000.00 USD" in text
