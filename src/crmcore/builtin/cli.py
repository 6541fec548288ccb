"""The core's own ``crm`` commands, contributed through ``crm_cli_commands`` like a plugin's."""

from __future__ import annotations

from crmcore.plugins import PluginInfo

PLUGIN = PluginInfo(name="core.cli", title="Core commands")
