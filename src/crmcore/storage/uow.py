"""The unit of work: one transaction, one actor.

``with crm.unit_of_work(actor) as uow:`` opens a connection and a transaction. Records are
created, read, updated and deleted by entity name and handed out as immutable
:class:`~crmcore.records.Record` values. Leaving the block without :meth:`UnitOfWork.commit`
rolls everything back and drops the queued signals; any exception, in crmcore, in a hook or in
a plugin, rolls the whole unit back. Signals go out only after a successful commit. Each
writing call (create, update, move_many, delete, tag, tag_many, untag) is all or nothing: when
it raises, its own writes are undone and the caller may go on with the unit, on SQLite and
PostgreSQL alike. The statements a move repeats for every record (its UPDATE, the tags rules
add) are compiled once per unit and run straight on the driver; batches (:meth:`UnitOfWork.move_many`,
:meth:`UnitOfWork.tag_many`) write set-based. Record hooks are batch-shaped, called through
pluggy once per batch: a single create, update, delete or move is a batch of one and goes
through the same code (:mod:`crmcore.storage.record_hooks`).

Every row carries a ``version``. An update names the version it read (the record's) and loses
with a :class:`~crmcore.errors.ConflictError` if someone else changed the row in between. On
PostgreSQL a second writer of a row waits for the first one's commit, then conflicts. SQLite
has one writer at a time: a unit that read before another unit committed a write conflicts when
it writes, whatever the records; open a new unit and retry.

Nothing trusts a record handed in by a caller. A record this unit issued (read or wrote, with
every field) holds its row's values at its version, and the write matches that version; any
other record (built by hand, kept from another unit, with fields hidden) is read from its row
first (one read by key on the driver; one per 500 records in a batch). Access, diff, hooks and
audit then use the row. A record the actor may not read is refused exactly like a missing one
(:class:`~crmcore.errors.NotFoundError`, the same message); one read at another version is a
:class:`~crmcore.errors.ConflictError`. Side effects that need more rights than the actor holds
run in :meth:`UnitOfWork.system_scope`, audited as the system's on the actor's behalf.

The unit keeps the transaction and the writes on top of its parts: its state and statement
runners (:mod:`crmcore.storage.uow_driver`), its secured reads and access checks
(:mod:`crmcore.storage.uow_access`), its signal queue (:mod:`crmcore.storage.uow_signals`) and its
set-based work for plugins (:mod:`crmcore.storage.uow_sets`), its merges of duplicates
(:mod:`crmcore.storage.uow_merge`);
the work of its batch moves (:mod:`crmcore.storage.batch`), tags (:mod:`crmcore.storage.tagging`)
and audit trail (:mod:`crmcore.storage.audit`) lives in modules of its own, called through its
methods.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import (
    CrmError,
    ReferenceError,
    TransitionError,
    ValidationError,
)
from crmcore.fields import Reference
from crmcore.records import Record
from crmcore.signals import CREATED, DELETED, UPDATED, RecordEvent
from crmcore.storage import audit as _audit
from crmcore.storage import batch as _batch
from crmcore.storage import record_hooks as _record_hooks
from crmcore.storage import tagging as _tagging
from crmcore.storage import writes_where as _writes_where
from crmcore.storage.audit import AUDIT_COLUMNS, AuditEntry
from crmcore.storage.bulk import BulkInsert
from crmcore.storage.operations import Change, _as_id, _atomic, _Issued, _issued_by, _now
from crmcore.storage.raw import RawConnection
from crmcore.storage.tagging import TagWeight
from crmcore.storage.unmanaged_refs import raise_delete_refusal
from crmcore.storage.uow_merge import MergeWork
from crmcore.storage.uow_sets import SetWork
from crmcore.validation import validate

if TYPE_CHECKING:
    from crmcore.query import Query, Select
    from crmcore.registry import EntityType


__all__ = ["AuditEntry", "Change", "UnitOfWork"]

log = logging.getLogger(__name__)


class UnitOfWork(MergeWork, SetWork):
    """One transaction on behalf of one actor. Create it with :meth:`crmcore.Crm.unit_of_work`."""

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> UnitOfWork:
        self._connection = self.crm.connect()
        self._transaction = self._connection.begin()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if not self._done:
                self.rollback()
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def commit(self) -> None:
        """Write pending audit entries, call ``crm_before_commit``, COMMIT, then send signals.

        :raises PluginError: after the commit, if a signal receiver raised (the data stay
            committed; every receiver still ran).
        """
        connection = self.connection
        try:
            self.flush()
            self._hook.crm_before_commit(uow=self)
            self.flush()
            assert self._transaction is not None
            self._transaction.commit()
        except sa.exc.OperationalError as exc:
            self.rollback()
            raise self._translate(exc) from exc
        except BaseException:
            self.rollback()
            raise
        self._done = True
        del connection
        self._send_signals()

    def rollback(self) -> None:
        """Undo everything and drop the queued signals and audit entries."""
        self._signals.clear()
        self._audit.clear()
        if self._transaction is not None and self._transaction.is_active:
            self._transaction.rollback()
        self._done = True

    def flush(self) -> None:
        """Write the audit entries queued so far (done before every read of the trail)."""
        if self._audit:
            BulkInsert(self.connection, self.crm.core_tables["audit"], AUDIT_COLUMNS).execute(self._audit)
            self._audit = []
            self._flushes += 1

    # -- reading -------------------------------------------------------------------------------

    # -- writing -------------------------------------------------------------------------------

    @_atomic
    def create(self, entity: str, data: Mapping[str, Any] | None = None, /, **values: Any) -> Record:
        """Create a record of *entity* from *data* and/or keyword values.

        Ownable records are owned by the acting user unless ``owner_id`` is given.

        :returns: the new record.
        :raises ValidationError: naming each field that does not fit.
        :raises ReferenceError: when a reference names a missing record.
        """
        etype = self.registry.entity(entity)
        given = {**(data or {}), **values}
        self.require(entity, "create")
        self._check_writable(etype, given)
        parsed = self._prepare_create(etype, [validate(etype, given)])[0]
        self._check_references(etype, parsed)
        now = _now()
        system = {"version": 1, "created_at": now, "updated_at": now, "created_by": self.actor.user_id, "updated_by": self.actor.user_id}
        row = {**self._to_row(etype, parsed), **system}
        table = self.registry.table(entity)
        key = self._insert(etype, table, row).inserted_primary_key
        assert key is not None  # an INSERT of one row always has its key
        record_id = key[0]
        values_out = {"id": record_id, **system}
        for field in etype.fields:
            values_out[field.name] = parsed.get(field.name)
        record = _Issued.of(entity, values_out, self._origin)
        self._created(etype, [record])
        self._security_changed(entity)
        return self._visible(record)

    # The steps of a create, shared with the batch writes (the bulk import, the lead
    # conversion), which run them once per batch around their batched INSERT: validate ->
    # _prepare_create -> reference check -> INSERT -> _created (audit, changes, after hooks) ->
    # record-created signals.
    def _prepare_create(self, etype: EntityType, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Default the owner of each of *items* (validated values of new records) to the acting
        user, then run the ``crm_before_create`` hooks once for the batch and merge (and
        validate) their changes into the items, which are returned."""
        if etype.ownable and self.actor.user_id is not None:
            for parsed in items:
                if parsed.get("owner_id") is None:
                    parsed["owner_id"] = self.actor.user_id
        _record_hooks.before_create(self, etype, items)
        return items

    def _created(self, etype: EntityType, records: list[Record], *, announce: bool = True) -> None:
        """Record the changes and audit entries of the new *records*, queue their
        ``record-created`` (unless the caller announces in bulk) and run the
        ``crm_after_create`` hooks once for the batch."""
        if len(records) == 1:
            self._after_write("created", etype, records[0], None, {}, announce=announce)
        else:  # what _after_write does for each, in one pass; the events made only if anyone listens
            entity, actor = etype.name, self.actor
            self.changes.extend([Change("created", entity, record.id) for record in records])
            if etype.auditable:
                actor_id = actor.user_id
                self._audit.extend([(record.values.get("updated_at") or _now(), actor_id, entity, record.id, "created", text)
                                    for record, text in zip(records, _audit.created_texts(self, etype, records), strict=True)])
                if len(self._audit) >= 5000:
                    self.flush()
            if announce:
                kept = list(records)
                self.announce_many(CREATED, entity, lambda: (
                    {"event": RecordEvent("created", entity, record, actor, {})} for record in kept
                ))
        _record_hooks.after_create(self, etype, records)

    def _insert(self, etype: EntityType, table: sa.Table, row: dict[str, Any]) -> sa.CursorResult[Any]:
        with self._refusals(etype, row):
            return self.connection.execute(sa.insert(table), row)

    @contextlib.contextmanager
    def _refusals(self, etype: EntityType, row: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Turn the database's refusal of a write of *etype* records into crmcore's errors: a
        broken constraint into a :class:`ValidationError` (naming the unique field and *row*'s
        value when it can), a lock or other operational failure into what :meth:`_translate`
        makes of it."""
        started = time.perf_counter()
        try:
            yield
        except sa.exc.IntegrityError as exc:
            raise self._integrity(etype, exc, row or {}) from exc
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
            raise self._translate(exc, started=started) from exc

    def _integrity(self, etype: EntityType, exc: sa.exc.IntegrityError, row: Mapping[str, Any]) -> CrmError:
        text = str(exc.orig).lower()
        for field in etype.fields:
            if field.unique and field.column.lower() in text:
                return ValidationError(
                    {field.name: [f"{row.get(field.column)!r} is already used by another {etype.name}"]},
                    entity=etype.name,
                )
        return ValidationError(f"the database refused the {etype.name}: {str(exc.orig).splitlines()[0]}", entity=etype.name)

    @_atomic
    def update(
        self, target: Record | str, id: int | None = None, /, data: Mapping[str, Any] | None = None, **changes: Any
    ) -> Record:
        """Update a record: ``uow.update(record, amount=...)`` or ``uow.update("lead", 7, {...})``.

        Given a record, the update is made against the version it carries; given an id, against
        the version read now.

        :returns: the updated record (the same one if nothing changed).
        :raises ConflictError: when the row changed since that version (or vanished).
        """
        if isinstance(target, Record):
            if isinstance(id, Mapping) and data is None:  # uow.update(record, {...})
                id, data = None, id
            if id is not None:
                raise TypeError(f"update(record, ...) takes the changes, not an id; got {id!r}")
            entity, record_id, expected = target.entity, target.id, target.version
        else:
            if id is None:
                raise TypeError("update(entity, id, ...) needs the record's id")
            entity, record_id, expected = target, _as_id(target, id), None
        etype = self.registry.entity(entity)
        given = {**(data or {}), **changes}
        self.require(entity, "update")
        self._check_writable(etype, given)
        parsed = validate(etype, given, partial=True)
        # A record this unit issued holds its row's values at its version: the UPDATE below
        # matches that version, so a row changed or deleted meanwhile is still a conflict, and
        # the read is saved. Any other target (built by hand, from another unit, with fields
        # hidden) is read from the database first: access, diff and audit use the row.
        trusted = isinstance(target, Record) and _issued_by(target, self._origin)
        old = target if trusted and isinstance(target, Record) else self._current(etype, record_id, expected)
        self.check_access(old, "update")
        values = old.values
        diff = {k: v for k, v in parsed.items() if values.get(k) != v}
        if diff:  # a batch of one, through the batch writes' steps
            diff = _record_hooks.before_update(self, etype, [(old, diff)])[0][1]
        if not diff:
            return self._visible(self._current(etype, record_id, expected) if trusted else old)
        return self._visible(_batch.write_updates(self, etype, [(old, diff)])[0])

    def _current(self, etype: EntityType, record_id: int, expected: int | None) -> Record:
        """The full record read from its row, if the actor may read it; it must be at version
        *expected* (when given).

        :raises NotFoundError: when it does not exist or the actor may not read it (the same
            error, whatever version the caller named).
        :raises ConflictError: when it changed since that version.
        """
        current = self._select_one(etype, record_id, action="read")
        if expected is not None and current.version != expected:
            raise self._stale(etype.name, record_id, expected, current.version)
        return current

    def move(self, target: Record | str, stage_or_id: Any, stage: str | None = None, /, **changes: Any) -> Record:
        """Move a staged record to another stage of its pipeline.

        ``uow.move(record, "rfp_received")`` or ``uow.move("opportunity", 7, "won",
        close_date=today)``: extra changes are applied in the same update. The pipeline's
        transitions, guards, permissions, required and locked fields apply.

        :raises TransitionError: for an illegal move (naming the record, its stage, the target
            and the allowed targets) or a failing guard (naming the condition and the values).
        """
        # the pipeline (and so the stage field) is the row's: a record the unit did not issue
        # is read first (and update then trusts what was read)
        if isinstance(target, Record):
            wanted = stage_or_id
            record = target if _issued_by(target, self._origin) else self._current(
                self.registry.entity(target.entity), target.id, target.version)
        else:
            record, wanted = self._current(self.registry.entity(target), _as_id(target, stage_or_id), None), stage
        field = self._stage_field(record.entity, record.values)
        return self.update(record, data={field: wanted, **changes})

    def _stage_field(self, entity: str, values: Mapping[str, Any]) -> str:
        workflow = self.crm.workflow
        if not workflow.staged(entity):
            raise TransitionError(f"{entity} records have no pipeline, so they do not move between stages")
        return workflow.pipeline_of(entity, values).field

    @_atomic
    def move_many(self, records: Iterable[Record], stage: str) -> list[Record]:
        """Move many records of one entity type to *stage*, set-based.

        Each record gets the checks of :meth:`move` (permissions, transition, guards, required
        and locked fields, approvals) with the same error messages; the first record of the
        batch (in the given order) that may not move is named and the whole batch is refused.
        The hooks get the batch, once: ``crm_before_update``, ``crm_before_move``,
        ``crm_after_update`` and ``crm_after_move``. The UPDATE statements, the reads and
        the audit entries are set-based, versions are checked. A full record (as read, nothing
        hidden from the actor) stands for its row at its version, as in :meth:`update`: the
        UPDATE matches that version, so a row changed or deleted meanwhile is a conflict.

        :returns: the records after the move, in the given order (records already in *stage*
            are returned unchanged).
        :raises TransitionError: for an illegal move or a failing guard, naming the record.
        :raises ConflictError: when a record changed since it was read, or was deleted.
        """
        return _batch.move_many(self, records, stage)

    @_atomic
    def delete(self, target: Record | str, id: int | None = None, /) -> None:
        """Delete a record.

        References to it follow their ``on_delete``: ``restrict`` refuses with a
        :class:`~crmcore.errors.ReferenceError` naming the referencing records, ``cascade``
        deletes them (audited), ``set_null`` clears the reference.
        """
        if isinstance(target, Record):
            entity, record_id, expected = target.entity, target.id, target.version
        else:
            if id is None:
                raise TypeError("delete(entity, id) needs the record's id")
            entity, record_id, expected = target, _as_id(target, id), None
        etype = self.registry.entity(entity)
        self.require(entity, "delete")
        record = self._select_one(etype, record_id, action="read")
        if expected is not None and record.version != expected:
            raise self._stale(entity, record_id, expected, record.version)
        self.check_access(record, "delete")
        self._delete(etype, record)
        self._security_changed(entity)

    def _delete(self, etype: EntityType, record: Record) -> None:
        _record_hooks.before_delete(self, etype, [record])
        blockers: list[str] = []
        for child, field in self.registry.referencing(etype.name):
            assert isinstance(field.type, Reference)
            table = self.registry.table(child.name)
            column = table.c[field.column]
            ids = [r[0] for r in self._execute(sa.select(table.c.id).where(column == record.id).order_by(table.c.id))]
            if child.name == etype.name and record.id in ids:  # a record referring to itself
                ids.remove(record.id)
            if not ids:
                continue
            if field.type.on_delete == "cascade":
                for child_record in self.get_many(child.name, ids):
                    self._delete(child, child_record)
            elif field.type.on_delete == "set_null":
                for child_record in self.get_many(child.name, ids):
                    self._system_update(child, child_record, {field.name: None})
            else:
                shown = ", ".join(str(i) for i in ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
                blockers.append(f"{child.name} {shown} (field {field.name})")
        if blockers:
            raise ReferenceError(
                f"cannot delete {etype.name} {record.id}: referenced by {'; '.join(blockers)}; "
                "delete or reassign those first",
            )
        self._execute(sa.delete(self.crm.core_tables["tagging"]).where(
            self.crm.core_tables["tagging"].c.entity == etype.name,
            self.crm.core_tables["tagging"].c.record_id == record.id,
        ))
        table = self.registry.table(etype.name)
        try:
            result = self._execute(sa.delete(table).where(table.c.id == record.id, table.c.version == record.version))
        except sa.exc.IntegrityError as exc:  # a table the registry does not know refers to it
            raise_delete_refusal(self, etype, [record.id], exc)
        if result.rowcount != 1:
            raise self._stale(etype.name, record.id, record.version, None)
        self._after_write("deleted", etype, record, record, {})
        _record_hooks.after_delete(self, etype, [record])

    def _system_update(self, etype: EntityType, record: Record, changes: dict[str, Any]) -> Record:
        table = self.registry.table(etype.name)
        now = _now()
        row = {**self._to_row(etype, changes), "version": record.version + 1, "updated_at": now, "updated_by": self.actor.user_id}
        self._execute(sa.update(table).where(table.c.id == record.id).values(**row))
        new = _Issued.of(etype.name, record.merged(changes, {"version": record.version + 1, "updated_at": now,
                                                             "updated_by": self.actor.user_id}), self._origin)
        self._after_write("updated", etype, new, record, changes)
        return new

    # -- audit and signals ---------------------------------------------------------------------
    def _after_write(
        self, action: str, etype: EntityType, record: Record, old: Record | None, diff: Mapping[str, Any], *, announce: bool = True,
    ) -> None:
        self.changes.append(Change(action, etype.name, record.id))
        changes: dict[str, tuple[Any, Any]] = {}
        values = record.values
        if action == "updated":
            assert old is not None
            changes = {name: (old.values.get(name), value) for name, value in diff.items()}
            if etype.auditable:  # audited at the record's own time stamp
                self.queue_audit(etype, record.id, action, changes, at=values.get("updated_at"))
        elif etype.auditable:
            # a create lists every value it set (at the record's time stamp), a delete every
            # value the record had: dumped in one pass, the hot path of bulk imports
            get = values.get
            pairs = _audit.dump_plan(self, etype)[1]
            if action == "created":
                dumped = {n: [None, v if d is None else d(v)] for n, d in pairs if (v := get(n)) is not None}
                _audit.queue_entry(self, etype, record.id, action, dumped, get("updated_at"))
            else:
                dumped = {n: [v if d is None else d(v), None] for n, d in pairs if (v := get(n)) is not None}
                _audit.queue_entry(self, etype, record.id, action, dumped, None)
        if announce:
            self.announce({"created": CREATED, "updated": UPDATED, "deleted": DELETED}[action], etype.name,
                          event=RecordEvent(action, etype.name, record, self.actor, changes))

    def queue_audit(
        self, etype: EntityType, record_id: int, action: str, changes: Mapping[str, tuple[Any, Any]],
        *, at: dt.datetime | None = None,
    ) -> None:
        """Queue one audit entry; written in bulk before reads of the trail and at commit.

        :param at: when the change happened (default: now).
        """
        _audit.queue_audit(self, etype, record_id, action, changes, at=at)

    # -- audit trail, tags, queries ----------------------------------------------------------------
    def history(self, entity: str, id: int) -> list[AuditEntry]:
        """The audit trail of one record, oldest first.

        Other actors than the system see the trail of records they may read, without the fields
        hidden from them; the trail of a deleted record is the system actor's.
        """
        return _audit.history(self, entity, id)

    def timeline(self, entity: str, id: int) -> list[AuditEntry]:
        """The history of a record and of the records around it, oldest first.

        Besides the record's own entries, the timeline holds those of every record that refers
        to it (an account's contacts, leads, opportunities, activities, notes, documents, and
        the fields plugins add) and of the records that refer to those (the activities of the
        account's contacts): the 360-degree view, derived from the registry's references.
        """
        return _audit.timeline(self, entity, id)

    @_atomic
    def tag(self, record: Record, *names: str, private: bool | None = None) -> None:
        """Tag an ownable record with *names*, creating tags that do not exist yet.

        Names are parsed like the tag's ``name`` field (surrounding space goes). A shared
        tagging (needs update access to the record) is seen by every reader of the record and
        audited, the entry listing the tags actually added; a private one (read access is
        enough) is seen by the user alone and not audited.

        :param private: the user's own tagging; default ``[plugins.core] private_tags``. The
            system actor's taggings are shared.
        """
        _tagging.tag(self, record, *names, private=private)

    @_atomic
    def tag_many(self, records: Iterable[Record], *names: str, private: bool | None = None) -> None:
        """Tag many ownable records of one entity type with *names*, set-based: :meth:`tag`
        for each record, with one read of the tags, one of the records' present taggings and
        one insert per 500 records.

        :raises NotFoundError: when a record does not exist (any more).
        """
        _tagging.tag_many(self, records, *names, private=private)

    @_atomic
    def untag(self, record: Record, *names: str, private: bool | None = None) -> None:
        """Remove tags *names* from *record*: the shared taggings, or with *private* the user's
        own (default as :meth:`tag`); names it does not carry are ignored. Removing shared tags
        is audited, the entry listing the tags actually removed."""
        _tagging.untag(self, record, *names, private=private)

    def tags(self, record: Record) -> list[str]:
        """The names of *record*'s tags the actor sees (shared ones and their own), sorted."""
        return _tagging.tags(self, record)

    def tag_counts(self, entity: str | None = None, top: int | None = None) -> list[tuple[str, int]]:
        """``(tag name, number of tagged records)``, most used first (then by name): the
        records of *entity* (default: every ownable entity type) the actor may read, carrying
        the tag shared or as the actor's own private tag; the *top* most used only."""
        return _tagging.tag_counts(self, entity, top)

    def tag_cloud(self, entity: str | None = None, top: int | None = None) -> list[TagWeight]:
        """The tag cloud: :meth:`tag_counts` as :class:`~crmcore.storage.tagging.TagWeight`
        (name, count, weight 1 to 5 on a logarithmic scale), most used first."""
        return _tagging.tag_cloud(self, entity, top)

    def tagged(self, entity: str, tag: str) -> list[Record]:
        """The records of *entity* the actor may read tagged *tag* (shared or their own); the
        query form is ``uow.query(entity).where(("tags", "=", tag))``."""
        return _tagging.tagged(self, entity, tag)

    def query(self, entity: str) -> Query:
        """A :class:`~crmcore.query.Query` over the records of *entity* the actor may read:
        filters, sorting, keyset pages, counts and aggregates (see :mod:`crmcore.query`).

        :raises NotFoundError: for an unknown entity type.
        """
        from crmcore.query import Query

        return Query.for_entity(self, entity)

    def select(self, entity: str, fields: Sequence[str] = ()) -> Select:
        """A set-based read of *fields* of the records of *entity* the actor may read and of
        the records they reference, along dotted paths (``"account_id.name"``): filters,
        sorting, grouping, aggregates, ``exists()``, ``count()``; ``all()`` gives plain dicts
        keyed by the names given. Every entity touched carries its read predicate (a
        referenced record the actor may not read reads as missing: its fields ``None``) and
        its hidden fields are refused (see :mod:`crmcore.query.select`).

        :param fields: fields or dotted paths; default ``id`` and every field the actor sees.
        :returns: a :class:`~crmcore.query.Select`.
        :raises NotFoundError: for an unknown entity type.
        :raises ValidationError: for an unknown field or a path through a non-reference field.
        :raises PermissionDeniedError: for a field hidden from the actor.
        """
        from crmcore.query import Select

        return Select.for_entity(self, entity, fields)

    @_atomic
    def update_where(self, entity: str, where: Any, /, *, set: Mapping[str, Any]) -> int:  # noqa: A002 - SQL's word
        """Update every record of *entity* matching *where* that the actor may read: set-based,
        with the checks, hooks (batch and per-record forms), version checks, audit and signals
        of :meth:`update` (see :mod:`crmcore.storage.writes_where`). All or nothing.

        :param where: a condition as :meth:`~crmcore.query.Query.where` takes it, a list of
            them, or ``{field: value}`` equalities (``{}``: every record).
        :param set: the changes, ``{field: value}``.
        :returns: the number of records changed (those already holding the values are not).
        :raises PermissionDeniedError: when the actor may not update the entity or a field,
            or may read but not update a matching record (the first in id order is named;
            nothing is changed).
        :raises ValidationError: for a condition or a value that does not fit.
        :raises ConflictError: when a matching record changed meanwhile.
        """
        return _writes_where.update_where(self, entity, where, set)

    @_atomic
    def delete_where(self, entity: str, where: Any, /) -> int:
        """Delete every record of *entity* matching *where* that the actor may read: set-based,
        with the checks, hooks, reference rules, audit and signals of :meth:`delete`. All or
        nothing.

        :param where: as for :meth:`update_where`.
        :returns: the number of records deleted (those a cascade removes too not counted).
        :raises PermissionDeniedError: when the actor may read but not delete a matching
            record (the first in id order is named; nothing is deleted).
        :raises ReferenceError: when a ``restrict`` reference holds a matching record.
        """
        return _writes_where.delete_where(self, entity, where)

    def raw(self, plugin: str) -> RawConnection:
        """The named raw API of *plugin*: runs its SQLAlchemy Core statements on its own
        non-record tables (``<plugin>_...``) in this transaction, and refuses any statement
        touching the table of an entity type (see :mod:`crmcore.storage.raw`). Plugins use it
        instead of :attr:`connection`, which is internal.

        :raises PluginError: when *plugin* is not enabled.
        """
        return RawConnection(self, plugin)

    def __repr__(self) -> str:
        state = "closed" if self._done else "open"
        return f"<UnitOfWork {state} actor={self.actor.username} changes={len(self.changes)}>"
