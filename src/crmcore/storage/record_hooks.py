"""The record hooks of the unit of work's writes, one batch at a time.

Every record hook is batch-shaped (``crm_before_create(uow, entity, items)`` and so on): a
single write is a batch of one and goes through the functions below as the batch writes
(:mod:`crmcore.storage.batch`, :mod:`crmcore.storage.writes_where`, the bulk import, the lead
conversion) do. Hooks are called through pluggy's relay only. The changes the ``before`` hooks
return are checked to be one entry per item, merged per record (where two plugins change one
field, the one called first wins) and validated again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crmcore.errors import PluginError
from crmcore.validation import validate

if TYPE_CHECKING:
    from crmcore.records import Record
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["after_create", "after_delete", "after_update", "before_create", "before_delete", "before_update"]


def batch_results(hook: str, results: Sequence[Any], count: int) -> list[Sequence[Any]]:
    """The non-``None`` results of a batch hook, each checked to be a list of *count* entries
    (one per item of the batch), in the order pluggy returned them (the last registered first).

    :raises PluginError: naming the hook, what it returned and what it should return.
    """
    checked: list[Sequence[Any]] = []
    for result in results:
        if result is None:
            continue
        if not isinstance(result, (list, tuple)) or len(result) != count:
            raise PluginError(
                f"hook {hook!r} returned {type(result).__name__} {str(result)[:80]!r}; return None or a list with one "
                f"entry (None or changes) for each of the {count} items",
                hook=hook,
            )
        checked.append(result)
    return checked


def _merged(etype: EntityType, found: Sequence[Any], checked: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    """The validated changes of one item from the entries *found* for it (in pluggy's order:
    merged from the end, so the changes of the first called win), or ``None`` for none. A
    dictionary of changes many items share is validated once (*checked* by its identity)."""
    extra: dict[str, Any] | None = None
    merged = False
    for result in reversed(found):
        if not result:
            continue
        if extra is None:
            extra = result
        else:
            if not merged:
                extra, merged = dict(extra), True
            extra.update(result)
    if extra is None:
        return None
    if merged:
        return validate(etype, extra, partial=True)
    valid = checked.get(id(extra))
    if valid is None:
        valid = checked[id(extra)] = validate(etype, extra, partial=True)
    return valid


def before_create(uow: UnitOfWork, etype: EntityType, items: list[dict[str, Any]]) -> None:
    """Run ``crm_before_create`` over *items* (validated values of new records) and merge the
    validated changes into each of them.

    :raises ValidationError: from a hook, or for changes that do not fit.
    """
    results = uow._hook.crm_before_create(uow=uow, entity=etype.name, items=[dict(values) for values in items])
    batched = batch_results("crm_before_create", results, len(items))
    if not batched:
        return
    checked: dict[int, dict[str, Any]] = {}
    for index, values in enumerate(items):
        valid = _merged(etype, [r[index] for r in batched], checked)
        if valid:
            values.update(valid)


def before_update(uow: UnitOfWork, etype: EntityType, plan: list[tuple[Record, dict[str, Any]]]) -> list[tuple[Record, dict[str, Any]]]:
    """Run ``crm_before_update`` over *plan* (``(old, diff)`` pairs of full records and their
    changes), merging the hooks' changes, validated, into the diffs (a value the record
    already has is dropped, so diffs may end empty). Returns *plan*."""
    items = [(old, dict(diff)) for old, diff in plan]
    batched = batch_results("crm_before_update", uow._hook.crm_before_update(uow=uow, entity=etype.name, items=items), len(plan))
    if not batched:
        return plan
    checked: dict[int, dict[str, Any]] = {}
    for index, (old, diff) in enumerate(plan):  # merged into the plan's own diffs (the hooks got copies)
        valid = _merged(etype, [r[index] for r in batched], checked)
        if valid:
            values = old.values
            for name, value in valid.items():
                if values.get(name) != value:
                    diff[name] = value
                else:
                    diff.pop(name, None)
    return plan


def after_create(uow: UnitOfWork, etype: EntityType, records: list[Record]) -> None:
    """Run ``crm_after_create`` with the new *records*."""
    uow._hook.crm_after_create(uow=uow, entity=etype.name, records=records)


def after_update(uow: UnitOfWork, etype: EntityType, items: Sequence[tuple[Record, Record, dict[str, Any]]]) -> None:
    """Run ``crm_after_update`` with ``(old, new, changes)`` of the updated records."""
    uow._hook.crm_after_update(uow=uow, entity=etype.name, items=list(items))


def before_delete(uow: UnitOfWork, etype: EntityType, records: list[Record]) -> None:
    """Run ``crm_before_delete`` with the records about to be deleted."""
    uow._hook.crm_before_delete(uow=uow, entity=etype.name, records=records)


def after_delete(uow: UnitOfWork, etype: EntityType, records: list[Record]) -> None:
    """Run ``crm_after_delete`` with the deleted records."""
    uow._hook.crm_after_delete(uow=uow, entity=etype.name, records=records)
