"""The scheduling plugin follows the rules every crmcore plugin follows."""

from __future__ import annotations

from crmcore.testing import check_plugin


def test_plugin_conforms() -> None:
    check_plugin("scheduling")
