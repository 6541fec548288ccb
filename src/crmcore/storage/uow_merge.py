"""The unit of work's part for duplicates: finding them, planning and making merges, and
undoing them. The work lives in :mod:`crmcore.merge`; these methods are its public road."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from crmcore.storage.operations import _atomic

if TYPE_CHECKING:
    from crmcore.merge import DuplicateGroup, MergePlan, MergeResult
    from crmcore.records import Record

__all__ = ["MergeWork"]


class MergeWork:
    """A part of :class:`~crmcore.storage.uow.UnitOfWork` (see the module)."""

    def find_duplicates(self, entity: str, min_score: float = 0.8) -> list[DuplicateGroup]:
        """Groups of probable duplicates among the records of *entity* the actor may read, best
        first, scored 0 to 1 from e-mail, phone, tax id and fuzzy name matches (see
        :mod:`crmcore.merge.matching`).

        :param min_score: the least score of a pair joining a group.
        """
        from crmcore.merge.matching import find_duplicates

        return find_duplicates(self, entity, min_score)  # type: ignore[arg-type]

    def plan_merge(self, entity: str, ids: Sequence[int], *, into: int,
                   fields: Mapping[str, int | str] | None = None) -> MergePlan:
        """The dry run of :meth:`merge`: per relation the rows that would move, be merged away
        or stand in the way, and the values the kept record would take. Writes nothing (see
        :func:`crmcore.merge.plan_merge` for the arguments and errors)."""
        from crmcore.merge.plan import plan_merge

        return plan_merge(self, entity, ids, into=into, fields=fields)  # type: ignore[arg-type]

    @_atomic
    def merge(self, entity: str, ids: Sequence[int], *, into: int,
              fields: Mapping[str, int | str] | None = None) -> MergeResult:
        """Merge the records *ids* of *entity* into the record *into*: every relation follows
        its strategy, the others become tombstones resolving to *into*, a journal makes
        :meth:`undo_merge` possible. Needs the ``merge`` privilege. All or nothing (see
        :func:`crmcore.merge.merge`).

        :param fields: ``{field: record id or strategy}``: where a field's value comes from.
        :returns: a :class:`~crmcore.merge.MergeResult` with the merge's id.
        """
        from crmcore.merge.service import merge

        return merge(self, entity, ids, into=into, fields=fields)  # type: ignore[arg-type]

    @_atomic
    def undo_merge(self, merge_id: int) -> Record:
        """Undo merge *merge_id* while nothing has written over it since: the records merged
        away come back under their ids, every moved row points back (see
        :func:`crmcore.merge.undo`).

        :returns: the record that had been kept.
        """
        from crmcore.merge.service import undo

        return undo(self, merge_id)  # type: ignore[arg-type]
