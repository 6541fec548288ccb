"""The rejects file of an import: the invalid rows, as read, with what is wrong with each.

For a CSV source it is a CSV file with the source's columns plus ``error``, so it can be
corrected and imported again; for JSON sources it holds JSON lines, each the original object
with an ``error`` key.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from typing import IO

from crmcore.errors import ValidationError
from crmcore.transfer.exporter import neutralise
from crmcore.transfer.sources import SourceRow

__all__ = ["RejectsFile"]


class RejectsFile:
    """Writes invalid rows: CSV (original columns plus ``error``) or JSON lines."""

    def __init__(self, path: str, columns: Sequence[str] | None) -> None:
        self.path = path
        self.columns = list(columns) if columns is not None else None
        try:
            self._handle: IO[str] = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise ValidationError(f"cannot write the rejects file {path!r}: {exc.strerror}") from None
        self._csv = None
        if self.columns is not None:
            self._csv = csv.writer(self._handle)
            self._csv.writerow([*self.columns, "error"])

    def write(self, src: SourceRow, error: str) -> None:
        if self._csv is not None:
            cells = list(src.values) if isinstance(src.values, list) else [""] * len(self.columns or ())
            self._csv.writerow([neutralise(str(cell)) for cell in (*cells, error)])
            return
        if isinstance(src.values, dict):
            data = {**src.values, "error": error}
        else:
            data = {"value": src.values, "error": error}
        self._handle.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        self._handle.close()
