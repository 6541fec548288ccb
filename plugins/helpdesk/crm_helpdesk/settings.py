"""The help desk's settings (``[plugins.helpdesk]``), checked once and kept as the app's state
(``crm.state(HelpdeskSettings)``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConfigError

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["ESCALATION_ACTIONS", "HelpdeskSettings", "helpdesk_settings"]

#: What a breach may do (``escalation_actions``).
ESCALATION_ACTIONS = ("raise_priority", "reassign", "notify_manager")


@attrs.frozen
class HelpdeskSettings:
    """The checked ``[plugins.helpdesk]`` table (see the plugin's README for each key)."""

    default_queue: str = "General"
    reopen_window_days: float = 7
    sweep_interval_minutes: int = 5
    survey_valid_days: int = 30
    escalation_actions: tuple[str, ...] = ESCALATION_ACTIONS

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> HelpdeskSettings:
        """Check a ``[plugins.helpdesk]`` table whose keys and types the plugin manager checked.

        :raises ConfigError: naming the key and value at fault.
        """
        for key in ("reopen_window_days", "sweep_interval_minutes", "survey_valid_days"):
            value = table[key]
            if value <= 0:
                raise ConfigError(
                    f"plugins.helpdesk.{key} must be a positive number, got {value!r}",
                    key=f"plugins.helpdesk.{key}",
                )
        actions = table["escalation_actions"]
        unknown = [a for a in actions if a not in ESCALATION_ACTIONS]
        if unknown:
            raise ConfigError(
                f"plugins.helpdesk.escalation_actions: unknown action {unknown[0]!r}; "
                f"choose among {', '.join(ESCALATION_ACTIONS)}",
                key="plugins.helpdesk.escalation_actions",
            )
        name = table["default_queue"].strip()
        if not name:
            raise ConfigError(
                "plugins.helpdesk.default_queue must name a queue, got an empty text",
                key="plugins.helpdesk.default_queue",
            )
        return cls(
            name,
            table["reopen_window_days"],
            table["sweep_interval_minutes"],
            table["survey_valid_days"],
            tuple(actions),
        )


def helpdesk_settings(crm: Crm) -> HelpdeskSettings:
    """The help desk settings of *crm* (the defaults when the plugin was not configured)."""
    return crm.find_state(HelpdeskSettings) or HelpdeskSettings()
