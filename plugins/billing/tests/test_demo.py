"""``crm demo`` tells the billing chapter end to end, e-mailing through a real SMTP server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crmcore import demo

SETTINGS = """\
[crm]
plugins = ["billing"]

[plugins.billing]
smtp = {{ host = "{host}", port = {port} }}
letters_dir = "{root}/letters"

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


def test_the_demo_invoices_duns_and_settles(tmp_path: Path, smtp_server) -> None:
    settings = tmp_path / "crm.toml"
    settings.write_text(SETTINGS.format(root=tmp_path, host=smtp_server.host, port=smtp_server.port), encoding="utf-8")
    lines: list[str] = []
    demo.run(str(tmp_path / "demo.db"), settings=str(settings), echo=lines.append, today=dt.date(2026, 3, 20))
    text = "\n".join(lines)
    assert "\nBilling and dunning\n" in text
    assert "would reach level 1" in text
    runs = [line for line in lines if "dunning run" in line]
    assert "level 1 by email" in runs[0] and "e-mails sent 1" in runs[0]
    assert "level 2 by email" in runs[1] and "e-mails sent 1" in runs[1]
    assert "no notice" in runs[2]
    assert len(smtp_server.messages) == 2
    assert "revenue estimate of" in text


def test_with_the_service_plugin_the_demo_invoices_service_work(tmp_path: Path, smtp_server) -> None:
    settings = tmp_path / "crm.toml"
    text = SETTINGS.format(root=tmp_path, host=smtp_server.host, port=smtp_server.port)
    settings.write_text(text.replace('plugins = ["billing"]', 'plugins = ["billing", "service"]'), encoding="utf-8")
    lines: list[str] = []
    demo.run(str(tmp_path / "demo.db"), settings=str(settings), echo=lines.append, today=dt.date(2026, 3, 20))
    [service] = [line for line in lines if "its billable work became draft invoice" in line]
    assert "posted as INV-2026-" in service and "160.00" in service
