"""vCard 2.1, the version Outlook and Android still export, read and written.

vobject reads 3.0 and 4.0 only: a 2.1 card's quoted-printable values run over several lines
with soft line breaks (a line ending in ``=``), its types are bare parameters
(``TEL;WORK;VOICE``), its charset is a parameter (``CHARSET=UTF-8``) and its binary values
(``PHOTO;ENCODING=BASE64``) end with a blank line. :func:`read_card` reads such a card into
the same component vobject would make of a 3.0 card (``N`` as a :class:`vobject.vcard.Name`,
``ADR`` as a :class:`vobject.vcard.Address`, ``ORG`` as a list, types under ``TYPE``), so one
mapping serves every version. :func:`property_line` writes one property the way 2.1 readers
expect: bare types, and quoted-printable UTF-8 for values that are not plain ASCII on one
line.
"""

from __future__ import annotations

import quopri
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["is_21", "property_line", "read_card"]

#: Properties whose value is binary or another card: not contact fields, left out.
_SKIPPED = frozenset({"PHOTO", "LOGO", "SOUND", "KEY", "AGENT"})
#: Bare parameters that are encodings, not types.
_ENCODINGS = frozenset({"QUOTED-PRINTABLE", "BASE64", "8BIT", "7BIT", "B"})
_VERSION = re.compile(r"^VERSION:\s*2\.1\s*$", re.IGNORECASE | re.MULTILINE)
_SEPARATOR = re.compile(r"(?<!\\);")


def is_21(block: str) -> bool:
    """Whether the card *block* (``BEGIN:VCARD`` … ``END:VCARD``) says ``VERSION:2.1``."""
    return _VERSION.search(block) is not None


def _quoted_printable(head: str) -> bool:
    return "QUOTED-PRINTABLE" in head.upper()


def _logical_lines(block: str) -> list[str]:
    """The card's properties, one per line: folded lines joined, quoted-printable soft line
    breaks removed, the lines of a base64 value joined to its property."""
    lines: list[str] = []
    soft = False  # the previous line was a quoted-printable value ending in a soft break
    binary = False  # inside a base64 value, which ends with a blank line
    for line in block.splitlines():
        if soft and lines:
            lines[-1] = lines[-1][:-1] + line
            soft = line.endswith("=")
            continue
        if binary:
            if line.strip():
                lines[-1] += line.strip()
                continue
            binary = False
            continue
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += line[1:]
            continue
        if not line.strip():
            continue
        lines.append(line)
        head = line.partition(":")[0]
        soft = _quoted_printable(head) and line.endswith("=")
        binary = "BASE64" in head.upper() and "ENCODING" in head.upper()
    return lines


def _parse(line: str) -> tuple[str, dict[str, list[str]], str, str, str]:
    """``(name, params, encoding, charset, value)`` of one property line."""
    head, _, value = line.partition(":")
    name, *raw_params = head.split(";")
    name = name.rpartition(".")[2].strip().upper()  # item1.TEL -> TEL
    params: dict[str, list[str]] = {}
    encoding = charset = ""
    for param in raw_params:
        key, equals, given = param.partition("=")
        key, given = key.strip().upper(), given.strip().strip('"')
        if not equals:
            if key in _ENCODINGS:
                encoding = key
            elif key:
                params.setdefault("TYPE", []).append(key)
        elif key == "ENCODING":
            encoding = given.upper()
        elif key == "CHARSET":
            charset = given
        elif key == "TYPE":
            params.setdefault("TYPE", []).extend(t for t in given.split(",") if t)
        else:
            params.setdefault(key, []).append(given)
    return name, params, encoding, charset, value


def _decode(value: str, encoding: str, charset: str) -> str:
    if encoding != "QUOTED-PRINTABLE":
        return value
    data = quopri.decodestring(value.encode("utf-8"))
    try:
        return data.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return data.decode("cp1252", errors="replace")


def _parts(value: str) -> list[str]:
    return [part.replace("\\;", ";").replace("\r\n", "\n").strip() for part in _SEPARATOR.split(value)]


def read_card(block: str) -> Any:
    """The vobject component of the 2.1 card *block* (see the module docs)."""
    import vobject

    card = vobject.vCard()
    for line in _logical_lines(block):
        name, params, encoding, charset, raw = _parse(line)
        if not name or name in ("BEGIN", "END", "VERSION") or name in _SKIPPED or encoding in ("BASE64", "B"):
            continue
        text = _decode(raw, encoding, charset)
        value: Any
        if name == "N":
            parts = (_parts(text) + [""] * 5)[:5]
            value = vobject.vcard.Name(family=parts[0], given=parts[1], additional=parts[2], prefix=parts[3],
                                       suffix=parts[4])
        elif name == "ADR":
            parts = (_parts(text) + [""] * 7)[:7]
            value = vobject.vcard.Address(box=parts[0], extended=parts[1], street=parts[2], city=parts[3],
                                          region=parts[4], code=parts[5], country=parts[6])
        elif name == "ORG":
            value = _parts(text)
        else:
            value = text.replace("\r\n", "\n").strip()
        added = card.add(name.lower())
        added.value = value
        added.params = params
    return card


def _ascii_line(text: str) -> bool:
    return text.isascii() and "\n" not in text and "\r" not in text


def _soft_breaks(encoded: str, head: int) -> str:
    """Quoted-printable text cut into lines of at most 76 characters with soft line breaks,
    never inside an ``=XX`` escape."""
    lines: list[str] = []
    width = max(20, 75 - head)
    while len(encoded) > width:
        cut = width
        while encoded[cut - 1] == "=" or encoded[cut - 2] == "=":
            cut -= 1
        lines.append(encoded[:cut] + "=")
        encoded = encoded[cut:]
        width = 75
    lines.append(encoded)
    return "\r\n".join(lines)


def property_line(name: str, value: str | Sequence[str], types: Sequence[str] = ()) -> str:
    """One 2.1 property line: bare *types*, a structured value (a sequence) joined with ``;``
    (its parts' own ``;`` escaped), quoted-printable UTF-8 when the value is not plain ASCII on
    one line.

    Example: ``property_line("TEL", "+1 555", ["WORK", "VOICE"])`` is ``TEL;WORK;VOICE:+1 555``.
    """
    text = value if isinstance(value, str) else ";".join(part.replace(";", "\\;") for part in value)
    head = ";".join((name, *types))
    if _ascii_line(text):
        return f"{head}:{text}"
    head += ";CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE"
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    encoded = "".join(chr(b) if 33 <= b <= 126 and b != 61 else f"={b:02X}" for b in data)
    return f"{head}:{_soft_breaks(encoded, len(head) + 1)}"
