"""The sales plugin follows the rules every crmcore plugin follows."""

from __future__ import annotations

from crmcore.testing import check_plugin


def test_plugin_conforms() -> None:
    check_plugin("sales")


def test_the_core_declares_the_fields_the_plugin_fills_with_its_codes(crm) -> None:
    """The lead's fields are the core's (same columns with or without the plugin); their
    choices are the plugin's issue codes and temperatures."""
    from crm_sales.settings import ISSUES, TEMPERATURES

    lead = crm.registry.entity("lead")
    assert lead.field("quality_issues").type.choices == tuple(ISSUES)
    assert lead.field("temperature").type.choices == tuple(TEMPERATURES)
    assert {lead.field(name).origin for name in ("temperature", "quality_issues", "checked_at")} == {"core.opportunities"}
    assert crm.registry.entity("account").field("domain").column == "domain"
