"""Permissions: profiles, hierarchical roles, groups, sharing defaults and rules, field access,
and the administration of users, roles and groups.

The model is compiled into one predicate per (actor, entity, action), applied as a SQL
``WHERE`` on every read path and evaluated in memory for single-record checks.

The public names are imported on first use (:mod:`crmcore.lazy`): the predicates stand in the
lowest layer and must not pull in the access service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.lazy import lazy_exports

if TYPE_CHECKING:
    from crmcore.security.access import AccessContext as AccessContext
    from crmcore.security.access import AccessService as AccessService
    from crmcore.security.access import Decision as Decision
    from crmcore.security.access import Grant as Grant
    from crmcore.security.access import Restriction as Restriction
    from crmcore.security.admin import acting_user as acting_user
    from crmcore.security.admin import add_group as add_group
    from crmcore.security.admin import add_group_members as add_group_members
    from crmcore.security.admin import add_user as add_user
    from crmcore.security.admin import assign_roles as assign_roles
    from crmcore.security.admin import explain_access as explain_access
    from crmcore.security.admin import find_by_name as find_by_name
    from crmcore.security.admin import group_members as group_members
    from crmcore.security.admin import remove_roles as remove_roles
    from crmcore.security.admin import resolve_owner as resolve_owner
    from crmcore.security.admin import set_role_parent as set_role_parent
    from crmcore.security.admin import user_groups as user_groups
    from crmcore.security.admin import user_roles as user_roles
    from crmcore.security.model import ACCESS_LEVELS as ACCESS_LEVELS
    from crmcore.security.model import ADMIN_ACTIONS as ADMIN_ACTIONS
    from crmcore.security.model import CORE_ACTIONS as CORE_ACTIONS
    from crmcore.security.model import EXPLAIN_ACTION as EXPLAIN_ACTION
    from crmcore.security.model import FIELD_LEVELS as FIELD_LEVELS
    from crmcore.security.model import KEEP_IDS_ACTION as KEEP_IDS_ACTION
    from crmcore.security.model import OPEN_MODE_NOTICE as OPEN_MODE_NOTICE
    from crmcore.security.model import READ_PROFILE as READ_PROFILE
    from crmcore.security.model import Party as Party
    from crmcore.security.model import Profile as Profile
    from crmcore.security.model import SecurityModel as SecurityModel
    from crmcore.security.model import SharingRule as SharingRule
    from crmcore.security.model import parse_security as parse_security
    from crmcore.security.predicate import ALWAYS as ALWAYS
    from crmcore.security.predicate import NEVER as NEVER
    from crmcore.security.predicate import FieldEquals as FieldEquals
    from crmcore.security.predicate import FieldIn as FieldIn
    from crmcore.security.predicate import IdSet as IdSet
    from crmcore.security.predicate import Not as Not
    from crmcore.security.predicate import Predicate as Predicate
    from crmcore.security.predicate import all_of as all_of
    from crmcore.security.predicate import any_of as any_of

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "crmcore.security.access": ("AccessContext", "AccessService", "Decision", "Grant", "Restriction"),
    "crmcore.security.model": ("ACCESS_LEVELS", "ADMIN_ACTIONS", "CORE_ACTIONS", "EXPLAIN_ACTION", "FIELD_LEVELS", "KEEP_IDS_ACTION", "OPEN_MODE_NOTICE", "READ_PROFILE", "Party", "Profile", "SecurityModel", "SharingRule", "parse_security"),
    "crmcore.security.predicate": ("ALWAYS", "NEVER", "FieldEquals", "FieldIn", "IdSet", "Not", "Predicate", "all_of", "any_of"),
    "crmcore.security.admin": ("acting_user", "add_group", "add_group_members", "add_user", "assign_roles", "explain_access", "find_by_name", "group_members", "remove_roles", "resolve_owner", "set_role_parent", "user_groups", "user_roles"),
})
