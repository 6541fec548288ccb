"""Storage: the unit of work, the raw API for a plugin's own tables, and migration helpers.

The public names are imported on first use (:mod:`crmcore.lazy`): the field types import
:mod:`crmcore.storage.types`, which must not pull in the unit of work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.lazy import lazy_exports

if TYPE_CHECKING:
    from crmcore.storage.audit import AuditEntry as AuditEntry
    from crmcore.storage.migrations import revision as revision
    from crmcore.storage.operations import Change as Change
    from crmcore.storage.raw import RawConnection as RawConnection
    from crmcore.storage.tagging import TagWeight as TagWeight
    from crmcore.storage.types import JSONList as JSONList
    from crmcore.storage.types import ScaledDecimal as ScaledDecimal
    from crmcore.storage.types import UTCDateTime as UTCDateTime
    from crmcore.storage.uow import UnitOfWork as UnitOfWork

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "crmcore.storage.audit": ("AuditEntry",),
    "crmcore.storage.migrations": ("revision",),
    "crmcore.storage.operations": ("Change",),
    "crmcore.storage.raw": ("RawConnection",),
    "crmcore.storage.tagging": ("TagWeight",),
    "crmcore.storage.types": ("JSONList", "ScaledDecimal", "UTCDateTime"),
    "crmcore.storage.uow": ("UnitOfWork",),
})
