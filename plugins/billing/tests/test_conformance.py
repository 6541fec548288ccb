"""The billing plugin passes crmcore's conformance check; its migration matches its declarations."""

from __future__ import annotations

from crmcore.testing import check_plugin


def test_plugin_conforms():
    check_plugin("billing")


def test_the_migration_makes_what_the_declarations_describe(crm_factory):
    crm = crm_factory(plugins=["billing"], file=True, create_schema=False)
    steps = crm.upgrade()
    assert "billing: 0001 invoices, instalments and payments" in steps
    assert crm.pending() == []
