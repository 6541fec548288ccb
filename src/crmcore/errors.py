"""The exceptions crmcore raises on purpose.

Every deliberate error derives from :class:`CrmError`. Messages say what failed, on which value
and what to do next; the values are also kept on attributes so calling code never parses text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "BusyError",
    "ConfigError",
    "ConflictError",
    "CrmError",
    "DatabaseError",
    "NotFoundError",
    "PermissionDeniedError",
    "PluginError",
    "ReferenceError",
    "TransitionError",
    "ValidationError",
    "missing_reference",
]


class CrmError(Exception):
    """Base for every deliberate error."""


class ConfigError(CrmError):
    """Settings are malformed, or name something that does not exist.

    :ivar path: the settings file, when there is one.
    :ivar key: the dotted key at fault, when known.
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.key = key


class PluginError(CrmError):
    """A plugin cannot be loaded, ordered, or raised inside a hook.

    :ivar plugin: the plugin's name, when known.
    :ivar hook: the hook being called, when the error came from one.
    """

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.hook = hook


class DatabaseError(CrmError):
    """The database cannot be reached or used."""


class NotFoundError(CrmError, LookupError):
    """A record, entity type or field does not exist (or is not visible to the actor)."""

    def __init__(self, message: str, *, entity: str | None = None, id: Any = None) -> None:
        super().__init__(message)
        self.entity = entity
        self.id = id


class ValidationError(CrmError, ValueError):
    """Input does not fit the declaration.

    :ivar messages: ``{field: [message, ...]}``, as marshmallow reports them.
    :ivar entity: the entity type being validated.
    :ivar row: the row number of an imported file, when the input came from one.
    :ivar value: the offending value when a single field failed.
    """

    def __init__(
        self,
        messages: Mapping[str, Sequence[str]] | str,
        *,
        entity: str | None = None,
        row: int | None = None,
        source: str | None = None,
    ) -> None:
        if isinstance(messages, str):
            messages = {"_schema": [messages]}
        self.messages: dict[str, list[str]] = {k: list(v) for k, v in messages.items()}
        self.entity = entity
        self.row = row
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.entity:
            where.append(self.entity)
        prefix = ", ".join(where)
        parts = []
        for field, msgs in self.messages.items():
            for msg in msgs:
                parts.append(msg if field == "_schema" else f"{field}: {msg}")
        body = "; ".join(parts)
        return f"{prefix}: {body}" if prefix else body


class ReferenceError(ValidationError):  # noqa: A001 - deliberate, namespaced as crmcore.errors
    """A reference names a record that does not exist, or a delete would orphan references."""


def missing_reference(entity: str, record_id: Any) -> str:
    """The message of a :class:`ReferenceError` for a reference to record *record_id* of
    *entity* that does not exist, or that the actor may not read: the two read alike, so an
    actor learns nothing of records it may not read. A plugin checking a reference itself
    raises ``ReferenceError({field: [missing_reference(entity, record_id)]}, entity=...)``.

    >>> missing_reference("account", 42)
    'no account with id 42; create it first or correct the id'
    """
    return f"no {entity} with id {record_id}; create it first or correct the id"


class PermissionDeniedError(CrmError):
    """The actor may not do this.

    :ivar reasons: the chain of rules behind the decision.
    """

    def __init__(self, message: str, *, reasons: Sequence[str] = (), field: str | None = None) -> None:
        super().__init__(message)
        self.reasons = list(reasons)
        self.field = field


class TransitionError(CrmError):
    """A record cannot move from its stage to the requested one."""


class ConflictError(CrmError):
    """A write lost a race: the record changed (or disappeared) since it was read.

    :ivar entity: the entity type.
    :ivar id: the record id.
    :ivar expected_version: the version the writer had read.
    """

    def __init__(
        self, message: str, *, entity: str | None = None, id: Any = None,
        expected_version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.entity = entity
        self.id = id
        self.expected_version = expected_version


class BusyError(ConflictError):
    """A write waited for another transaction's lock longer than the busy timeout
    (``[crm] busy_timeout``). Nothing changed under the unit of work: the database was busy.
    Retrying later usually succeeds, as for a :class:`ConflictError` (which it is a kind of).

    :ivar timeout: the busy timeout in seconds.
    """

    def __init__(self, message: str, *, timeout: float | None = None, entity: str | None = None, id: Any = None) -> None:
        super().__init__(message, entity=entity, id=id)
        self.timeout = timeout
