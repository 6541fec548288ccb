"""Permissions: profiles, hierarchical roles, groups, sharing defaults and rules, field access.

The model is compiled into one predicate per (actor, entity, action), applied as a SQL
``WHERE`` on every read path and evaluated in memory for single-record checks.
"""

from __future__ import annotations

from crmcore.security.access import AccessContext, AccessService, Decision, Grant, Restriction
from crmcore.security.model import Party, Profile, SecurityModel, SharingRule, parse_security
from crmcore.security.predicate import (
    ALWAYS,
    NEVER,
    FieldEquals,
    FieldIn,
    IdSet,
    Not,
    Predicate,
    all_of,
    any_of,
)

__all__ = [
    "ALWAYS",
    "NEVER",
    "AccessContext",
    "AccessService",
    "Decision",
    "FieldEquals",
    "FieldIn",
    "Grant",
    "IdSet",
    "Not",
    "Party",
    "Predicate",
    "Profile",
    "Restriction",
    "SecurityModel",
    "SharingRule",
    "all_of",
    "any_of",
    "parse_security",
]
