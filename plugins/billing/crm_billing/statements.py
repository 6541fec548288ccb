"""Payments imported from a bank statement CSV file.

Columns (a header row names them, in any order): ``date`` (ISO, ``2026-03-31``), ``amount``
(positive, a dot for decimals), ``currency`` (ISO 4217), ``account`` (the account's id or
exact name), ``reference``, and optionally ``transaction`` (the bank's own id of the line) and
``instalment`` (the id of the instalment the payer named). Every row is checked before
anything is written; an error names the file, the row, the field and the value. A line
imported before (same bank transaction id, or else same date, amount, currency, account and
reference) is skipped, so overlapping statements can be imported again.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ValidationError
from crmcore.money import CURRENCIES, Money

from crm_billing.payments import record_payments

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["REQUIRED_COLUMNS", "StatementImport", "import_statement"]

REQUIRED_COLUMNS = ("date", "amount", "currency", "account", "reference")


@attrs.frozen
class StatementImport:
    """What an import did: the payments made and how many lines were seen before."""

    payments: tuple[Record, ...]
    skipped: int


def _fail(path: Path, row: int, field: str, value: Any, what: str) -> ValidationError:
    return ValidationError({"statement": [f"{path.name}, row {row}, field {field!r}: {value!r} {what}"]})


def import_statement(uow: UnitOfWork, path: str | Path) -> StatementImport:
    """Record and apply the payments of the statement at *path* (all or nothing).

    :raises ValidationError: naming file, row, field and value of the first bad line.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValidationError({"statement": [
                    f"{path.name}: the header lacks column(s) {missing}; it needs {list(REQUIRED_COLUMNS)}"]})
            rows = list(enumerate(reader, start=2))
    except OSError as exc:
        raise ValidationError({"statement": [f"cannot read {str(path)!r}: {exc.strerror}"]}) from exc
    names = sorted({r["account"].strip() for _, r in rows if r.get("account") and not r["account"].strip().isdigit()})
    ids = sorted({int(r["account"]) for _, r in rows if (r.get("account") or "").strip().isdigit()})
    by_name: dict[str, list[int]] = {}
    for record in uow.find_many("account", "name", names, fields=("name",)) if names else []:
        by_name.setdefault(record.name, []).append(record.id)
    known_ids = {r.id for r in uow.find_many("account", "id", ids, fields=("id",))} if ids else set()
    parsed = []
    for number, row in rows:
        parsed.append(_parse(path, number, row, by_name, known_ids))
    keys = [p["statement_key"] for p in parsed]
    seen = {r.values["statement_key"] for r in uow.find_many("payment", "statement_key", keys, fields=("statement_key",))} if keys else set()
    fresh, skipped, taken = [], 0, set(seen)
    for values in parsed:
        if values["statement_key"] in taken:
            skipped += 1
            continue
        taken.add(values["statement_key"])
        fresh.append(values)
    made = record_payments(uow, fresh) if fresh else []
    return StatementImport(tuple(made), skipped)


def _parse(path: Path, number: int, row: dict[str, Any], by_name: dict[str, list[int]], known_ids: set[int]) -> dict[str, Any]:
    text = {k: (v or "").strip() for k, v in row.items() if k is not None}
    try:
        day = dt.date.fromisoformat(text["date"])
    except ValueError:
        raise _fail(path, number, "date", text["date"], "is not a date; write it as 2026-03-31") from None
    try:
        amount = Decimal(text["amount"])
    except InvalidOperation:
        raise _fail(path, number, "amount", text["amount"], "is not an amount; write it as 1250.00") from None
    if not amount.is_finite() or amount <= 0:
        raise _fail(path, number, "amount", text["amount"], "must be above zero (outgoing lines are not payments)")
    currency = text["currency"].upper()
    if currency not in CURRENCIES:
        raise _fail(path, number, "currency", text["currency"], "is not an ISO 4217 currency such as EUR")
    account = text["account"]
    if account.isdigit():
        if int(account) not in known_ids:
            raise _fail(path, number, "account", account, "is no account id you may read")
        account_id = int(account)
    else:
        found = by_name.get(account, [])
        if len(found) != 1:
            what = "names no account you may read" if not found else f"names {len(found)} accounts; give the account's id"
            raise _fail(path, number, "account", account, what)
        account_id = found[0]
    instalments: list[int] = []
    if text.get("instalment"):
        if not text["instalment"].isdigit():
            raise _fail(path, number, "instalment", text["instalment"], "is not an instalment id")
        instalments = [int(text["instalment"])]
    identity = text.get("transaction") or "|".join((day.isoformat(), str(amount), currency, str(account_id), text["reference"]))
    return {"account_id": account_id, "received_on": day, "amount": Money(amount, currency),
            "reference": text["reference"] or None, "source": "statement", "instalment_ids": instalments,
            "statement_key": hashlib.sha256(identity.encode()).hexdigest()[:40]}
