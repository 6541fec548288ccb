"""Matching the columns of an import file to the fields of an entity type.

A column matches a field by name or label, ignoring case, spaces and punctuation (``First
Name``, ``first_name`` and ``FIRST-NAME`` all feed ``first_name``), else by one of the field's
declared aliases (``E-mail Address`` feeds ``email``), or as the caller maps it (``--map
"Mail=email"``; ``--map "Notes="`` leaves a column out). ``id`` names the record's id (see
:mod:`crmcore.transfer.importer` for what it does); ``version`` is ignored. Every other column
must match exactly one field: unknown or ambiguous columns are an error that names them and
says how to map them, except the columns of common contact exports
(:mod:`crmcore.transfer.formats`), which are left out and listed. When such a column feeds a
field by name and another by alias (Outlook's ``Title``, a name prefix, and ``Job Title``), the
alias wins and the other is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from crmcore.errors import ValidationError
from crmcore.registry import SYSTEM_FIELD_NAMES
from crmcore.transfer.formats import is_export_column

if TYPE_CHECKING:
    from crmcore.registry import EntityType

__all__ = ["ID", "ColumnPlan", "FieldMatcher", "normalize"]

#: The target of a column holding record ids.
ID = "id"
_IGNORED_SYSTEM = frozenset({"version"})


def normalize(text: str) -> str:
    """Lower-cased letters and digits only: ``"E-mail Address"`` gives ``"emailaddress"``."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


class FieldMatcher:
    """Finds the field a column name or a ``--map`` target means.

    :param entity: the entity type imported.
    """

    def __init__(self, entity: EntityType) -> None:
        self.entity = entity
        self.exact: dict[str, str] = {f.name: f.name for f in entity.fields}
        self.exact[ID] = ID
        loose: dict[str, set[str]] = {}
        for f in entity.fields:
            for key in (f.name, f.label, f.column):
                loose.setdefault(normalize(key), set()).add(f.name)
        loose.setdefault(normalize(ID), set()).add(ID)
        self.loose = loose
        aliases: dict[str, set[str]] = {}
        for f in entity.fields:
            for alias in f.aliases:
                aliases.setdefault(normalize(alias), set()).add(f.name)
        self.aliases = aliases

    def match(self, text: str) -> str | None:
        """The field *text* names (``"id"`` for the id), or ``None``.

        :raises ValidationError: when *text* matches several fields.
        """
        return self.match_how(text)[0]

    def match_how(self, text: str) -> tuple[str | None, bool]:
        """``(field, by_alias)``: the field *text* names by name or label, else by one of the
        fields' aliases (then *by_alias* is true), or ``(None, False)``.

        :raises ValidationError: when *text* matches several fields.
        """
        if text in self.exact:
            return self.exact[text], False
        key = normalize(text)
        found, by_alias = self.loose.get(key, set()), False
        if not found:
            found, by_alias = self.aliases.get(key, set()), True
        if len(found) > 1:
            raise ValidationError(
                f"column {text!r} matches the fields {', '.join(sorted(found))} of {self.entity.name}; "
                f"choose one with --map '{text}=FIELD'"
            )
        return next(iter(found), None), by_alias and bool(found)

    def field_for_map(self, column: str, target: str) -> str:
        """The field a ``--map COLUMN=TARGET`` names.

        :raises ValidationError: for a target that is no field, listing the fields.
        """
        field = self.match(target.strip())
        if field is None:
            raise ValidationError(
                f"--map {column}={target}: {self.entity.name} has no field {target!r}; its fields are: "
                f"id, {', '.join(self.entity.field_names)}"
            )
        return field

    def system_field(self, text: str) -> str | None:
        """The system field (``created_at``...) *text* names, if it names one."""
        key = normalize(text)
        for f in self.entity.all_fields:
            if f.name in SYSTEM_FIELD_NAMES and key in (normalize(f.name), normalize(f.label)):
                return f.name
        return None


@attrs.define
class ColumnPlan:
    """What each column of a file feeds.

    :ivar targets: ``{column: field name}`` (``"id"`` for the id column) of imported columns.
    :ivar ignored: columns left out (mapped to nothing, or ``version``).
    :ivar aliased: ``{column: field}`` of the columns matched by one of the field's aliases.
    """

    targets: dict[str, str]
    ignored: list[str]
    aliased: dict[str, str] = attrs.field(factory=dict)

    @property
    def fields(self) -> set[str]:
        """The fields the file gives values for (the id excluded)."""
        return {f for f in self.targets.values() if f != ID}

    def column_of(self) -> dict[str, str]:
        """``{field: column}``, to name the column of a field in messages."""
        return {f: c for c, f in self.targets.items()}

    @classmethod
    def build(
        cls, matcher: FieldMatcher, columns: Iterable[str], mapping: Mapping[str, str | None], *, source: str,
        every_map_key: bool = True,
    ) -> ColumnPlan:
        """Plan the *columns* of a file (a CSV header, or the keys of JSON objects).

        :param every_map_key: each ``--map`` key must name a column (a CSV header); the keys of
            one JSON object need not include them all.

        :raises ValidationError: naming unknown, ambiguous, doubled or system columns and the
            ``--map`` entries that name no column.
        """
        columns = list(columns)
        targets: dict[str, str] = {}
        ignored: list[str] = []
        problems: list[str] = []
        unknown: list[str] = []
        mapped = _resolve_mapping(columns, mapping, source, strict=every_map_key)
        entity = matcher.entity.name
        aliased: set[str] = set()  # columns matched by an alias
        for column in columns:
            field: str | None
            by_alias = False
            if column in mapped:
                target = mapped[column]
                if target is None:
                    ignored.append(column)
                    continue
                field = matcher.field_for_map(column, target)
            else:
                if not column:
                    problems.append("a column has no name; name it or ignore it with --map '='")
                    continue
                try:
                    field, by_alias = matcher.match_how(column)
                except ValidationError as exc:
                    problems.append(str(exc))
                    continue
                if field is None:
                    system = matcher.system_field(column)
                    if system in _IGNORED_SYSTEM or (system is None and is_export_column(column)):
                        ignored.append(column)
                    elif system is not None:
                        problems.append(
                            f"column {column!r} is {entity}.{system}, which crmcore sets itself; "
                            f"leave it out or ignore it with --map '{column}='"
                        )
                    else:
                        unknown.append(column)
                    continue
            if field in targets.values():
                other = next(c for c, f in targets.items() if f == field)
                if by_alias and other not in mapped and other not in aliased and is_export_column(other):
                    del targets[other]  # Outlook's 'Title' (a name prefix) gives way to 'Job Title'
                    ignored.append(other)
                elif other in aliased and column not in mapped and is_export_column(column):
                    ignored.append(column)
                    continue
                else:
                    problems.append(
                        f"columns {other!r} and {column!r} both feed {entity}.{field}; "
                        f"ignore one with --map '{column}='"
                    )
                    continue
            targets[column] = field
            if by_alias:
                aliased.add(column)
        if unknown:
            names = listed(unknown)
            problems.insert(0, (
                f"unknown column{'s' if len(unknown) > 1 else ''} {names} for {entity} (fields: id, "
                f"{', '.join(matcher.entity.field_names)}); map with --map 'COLUMN=FIELD' "
                "or ignore with --map 'COLUMN='"
            ))
        if problems:
            problems = list(dict.fromkeys(problems))  # 5,000 unnamed columns are one problem
            more = len(problems) - MAX_LISTED
            shown = problems[:MAX_LISTED] + ([f"and {more:,} more problem{'s' if more > 1 else ''} with the columns"] if more > 0 else [])
            raise ValidationError("; ".join(shown), source=source)
        return cls(targets, ignored, {c: targets[c] for c in aliased if c in targets})


#: How many column names or problems a message lists before it counts the rest.
MAX_LISTED = 10


def listed(names: Sequence[str], limit: int = MAX_LISTED) -> str:
    """``'a', 'b', 'c'``: the first *limit* names (each cut to 60 characters), then how many more."""
    shown = ", ".join(repr(name if len(name) <= 60 else name[:59] + "…") for name in names[:limit])
    return shown + (f" and {len(names) - limit:,} more" if len(names) > limit else "")


def _resolve_mapping(
    columns: list[str], mapping: Mapping[str, str | None], source: str, *, strict: bool,
) -> dict[str, str | None]:
    """``--map`` keys matched to the file's columns: exactly, else ignoring case and spaces."""
    resolved: dict[str, str | None] = {}
    by_key: dict[str, list[str]] = {}
    for column in columns:
        by_key.setdefault(normalize(column), []).append(column)
    for key, target in mapping.items():
        target = target.strip() if isinstance(target, str) else None
        if key in columns:
            resolved[key] = target or None
            continue
        candidates = by_key.get(normalize(key), [])
        if not strict and not candidates:
            continue
        if len(candidates) != 1:
            raise ValidationError(f"--map {key}={target or ''}: the file has no column {key!r}; its columns are: {listed(columns)}",
                                  source=source)
        resolved[candidates[0]] = target or None
    return resolved
