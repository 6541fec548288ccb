"""Text field types: :class:`String`, :class:`Text`, :class:`Email`, :class:`Phone` and
:class:`Url`. None of them accepts a NUL character or a lone surrogate (:func:`~crmcore.fields.base.check_text`).

Import from :mod:`crmcore.fields`, which re-exports these.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, ClassVar

import attrs
import sqlalchemy as sa

from crmcore.fields.base import TEXTUAL, FieldType, FieldValueError, _as_text, _short, check_text

__all__ = ["MAX_LENGTH", "Email", "Phone", "String", "Text", "Url"]

#: The longest a string field may be declared (PostgreSQL's limit for ``VARCHAR(n)``).
MAX_LENGTH = 10_485_760


@attrs.frozen
class String(FieldType):
    """A single line of text up to *max_length* characters."""

    max_length: int = 255
    kind: ClassVar[str] = "string"
    operators: ClassVar[frozenset[str]] = TEXTUAL

    def parse(self, value: Any) -> str:
        text = _as_text(value)
        if text is None:
            raise self._fail(value)
        if len(text) > self.max_length:
            raise FieldValueError(
                f"expected {self.describe()}, got {_short(text)!r} ({len(text)} characters)"
            )
        return text

    def describe(self) -> str:
        return f"text of at most {self.max_length} characters"

    def declaration_problem(self) -> str | None:
        length = self.max_length
        if isinstance(length, bool) or not isinstance(length, int) or not 0 < length <= MAX_LENGTH:
            return f"max_length must be a whole number from 1 to {MAX_LENGTH}, got {length!r}"
        return None

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(self.max_length)


@attrs.frozen
class Text(FieldType):
    """Text of any length, several lines allowed."""

    kind: ClassVar[str] = "text"
    operators: ClassVar[frozenset[str]] = TEXTUAL

    def parse(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._fail(value)
        return (check_text(value) if "\x00" in value or not value.isascii() else value).strip()

    def describe(self) -> str:
        return "text"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Text()


# The WHATWG HTML definition of a valid e-mail address (the grammar browsers apply).
_EMAIL = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$"
)


@attrs.frozen
class Email(FieldType):
    """An e-mail address (WHATWG HTML syntax; the domain needs a dot); domain lower-cased.
    Duplicates are found whatever the case of the whole address (:meth:`dedupe_key`)."""

    kind: ClassVar[str] = "email"
    operators: ClassVar[frozenset[str]] = TEXTUAL

    def parse(self, value: Any) -> str:
        if isinstance(value, str):
            text = (check_text(value) if "\x00" in value or not value.isascii() else value).strip()
            if len(text) <= 254 and _EMAIL.match(text):
                local, _, domain = text.rpartition("@")
                return f"{local}@{domain.lower()}"
        raise self._fail(value)

    def describe(self) -> str:
        return "an e-mail address such as 'ada@example.com'"

    def dedupe_key(self, value: Any) -> Any:
        """The whole address lower-cased: ``Ana.Ferreira@Exemplo.PT`` and
        ``ana.ferreira@exemplo.pt`` are one person's (addresses are ASCII here, so Python's
        and SQL's ``lower`` agree)."""
        return value.lower() if isinstance(value, str) else value

    def dedupe_column(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.lower(column)

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(254)


_PHONE_CHARS = re.compile(r"^\+?[0-9 ()./\-]+(?:\s*(?:x|ext\.?)\s*[0-9]+)?$", re.IGNORECASE)


@attrs.frozen
class Phone(FieldType):
    """A telephone number: digits with the usual separators, optional leading ``+``."""

    kind: ClassVar[str] = "phone"
    operators: ClassVar[frozenset[str]] = TEXTUAL

    def parse(self, value: Any) -> str:
        text = _as_text(value)
        if text and _PHONE_CHARS.match(text) and sum(map(str.isdigit, text)) >= 3:
            return " ".join(text.split())
        raise self._fail(value)

    def describe(self) -> str:
        return "a phone number such as '+44 20 7946 0958'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(40)


@attrs.frozen
class Url(FieldType):
    """An http(s) address; ``example.com`` becomes ``https://example.com``."""

    kind: ClassVar[str] = "url"
    operators: ClassVar[frozenset[str]] = TEXTUAL

    def parse(self, value: Any) -> str:
        if isinstance(value, str):
            text = (check_text(value) if "\x00" in value or not value.isascii() else value).strip()
            if "://" not in text:
                text = "https://" + text
            try:
                parts = urllib.parse.urlsplit(text)
            except ValueError:  # an unbalanced '[' or ']' in the host part (IPv6 brackets)
                raise self._fail(value) from None
            if parts.scheme in ("http", "https") and "." in parts.netloc and " " not in text:
                return text
        raise self._fail(value)

    def describe(self) -> str:
        return "a web address such as 'https://example.com'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(2000)
