"""Import files read as a stream of rows: CSV, a JSON array of objects, JSON lines.

A :class:`Source` never holds the whole file: CSV goes through :mod:`csv` line by line, a JSON
array is decoded one object at a time from a sliding buffer, JSON lines one line at a time.
Text is UTF-8 by default, with or without a byte order mark (a UTF-16 file with a BOM is also
recognised); any other encoding is given explicitly. Bytes that do not decode stop the import
with the file name, the byte offset and the line, and the advice to name the encoding.

A CSV cell that a CSV export neutralised (``'=SUM(A1)``: a ``'`` before a character that
starts a spreadsheet formula) is read without that ``'``
(:func:`~crmcore.transfer.exporter.restore`), so an export imports back unchanged.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, NamedTuple

from crmcore.errors import ValidationError
from crmcore.transfer.exporter import restore

__all__ = ["FORMATS", "Source", "SourceRow", "format_of", "iter_objects", "open_source"]

#: The formats an import reads (and an export writes).
FORMATS = ("csv", "json", "jsonl")

_CHUNK = 1 << 16
_UTF8 = frozenset({"utf-8", "utf8", "utf_8", "u8", "utf-8-sig", "utf_8_sig"})


class SourceRow(NamedTuple):
    """One data row.

    :ivar row: counted from 1 over data rows.
    :ivar line: the file line it starts on.
    :ivar values: the cells of a CSV row, or the object of a JSON row.
    :ivar problem: why the row cannot be read (a JSON line that is not an object), or ``None``.
    """

    row: int
    line: int | None
    values: Any
    problem: str | None = None


def format_of(path: str, given: str | None) -> str:
    """The format *given*, or the one the file name's extension implies (default ``csv``).

    :raises ValidationError: for an unknown format.
    """
    if given is not None:
        fmt = given.lower().lstrip(".")
        if fmt == "ndjson":
            fmt = "jsonl"
        if fmt not in FORMATS:
            raise ValidationError(f"unknown format {given!r}; use one of {', '.join(FORMATS)}")
        return fmt
    extension = os.path.splitext(str(path))[1].lower().lstrip(".")
    if extension in ("jsonl", "ndjson"):
        return "jsonl"
    return "json" if extension == "json" else "csv"


def _check_encoding(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ValidationError(
            f"unknown encoding {encoding!r}; use a codec name such as 'utf-8', 'cp1252' or 'latin-1'"
        ) from None


class Source:
    """An open import file; iterate it for :class:`SourceRow` values, then :meth:`close` it.

    :ivar columns: the header of a CSV file (``None`` for JSON).
    :ivar encoding: the codec in use.
    :ivar total_bytes: the file size, for progress.
    """

    def __init__(self, path: str, fmt: str, *, encoding: str | None = None, delimiter: str = ",") -> None:
        self.path = str(path)
        self.format = fmt
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
            raise ValidationError(f"the CSV delimiter must be one character other than a quote or a line break, "
                                  f"got {delimiter!r}; for example --delimiter ';' (delimiter=';' in Python)")
        self.delimiter = delimiter
        if encoding:
            _check_encoding(encoding)
        try:
            self._binary: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise ValidationError(f"cannot read {self.path!r}: {exc.strerror}; check the path") from None
        self.total_bytes = os.fstat(self._binary.fileno()).st_size
        self.encoding = self._pick_encoding(encoding)
        self._text = io.TextIOWrapper(self._binary, encoding=self.encoding, errors="strict", newline="")  # type: ignore[arg-type]
        self.columns: list[str] | None = None
        self._csv: Any = None
        if fmt == "csv":
            try:
                self._csv = csv.reader(self._text, delimiter=delimiter)
                header = self._next_csv()
                if header is None:
                    raise ValidationError("the file is empty: a CSV import needs a header row naming the columns", source=self.path)
            except BaseException:
                self.close()
                raise
            self.columns = [c.strip() for c in header]

    def _pick_encoding(self, encoding: str | None) -> str:
        start = self._binary.read(4)
        self._binary.seek(0)
        name = _check_encoding(encoding) if encoding else None
        if start.startswith(codecs.BOM_UTF8) and (name is None or name.replace("_", "-") in _UTF8):
            return "utf-8-sig"
        if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and name is None:
            return "utf-16"
        if name is None or name.replace("_", "-") in _UTF8:
            return "utf-8-sig"  # also accepts a BOM, should the detection above have missed one
        return name

    def position(self) -> int:
        """Bytes of the file read so far (for progress)."""
        try:
            return self._binary.tell()
        except (OSError, ValueError):
            return self.total_bytes

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[SourceRow]:
        if self.format == "csv":
            return self._csv_rows()
        if self.format == "jsonl":
            return self._jsonl_rows()
        return self._json_rows()

    # -- decoding ------------------------------------------------------------------------------
    def _lines(self) -> Iterator[str]:
        lines = iter(self._text)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                return
            except UnicodeError:  # UTF-16 without a byte order mark is not a UnicodeDecodeError
                raise self._decode_error() from None
            yield line

    def _read(self, size: int) -> str:
        try:
            return self._text.read(size)
        except UnicodeError:
            raise self._decode_error() from None

    def _decode_error(self) -> ValidationError:
        shown = "UTF-8" if self.encoding == "utf-8-sig" else self.encoding
        try:
            offset, line, bad = _locate_decode_error(self.path, self.encoding)
            where = f"byte {offset} (line {line}) is {bad!r}"
        except UnicodeError as exc:  # no position: "UTF-16 stream does not start with BOM"
            where = str(exc)
        return ValidationError(
            f"not valid {shown}: {where}; if the file "
            "was saved in another encoding, name it with --encoding (encoding= in Python), for "
            "example --encoding cp1252 or --encoding latin-1",
            source=self.path,
        )

    # -- CSV -----------------------------------------------------------------------------------
    def _next_csv(self) -> list[str] | None:
        try:
            return next(self._csv)  # type: ignore[no-any-return]
        except StopIteration:
            return None
        except UnicodeError:
            raise self._decode_error() from None
        except csv.Error as exc:
            raise ValidationError(
                f"line {self._csv.line_num}: cannot read CSV: {exc}; check the quoting of that line",
                source=self.path,
            ) from None

    def _csv_rows(self) -> Iterator[SourceRow]:
        reader = self._csv
        row = 0
        line = reader.line_num
        try:
            for cells in reader:
                start, line = line + 1, reader.line_num
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue  # blank line
                row += 1
                if "'" in "".join(cells):  # rarely: a cell an export neutralised (or a name such as O'Hara)
                    cells = [restore(cell) for cell in cells]
                yield SourceRow(row, start, cells)
        except UnicodeError:
            raise self._decode_error() from None
        except csv.Error as exc:
            raise ValidationError(
                f"line {reader.line_num}: cannot read CSV: {exc}; check the quoting of that line",
                source=self.path,
            ) from None

    # -- JSON lines ----------------------------------------------------------------------------
    def _jsonl_rows(self) -> Iterator[SourceRow]:
        row = 0
        for line_number, text in enumerate(self._lines(), 1):
            if not text.strip():
                continue
            row += 1
            try:
                value = json.loads(text)
            except ValueError as exc:
                yield SourceRow(row, line_number, text.strip(), f"not valid JSON: {exc}")
                continue
            yield _object_row(row, line_number, value)

    # -- a JSON array, one object at a time -----------------------------------------------------
    def _json_rows(self) -> Iterator[SourceRow]:
        decoder = json.JSONDecoder()
        buf = self._read(_CHUNK)
        pos = 0
        eof = not buf
        base_line = 1  # the line of buf[0]
        counted_to, counted_line = 0, 1  # newlines counted up to counted_to

        def line_at(index: int) -> int:
            nonlocal counted_to, counted_line
            if index < counted_to:
                counted_to, counted_line = 0, base_line
            counted_line += buf.count("\n", counted_to, index)
            counted_to = index
            return counted_line

        def refill() -> bool:
            nonlocal buf, pos, eof, base_line, counted_to, counted_line
            chunk = self._read(_CHUNK)
            if not chunk:
                eof = True
                return False
            base_line += buf.count("\n", 0, pos)
            buf = buf[pos:] + chunk
            pos = 0
            counted_to, counted_line = 0, base_line
            return True

        def skip_space() -> str:
            nonlocal pos
            while True:
                pos = _SPACE.match(buf, pos).end()  # type: ignore[union-attr]
                if pos < len(buf):
                    return buf[pos]
                if not refill():
                    return ""

        def fail(expected: str) -> ValidationError:
            found = buf[pos:pos + 20]
            hint = "; for one object per line use --format jsonl" if expected.startswith("'['") else ""
            return ValidationError(
                f"line {line_at(pos)}: expected {expected}, found {found or 'the end of the file'!r}{hint}",
                source=self.path,
            )

        if skip_space() != "[":
            raise fail("'[' starting an array of objects")
        pos += 1
        row = 0
        if skip_space() == "]":
            pos += 1
        else:
            while True:
                skip_space()
                try:
                    value, end = decoder.raw_decode(buf, pos)
                except ValueError as exc:
                    if not eof and refill():
                        continue
                    raise ValidationError(
                        f"line {base_line + getattr(exc, 'lineno', 1) - 1}: not valid JSON: "
                        f"{getattr(exc, 'msg', exc)}",
                        source=self.path,
                    ) from None
                if end >= len(buf) and not eof and refill():
                    continue  # the value may go on in the next chunk (a number): decode again
                row += 1
                yield _object_row(row, line_at(pos), value)
                pos = end
                separator = skip_space()
                if separator == ",":
                    pos += 1
                    continue
                if separator == "]":
                    pos += 1
                    break
                raise fail("',' or ']' after an object")
        if skip_space():
            raise fail("nothing after the closing ']'")


_SPACE = re.compile(r"[ \t\r\n]*")


def _object_row(row: int, line: int, value: Any) -> SourceRow:
    if isinstance(value, dict):
        return SourceRow(row, line, value)
    return SourceRow(row, line, value, f'expected a JSON object such as {{"name": "Acme"}}, got {_brief(value)}')


def _brief(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


def open_source(path: str, fmt: str | None = None, *, encoding: str | None = None, delimiter: str = ",") -> Source:
    """Open *path* for import in format *fmt* (default: from its extension).

    :raises ValidationError: for an unreadable or empty file, an unknown format or encoding.
    """
    return Source(path, format_of(path, fmt), encoding=encoding, delimiter=delimiter)


def _locate_decode_error(path: str, encoding: str) -> tuple[int, int, bytes]:
    """The byte offset, line and bytes of the first undecodable sequence of *path*."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    lines = 1
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                data = pending + chunk
                start = offset - len(pending) + exc.start
                lines += data[: exc.start].count(b"\n")
                return start, lines, bytes(data[exc.start:exc.end])
            if not chunk:
                return offset, lines, b""
            lines += chunk.count(b"\n")
            offset += len(chunk)


def iter_objects(objects: Iterable[Mapping[str, Any]]) -> Iterator[SourceRow]:
    """Python mappings as import rows (for :func:`crmcore.transfer.import_rows`)."""
    for number, values in enumerate(objects, 1):
        if isinstance(values, Mapping):
            yield SourceRow(number, None, dict(values))
        else:
            yield SourceRow(number, None, values, f"expected a mapping of field names to values, got {type(values).__name__}")
