"""Deployment settings: read once from ``crm.toml``, a dict or keyword arguments, then frozen.

The file looks like this::

    [crm]
    database = "sqlite:///crm.db"      # default; PostgreSQL: "postgresql+psycopg://..."
    plugins = ["helpdesk"]             # these, plus what they require, plus the default ones
    disabled = ["sales"]               # default plugins left out (essential ones cannot be)
    timezone = "Europe/Paris"          # for datetimes given without an offset
    currency = "EUR"                   # for amounts given without a currency

    [plugins.helpdesk]                 # one table per plugin, checked against its settings
    sla_hours = 8

    [custom_fields.account]            # fields a consultant adds without code
    loyalty = { type = "choice", choices = ["bronze", "silver", "gold"] }

Plugins may own further top-level tables (``PluginInfo.sections``). Every key is checked: an
unknown key or a value of the wrong type is a :class:`~crmcore.errors.ConfigError` naming the
file, the key and the value. ``CRM_PLUGINS`` (comma separated) and ``CRM_DATABASE_URL`` in the
environment override the file.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from typing import Any

import attrs

from crmcore.errors import ConfigError
from crmcore.fields import FIELD_SPEC_KEYS, timezone_named
from crmcore.fields.base import shown
from crmcore.money import CURRENCIES

__all__ = ["DEFAULT_DATABASE", "NUMBER_LIMIT", "Settings", "check_value", "load_settings"]

DEFAULT_DATABASE = "sqlite:///crm.db"

_CRM_KEYS: dict[str, type | tuple[type, ...]] = {
    "database": str,
    "plugins": list,
    "disabled": list,
    "timezone": str,
    "currency": str,
    "echo_sql": bool,
    "busy_timeout": (int, float),
}
#: Seconds a write waits for another transaction's lock before it fails as busy.
DEFAULT_BUSY_TIMEOUT = 30.0
#: The longest busy timeout accepted (a day).
MAX_BUSY_TIMEOUT = 86_400.0
_CORE_SECTIONS = frozenset({"crm", "plugins", "custom_fields"})


@attrs.frozen
class Settings:
    """Validated, frozen settings of one app.

    :ivar database: SQLAlchemy URL.
    :ivar plugins: the names of the plugins the deployment enables (besides the default ones).
    :ivar disabled: the names of default plugins the deployment leaves out; essential plugins
        cannot be (checked when the app starts).
    :ivar plugin_settings: ``{plugin name: {key: value}}`` as written (checked at start-up
        against each plugin's declared settings).
    :ivar custom_fields: ``{entity: {field: spec}}``.
    :ivar sections: further top-level tables, owned by plugins.
    :ivar busy_timeout: seconds a write waits for another transaction's lock (SQLite's busy
        timeout, PostgreSQL's ``lock_timeout``) before it fails with
        :class:`~crmcore.errors.BusyError`.
    :ivar path: the file read, if any (for messages).
    """

    database: str = DEFAULT_DATABASE
    plugins: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    timezone: str = "UTC"
    currency: str = "USD"
    echo_sql: bool = False
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    plugin_settings: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    custom_fields: Mapping[str, Mapping[str, Mapping[str, Any]]] = attrs.field(factory=dict)
    sections: Mapping[str, Any] = attrs.field(factory=dict)
    path: str | None = None

    @property
    def source(self) -> str:
        return self.path or "settings"

    @property
    def open_security(self) -> bool:
        """No ``[security]`` section: the app runs in *open mode*, where every user may do
        everything, unless a plugin declares profiles or sharing rules (the app's own answer is
        ``crm.access.model.open``). Adding a ``[security]`` section, even an empty one, turns
        open mode off; ``crm init`` writes one."""
        return "security" not in self.sections


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {str: "text", int: "a whole number", float: "a number", bool: "true or false", list: "a list", dict: "a table"}
    if isinstance(expected, tuple):
        return " or ".join(names.get(t, t.__name__) for t in expected)
    return names.get(expected, expected.__name__)


#: The largest size a number in the settings may have unless its setting declares a maximum.
NUMBER_LIMIT = 10**9


def check_value(
    value: Any, expected: type | tuple[type, ...], *, key: str, source: str,
    minimum: float | None = None, maximum: float | None = None,
) -> None:
    """Raise :class:`ConfigError` unless *value* is of *expected* type (bool is not an int) and,
    for a number, finite and within *minimum* and *maximum* (by default within
    ±:data:`NUMBER_LIMIT`)."""
    types = expected if isinstance(expected, tuple) else (expected,)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise ConfigError(
            f"{source}: {key} must be {_type_name(expected)}, got {shown(value)}", path=source, key=key
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: {key} must be a finite number, got {value!r}", path=source, key=key)
    low = -NUMBER_LIMIT if minimum is None else minimum
    high = NUMBER_LIMIT if maximum is None else maximum
    if not low <= value <= high:
        raise ConfigError(f"{source}: {key} must be from {_number(low)} to {_number(high)}, got {shown(value)}",
                          path=source, key=key)


def _number(value: float) -> str:
    return f"{value:,}" if abs(value) >= 10**6 else str(value)


def load_settings(
    source: str | os.PathLike[str] | Mapping[str, Any] | Settings | None = None,
    /,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from a ``crm.toml`` path, a dict shaped like the file, or nothing.

    Keyword arguments override keys of the ``[crm]`` table (``database=...``, ``plugins=[...]``)
    or give whole tables (``custom_fields={...}``, ``plugin_settings={...}``).

    :raises ConfigError: naming the file, key and value at fault.
    """
    if isinstance(source, Settings):
        if not overrides:
            return source
        source = _settings_to_dict(source)
    path: str | None = None
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in source.items()}
    else:
        path = os.fspath(source)
        data = _read_toml(path)
    where = path or "settings"
    if not isinstance(data.get("crm", {}), Mapping):
        raise ConfigError(f"{where}: [crm] must be a table, got {data['crm']!r}", path=path, key="crm")
    crm = dict(data.get("crm") or {})
    for key in ("plugin_settings", "custom_fields"):
        if key in overrides:
            data["plugins" if key == "plugin_settings" else key] = overrides.pop(key)
    for key in [k for k, v in overrides.items() if k not in _CRM_KEYS and isinstance(v, Mapping)]:
        data[key] = dict(overrides.pop(key))  # a whole table, such as security={...}
    crm.update(overrides)
    env_plugins = os.environ.get("CRM_PLUGINS")
    if env_plugins is not None:
        crm["plugins"] = [p.strip() for p in env_plugins.split(",") if p.strip()]
    env_db = os.environ.get("CRM_DATABASE_URL")
    if env_db and "database" not in overrides:
        crm["database"] = env_db

    for key, value in crm.items():
        if key not in _CRM_KEYS:
            raise ConfigError(
                f"{where}: unknown key crm.{key} = {value!r}; known keys: {', '.join(sorted(_CRM_KEYS))}",
                path=path, key=f"crm.{key}",
            )
        check_value(value, _CRM_KEYS[key], key=f"crm.{key}", source=where)
    plugins = crm.get("plugins", [])
    for name in plugins:
        check_value(name, str, key="crm.plugins", source=where)
    disabled = crm.get("disabled", [])
    for name in disabled:
        check_value(name, str, key="crm.disabled", source=where)
    timezone = crm.get("timezone", "UTC")
    try:
        timezone_named(timezone)
    except ValueError as exc:
        raise ConfigError(f"{where}: crm.timezone: {exc}", path=path, key="crm.timezone") from None
    currency = crm.get("currency", "USD")
    if currency not in CURRENCIES:
        raise ConfigError(
            f"{where}: crm.currency must be an ISO 4217 code such as 'EUR', got {currency!r}",
            path=path, key="crm.currency",
        )

    busy_timeout = float(crm.get("busy_timeout", DEFAULT_BUSY_TIMEOUT))
    if not 0 <= busy_timeout <= MAX_BUSY_TIMEOUT:  # nan fails both comparisons
        raise ConfigError(
            f"{where}: crm.busy_timeout must be a number of seconds from 0 to {MAX_BUSY_TIMEOUT:,.0f}, "
            f"got {crm['busy_timeout']!r}", path=path, key="crm.busy_timeout",
        )

    plugin_settings = data.get("plugins", {})
    if not isinstance(plugin_settings, Mapping):
        raise ConfigError(f"{where}: [plugins] must hold one table per plugin, got {plugin_settings!r}", path=path, key="plugins")
    for name, table in plugin_settings.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: [plugins.{name}] must be a table, got {table!r}", path=path, key=f"plugins.{name}")

    custom_fields = data.get("custom_fields", {})
    _check_custom_fields(custom_fields, where=where, path=path)

    sections = {k: v for k, v in data.items() if k not in _CORE_SECTIONS}
    return Settings(
        database=crm.get("database", DEFAULT_DATABASE),
        plugins=tuple(plugins),
        disabled=tuple(disabled),
        timezone=timezone,
        currency=currency,
        echo_sql=crm.get("echo_sql", False),
        busy_timeout=busy_timeout,
        plugin_settings={k: dict(v) for k, v in plugin_settings.items()},
        custom_fields={e: {f: dict(s) for f, s in fs.items()} for e, fs in custom_fields.items()},
        sections=sections,
        path=path,
    )


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"settings file {path} not found; run 'crm init' to write one", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: malformed TOML: not UTF-8 text (at line {line})", path=path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        if "at end of document" in message:  # say which line that is
            last = len(text.splitlines()) or 1
            message = message.replace("at end of document", f"at end of document, line {last}")
        raise ConfigError(f"{path}: malformed TOML: {message}", path=path) from None


def _check_custom_fields(custom_fields: Any, *, where: str, path: str | None) -> None:
    if not isinstance(custom_fields, Mapping):
        raise ConfigError(f"{where}: [custom_fields] must hold one table per entity", path=path, key="custom_fields")
    for entity, fields in custom_fields.items():
        if not isinstance(fields, Mapping):
            raise ConfigError(f"{where}: [custom_fields.{entity}] must be a table of fields, got {fields!r}", path=path, key=f"custom_fields.{entity}")
        for name, spec in fields.items():
            key = f"custom_fields.{entity}.{name}"
            if not isinstance(spec, Mapping):
                raise ConfigError(f"{where}: {key} must be a table such as {{ type = \"string\" }}, got {spec!r}", path=path, key=key)
            for skey, svalue in spec.items():
                if skey not in FIELD_SPEC_KEYS:
                    raise ConfigError(
                        f"{where}: unknown key {key}.{skey} = {svalue!r}; known keys: {', '.join(sorted(FIELD_SPEC_KEYS))}",
                        path=path, key=f"{key}.{skey}",
                    )
                check_value(svalue, FIELD_SPEC_KEYS[skey], key=f"{key}.{skey}", source=where)
            if "type" not in spec:
                raise ConfigError(f"{where}: {key} needs a type, such as type = \"string\"", path=path, key=key)


def _settings_to_dict(settings: Settings) -> dict[str, Any]:
    return {
        "crm": {
            "database": settings.database,
            "plugins": list(settings.plugins),
            "disabled": list(settings.disabled),
            "timezone": settings.timezone,
            "currency": settings.currency,
            "echo_sql": settings.echo_sql,
            "busy_timeout": settings.busy_timeout,
        },
        "plugins": {k: dict(v) for k, v in settings.plugin_settings.items()},
        "custom_fields": {e: {f: dict(s) for f, s in fs.items()} for e, fs in settings.custom_fields.items()},
        **settings.sections,
    }


