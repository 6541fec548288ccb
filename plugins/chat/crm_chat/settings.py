"""The chat's settings (``[plugins.chat]``), kept as the app's state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConfigError

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["ChatSettings", "chat_settings"]


@attrs.frozen
class ChatSettings:
    """The checked ``[plugins.chat]`` table."""

    public_room: str = "General"
    max_length: int = 20000

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> ChatSettings:
        """:raises ConfigError: for an empty public room name."""
        name = table["public_room"].strip()
        if not name:
            raise ConfigError(
                "plugins.chat.public_room must name the public room, got an empty text",
                key="plugins.chat.public_room",
            )
        return cls(name, table["max_length"])


def chat_settings(crm: Crm) -> ChatSettings:
    """The chat settings of *crm* (the defaults when the plugin was not configured)."""
    return crm.find_state(ChatSettings) or ChatSettings()
