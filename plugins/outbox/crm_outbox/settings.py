"""The outbox's settings, checked once at start-up and kept as the app's state
(``crm.state(OutboxSettings)``): ``[plugins.outbox]`` (batch size, lease, attempts, retry
delays) and ``[outbox.sinks.NAME]`` (one table per sink, its ``type`` naming a built-in sink
type, ``file`` or ``http``, or one a plugin adds through ``outbox_sinks``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConfigError

from crm_outbox.sinks import Sink, SinkType, builtin_types

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["OutboxSettings", "outbox_settings", "parse_settings"]


@attrs.frozen
class OutboxSettings:
    """The checked settings: the plugin's table and the sinks built from ``[outbox.sinks]``."""

    batch_size: int = 500
    lease_seconds: float = 300
    max_attempts: int = 8
    retry_delay: float = 30
    retry_delay_max: float = 3600
    sinks: Mapping[str, Sink] = attrs.field(factory=dict)

    def delay(self, attempts: int) -> dt.timedelta:
        """How long a request waits after its *attempts*-th failed attempt:
        ``retry_delay · 2^(attempts-1)``, at most ``retry_delay_max``."""
        exponent = min(max(attempts, 1) - 1, 64)
        return dt.timedelta(seconds=min(self.retry_delay * 2**exponent, self.retry_delay_max))


def parse_settings(
    table: Mapping[str, Any], section: Any, plugin_types: list[Any]
) -> OutboxSettings:
    """Check ``[plugins.outbox]`` (*table*, keys and bounds checked by the plugin manager) and
    the ``[outbox]`` *section*, building each sink with its type.

    :param plugin_types: what the ``outbox_sinks`` hooks returned, as ``(plugin, items)``.
    :raises ConfigError: naming the key at fault.
    """
    if table["retry_delay_max"] < table["retry_delay"]:
        raise ConfigError(
            f"plugins.outbox.retry_delay_max ({table['retry_delay_max']!r}) must not be below "
            f"plugins.outbox.retry_delay ({table['retry_delay']!r})",
            key="plugins.outbox.retry_delay_max",
        )
    types: dict[str, tuple[str, SinkType]] = {t.type: ("outbox", t) for t in builtin_types()}
    ready: dict[str, tuple[str, Sink]] = {}
    for plugin, items in plugin_types:
        for item in items or ():
            _add(plugin, item, types, ready)
    section = {} if section is None else section
    if not isinstance(section, Mapping):
        raise ConfigError(f"[outbox] must be a table, got {section!r}", key="outbox")
    for key in section:
        if key != "sinks":
            raise ConfigError(
                f"outbox.{key}: unknown key {key!r}; [outbox] holds sinks only", key=f"outbox.{key}"
            )
    tables = section.get("sinks", {})
    if not isinstance(tables, Mapping):
        raise ConfigError(
            f"outbox.sinks must be a table of sinks, got {tables!r}", key="outbox.sinks"
        )
    sinks: dict[str, Sink] = {name: sink for name, (_, sink) in ready.items()}
    for name, options in tables.items():
        sinks[name] = _build(name, options, types, ready)
    return OutboxSettings(
        table["batch_size"],
        table["lease_seconds"],
        table["max_attempts"],
        table["retry_delay"],
        table["retry_delay_max"],
        sinks,
    )


def _add(
    plugin: str,
    item: Any,
    types: dict[str, tuple[str, SinkType]],
    ready: dict[str, tuple[str, Sink]],
) -> None:
    if isinstance(item, SinkType):
        if item.type in types:
            raise ConfigError(
                f"sink type {item.type!r} of plugin {plugin!r} is also declared by "
                f"{types[item.type][0]!r}; rename one",
                key="outbox.sinks",
            )
        types[item.type] = (plugin, item)
        return
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not callable(getattr(item, "deliver", None)):
        raise ConfigError(
            f"plugin {plugin!r} returned {item!r} from outbox_sinks: expected a SinkType or a "
            "sink with a name and a deliver(requests) method",
            key="outbox.sinks",
        )
    if name in ready:
        raise ConfigError(
            f"sink {name!r} of plugin {plugin!r} is also declared by "
            f"{ready[name][0]!r}; rename one",
            key="outbox.sinks",
        )
    ready[name] = (plugin, item)


def _build(
    name: str, options: Any, types: dict[str, tuple[str, SinkType]], ready: Mapping[str, Any]
) -> Sink:
    if name in ready:
        raise ConfigError(
            f"outbox.sinks.{name}: plugin {ready[name][0]!r} declares a sink of that name; "
            "name this one differently",
            key=f"outbox.sinks.{name}",
        )
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"outbox.sinks.{name} must be a table with a type, got {options!r}",
            key=f"outbox.sinks.{name}",
        )
    kind = options.get("type")
    if kind not in types:
        raise ConfigError(
            f"outbox.sinks.{name}.type: unknown sink type {kind!r}; choose among "
            f"{', '.join(sorted(types))}",
            key=f"outbox.sinks.{name}.type",
        )
    return types[kind][1].build(name, options)


def outbox_settings(crm: Crm) -> OutboxSettings:
    """The outbox settings of *crm* (the defaults, without sinks, when it was not configured)."""
    return crm.find_state(OutboxSettings) or OutboxSettings()
