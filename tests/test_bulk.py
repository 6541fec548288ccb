"""Bulk inserts: every row lands once, in the order given, with its values processed by its
column's type, whatever the number of rows against the rows one SQLite statement takes."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crmcore.storage.bulk import ROWS_PER_STATEMENT, BulkInsert, processed_column


def _audit_rows(count: int) -> list[dict]:
    at = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)
    return [
        {"at": at + dt.timedelta(seconds=n), "actor_id": None, "entity": "bulk", "record_id": n, "action": "updated",
         "changes": {"n": [n, n + 1], "text": f"row {n} ’"}}
        for n in range(count)
    ]


def insert_rows(connection, table, rows: list[dict]) -> None:
    """*rows* (mappings with the same keys) into *table* with one :class:`BulkInsert`."""
    BulkInsert(connection, table, list(rows[0])).execute([tuple(row.values()) for row in rows])


@pytest.mark.parametrize("count", [1, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, 2 * ROWS_PER_STATEMENT + 7])
def test_rows_land_once_in_order_with_their_values(crm, count):
    audit = crm.core_tables["audit"]
    rows = _audit_rows(count)
    with crm.unit_of_work() as uow:
        insert_rows(uow.connection, audit, rows)
        uow.commit()
    with crm.connect() as connection:
        stored = connection.execute(
            sa.select(audit.c.at, audit.c.record_id, audit.c.changes).where(audit.c.entity == "bulk").order_by(audit.c.id)
        ).all()
    assert [(r.at, r.record_id, r.changes) for r in stored] == [(r["at"], r["record_id"], r["changes"]) for r in rows]


def test_a_row_the_database_refuses_raises_its_integrity_error(crm):
    audit = crm.core_tables["audit"]
    rows = _audit_rows(ROWS_PER_STATEMENT + 3)
    rows[ROWS_PER_STATEMENT + 1]["entity"] = None  # NOT NULL
    with crm.unit_of_work() as uow:
        with pytest.raises(sa.exc.IntegrityError):
            insert_rows(uow.connection, audit, rows)
        uow.rollback()
    with crm.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(audit).where(audit.c.entity == "bulk")).scalar_one() == 0


def test_a_statement_stays_within_sqlites_parameter_limit_for_every_table(crm):
    with crm.connect() as connection:
        for table in crm.metadata.sorted_tables:
            insert = BulkInsert(connection, table, [c.name for c in table.columns])
            if insert.copy:  # PostgreSQL copies the rows: no statement per rows
                assert insert.statement.startswith("COPY ")
                continue
            assert 1 <= insert.per_statement <= ROWS_PER_STATEMENT
            assert insert.per_statement * len(table.columns) <= 999, table.name
            assert insert.multi_statement.count("?") == insert.per_statement * len(table.columns)


def test_a_json_document_many_rows_share_is_encoded_once():
    calls = []

    def encode(value):
        calls.append(value)
        return "null" if value is None else ",".join(sorted(value))

    shared, other = {"a": 1}, {"b": 2}
    values = [shared, None, other, shared, "text", shared, None]
    assert processed_column(values, encode, keep_none=True, shared=True) == ["a", None, "b", "a", "e,t,t,x", "a", None]
    assert calls == [shared, other, "text"]  # the shared document once
    assert processed_column([shared, None], encode, keep_none=False, shared=True)[1] == "null"


def test_rows_sharing_a_json_document_each_store_it(crm):
    document = {"steps": [{"kind": "list_price", "text": "’"}], "n": 1}
    audit = crm.core_tables["audit"]
    rows = [{**row, "changes": document} for row in _audit_rows(2 * ROWS_PER_STATEMENT + 1)]
    with crm.unit_of_work() as uow:
        insert_rows(uow.connection, audit, rows)
        uow.commit()
    with crm.connect() as connection:
        stored = connection.execute(sa.select(audit.c.changes).where(audit.c.entity == "bulk")).scalars().all()
    assert stored == [document] * len(rows)
