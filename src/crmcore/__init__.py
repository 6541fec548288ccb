"""crmcore: a CRM framework library.

Public API::

    from crmcore import create_app, hookimpl

    crm = create_app("crm.toml")
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.commit()
"""

from __future__ import annotations

from crmcore.actors import Actor
from crmcore.app import Crm, create_app
from crmcore.errors import (
    ConfigError,
    ConflictError,
    CrmError,
    DatabaseError,
    NotFoundError,
    PermissionDeniedError,
    PluginError,
    ReferenceError,
    TransitionError,
    ValidationError,
)
from crmcore.fields import Field
from crmcore.hookspecs import hookimpl, hookspec
from crmcore.money import Money
from crmcore.plugins import PluginInfo, Setting
from crmcore.records import Record
from crmcore.registry import EntityType
from crmcore.storage.uow import UnitOfWork

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ConfigError",
    "ConflictError",
    "Crm",
    "CrmError",
    "DatabaseError",
    "EntityType",
    "Field",
    "Money",
    "NotFoundError",
    "PermissionDeniedError",
    "PluginError",
    "PluginInfo",
    "Record",
    "ReferenceError",
    "Setting",
    "TransitionError",
    "UnitOfWork",
    "ValidationError",
    "__version__",
    "create_app",
    "hookimpl",
    "hookspec",
]
