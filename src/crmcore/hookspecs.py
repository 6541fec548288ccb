"""Every hook the core offers, and nothing else.

Hooks are grouped by lifecycle: start-up, entities, records (inside a unit of work), storage,
command line, shutdown. Implementations are written with :data:`crmcore.hookimpl` and receive
only the arguments they name. A hook is for taking part (an answer is needed, or the plugin must
join the transaction); to learn that something *has happened*, connect to a signal of
:mod:`crmcore.signals` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    import click

    from crmcore.app import Crm
    from crmcore.demo import Story
    from crmcore.fields import Field
    from crmcore.merge import MergeField, MergeRelation
    from crmcore.records import Record
    from crmcore.registry import EntityType
    from crmcore.security import AccessContext, Grant, Profile, Restriction, SharingRule
    from crmcore.storage.uow import UnitOfWork
    from crmcore.workflow.actions import Action
    from crmcore.workflow.pipelines import Pipeline, PipelineBuilder, Transition
    from crmcore.workflow.rules import Rule

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "crmcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------------------------
# Start-up
# ---------------------------------------------------------------------------------------------


@hookspec(historic=True)
def crm_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    """Add the hook specifications a plugin offers to other plugins.

    Called once while the app is built, after every enabled plugin is registered and before
    hook implementations are checked against the specs; historic, so a plugin registered later
    still receives the call. Use it from a plugin that has hooks of its own (with its own
    prefix, such as ``helpdesk_``).

    :param plugin_manager: the app's pluggy plugin manager.
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_add_hookspecs(plugin_manager):
            from crm_helpdesk import hookspecs
            plugin_manager.add_hookspecs(hookspecs)

    .. versionadded:: 0.1
    """


@hookspec
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    """Read the plugin's settings once the registry is frozen, and keep what the plugin
    derives from them as its state.

    Called once per app after every plugin is registered and the entity registry is built (no
    plugin is registered later, so the hook is not historic). All implementations are called,
    in plugin order: a plugin after the plugins it requires, so it may read their state. Raise
    :class:`~crmcore.errors.ConfigError` to stop start-up with a message naming the key.
    Keep state with :meth:`Crm.set_state` (an object of the plugin's own type, found again
    with ``crm.state(Type)``), never in module globals.

    :param crm: the app being started.
    :param settings: this plugin's ``[plugins.<name>]`` table, with declared defaults filled in
        (empty for plugins that declare no settings).
    :returns: ``None``.

    Example::

        @attrs.frozen
        class HelpdeskSettings:
            sla_hours: int

        @hookimpl
        def crm_configure(crm, settings):
            crm.set_state(HelpdeskSettings(sla_hours=settings["sla_hours"]))

        # later, anywhere the app is at hand:
        hours = crm.state(HelpdeskSettings).sla_hours

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------------------------


@hookspec
def crm_entity_types() -> list[EntityType] | None:
    """Declare the entity types a plugin owns.

    Called once per app while the registry is built. All implementations are called and the
    lists are joined; declaring an entity type another plugin already declared is an error.
    The table of a plugin's entity is named ``<plugin>_<entity>``.

    :returns: a list of :class:`~crmcore.registry.EntityType`, or ``None``.

    Example::

        @hookimpl
        def crm_entity_types():
            return [EntityType("ticket", fields=(Field("subject", String(200), required=True),),
                               ownable=True)]

    .. versionadded:: 0.1
    """


@hookspec
def crm_entity_fields(entity_type: str, entity: EntityType) -> list[Field] | None:
    """Add fields to an entity type that another plugin (or the core) declared.

    Called once per declared entity type while the registry is built. The fields behave like
    the entity's own: they validate, persist, filter, sort, import, export and audit the same
    way. Their column is ``<plugin>_<field>`` in the other plugin's table.

    :param entity_type: the name of the entity type being built.
    :param entity: its declaration as declared (to look at ``ownable`` or its fields).
    :returns: a list of :class:`~crmcore.fields.Field` to add, or ``None``.

    Example::

        @hookimpl
        def crm_entity_fields(entity_type):
            if entity_type == "account":
                return [Field("support_tier", Choice("basic", "premium"), default="basic")]

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------------
# Records, inside a unit of work
# ---------------------------------------------------------------------------------------------


@hookspec
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
    """Change or veto records about to be created, a batch of one entity type at a time.

    Called inside the unit of work after the values are validated and before the INSERT: once
    for a single :meth:`UnitOfWork.create` (a batch of one), once per batch of an import or a
    lead conversion. All implementations are called and see the same items. Per item, their
    returned changes are merged (where two plugins change one field, the one called first wins)
    and validated again. Raise a :class:`~crmcore.errors.CrmError` (usually
    :class:`~crmcore.errors.ValidationError`) naming the record at fault to veto: the whole unit
    rolls back (an import with ``skip_invalid`` asks again row by row to reject only the bad rows).

    :param uow: the unit of work (its ``actor`` is who acts).
    :param entity: the entity type's name (every item is of this type).
    :param items: the validated values of each new record, in the caller's order (read them;
        return changes instead of mutating).
    :returns: ``None`` (no changes), or a list with one entry per item, in the same order:
        ``None`` or ``{field: value}`` changes for that record. Returning the same dictionary
        for many items is allowed and saves validating it again.

    Example::

        @hookimpl
        def crm_before_create(entity, items):
            if entity == "lead":
                return [None if values.get("source") else {"source": "web"} for values in items]

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
        Batch-shaped: ``(uow, entity, items)`` instead of ``(uow, entity, values)``; see
        "Migrating to batch-shaped record hooks" in the plugin guide.
    """


@hookspec
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    """Take part in the transaction after records were inserted, a batch at a time.

    Called inside the unit of work right after the INSERT and the audit entries: once for a
    single :meth:`UnitOfWork.create` (a batch of one), once per batch of an import or a lead
    conversion. Use the *uow* to write more (a plugin creating follow-up tasks, say). An
    exception rolls the whole unit back.

    :param uow: the unit of work.
    :param entity: the entity type's name.
    :param records: the new records, in the caller's order.
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_after_create(uow, entity, records):
            if entity == "lead":
                for record in records:
                    uow.create("note", lead_id=record.id, body="Captured")

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
        Batch-shaped: ``(uow, entity, records)`` instead of ``(uow, record)``.
    """


@hookspec
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> list[dict[str, Any] | None] | None:
    """Change or veto updates of records of one entity type, a batch at a time.

    Called inside the unit of work after the changes are validated and before the UPDATE
    statements: once for a single :meth:`UnitOfWork.update` or :meth:`UnitOfWork.move` (a
    batch of one), once per batch of :meth:`UnitOfWork.move_many`,
    :meth:`UnitOfWork.update_where` or an import. All implementations are called and see the
    same items (read them; return changes instead of mutating). Per record, the returned
    changes are merged (where two plugins change one field, the one called first wins) and
    validated again. Raise a :class:`~crmcore.errors.CrmError` naming the record to veto: the
    whole batch is refused and its writes are undone.

    :param uow: the unit of work.
    :param entity: the entity type's name (every record of the batch is of this type).
    :param items: ``[(record, changes)]``: each record as it is now and its validated changes
        (only fields whose value differs), in the order the caller gave the records.
    :returns: ``None`` (no further changes), or a list with one entry per item, in the same
        order: ``None`` or further ``{field: value}`` changes for that record. Returning the
        same dictionary for many items is allowed and saves validating it again.

    Example::

        @hookimpl
        def crm_before_update(entity, items):
            if entity == "opportunity":
                return [{"next_step": None} if "stage" in changes else None for record, changes in items]

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
        Batch-shaped: ``(uow, entity, items)`` instead of ``(uow, record, changes)``; replaces
        ``crm_before_update_many``.
    """


@hookspec
def crm_after_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]) -> None:
    """Take part in the transaction after records of one entity type were updated.

    Called inside the unit of work right after the UPDATE statements and audit entries: once
    for a single update or move (a batch of one), once per batch of the batch writes. An
    exception rolls the whole unit back.

    :param uow: the unit of work.
    :param entity: the entity type's name.
    :param items: ``[(old, new, changes)]``: each record before and after the update and
        ``{field: new value}`` of the fields that changed, in the order the caller gave them.
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_after_update(uow, entity, items):
            owners = [new for old, new, changes in items if "owner_id" in changes]
            if entity == "account" and owners:
                uow.tag_many(owners, "reassigned")

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
        Batch-shaped: ``(uow, entity, items)`` instead of ``(uow, old, new, changes)``;
        replaces ``crm_after_update_many``.
    """


@hookspec
def crm_before_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    """Veto deletes, or clean up before them, a batch of one entity type at a time.

    Called inside the unit of work before the DELETE (and, for a single delete, before its
    references are followed): once for a single :meth:`UnitOfWork.delete` (a batch of one),
    once per batch of :meth:`UnitOfWork.delete_where` or a lead conversion. Raise a
    :class:`~crmcore.errors.CrmError` naming the record to veto: the whole unit rolls back.

    :param uow: the unit of work.
    :param entity: the entity type's name.
    :param records: the records about to be deleted, as they are now.
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_before_delete(entity, records):
            for record in records:
                if entity == "account" and record.name == "House account":
                    raise ValidationError(f"account {record.id}, the house account, cannot be deleted")

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
        Batch-shaped: ``(uow, entity, records)`` instead of ``(uow, record)``.
    """


@hookspec
def crm_after_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    """Take part in the transaction after records were deleted, a batch at a time.

    Called inside the unit of work right after the DELETE and the audit entries: once for a
    single delete (a batch of one), once per batch of the batch deletes. An exception rolls
    the unit back.

    :param uow: the unit of work.
    :param entity: the entity type's name.
    :param records: the records as they were.
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_after_delete(uow, entity, records):
            log.info("deleted %d %s records", len(records), entity)

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
        Batch-shaped: ``(uow, entity, records)`` instead of ``(uow, record)``.
    """


@hookspec
def crm_before_commit(uow: UnitOfWork) -> None:
    """Check or complete a unit of work just before it commits.

    Called by :meth:`UnitOfWork.commit` after pending audit entries are written and before the
    COMMIT. An exception rolls the whole unit back and no signal is sent. Use it for checks that
    span several records.

    :param uow: the unit of work; ``uow.changes`` lists what it did.
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_before_commit(uow):
            if len(uow.changes) > 100_000:
                raise ValidationError("too many changes in one unit of work")

    .. versionadded:: 0.1
    """


@hookspec
def crm_timeline_records(uow: UnitOfWork, entity: str, record_id: int) -> Mapping[str, Iterable[int]] | None:
    """Name records whose history belongs on the timeline of a record, beyond those the
    registry links to it by references.

    Called by :meth:`UnitOfWork.timeline` once the actor may read the record. All
    implementations are called. The audit entries of the records named join the timeline; the
    core keeps only those of records the actor may read (each entity type's read predicate
    applies), so a plugin need not filter, and hidden fields are left out as everywhere.

    :param uow: the unit of work asking, with its actor.
    :param entity: the entity type of the record whose timeline is built.
    :param record_id: its id.
    :returns: ``{entity type: ids}`` of the records to add (for example the chat messages that
        mention the record), or ``None``.

    Example::

        @hookimpl
        def crm_timeline_records(uow, entity, record_id):
            mentions = uow.select("chat_mention", fields=("message_id",)).where(
                ("entity", "=", entity), ("record_id", "=", record_id))
            return {"chat_message": [row["message_id"] for row in mentions.all()]}

    .. versionadded:: 0.1
    """


@hookspec
def crm_merge_relations() -> list[MergeRelation | MergeField] | None:
    """Declare what a merge of duplicate records must carry along beyond the registry's
    references, and how: links that are not references, strategies for references, and how
    fields' values are chosen.

    Called each time a merge is planned (:meth:`UnitOfWork.plan_merge`, :meth:`UnitOfWork.merge`,
    ``crm merge``) and by :meth:`UnitOfWork.undo_merge`, inside the caller's unit of work. All
    implementations are called and their lists joined. Every reference to the merged entity
    type is repointed unless a relation here gives it another strategy; a link of a plugin that
    is not a reference (an entity's pair of fields naming a record of any type, or a column of
    the plugin's own table) moves only if declared here, and a test of the core fails for an
    integer field named like a link (``record_id``, ``..._id``) that nobody declares.

    :returns: :class:`~crmcore.merge.MergeRelation` values (``entity``/``field``, or
        ``table``/``plugin``/``field``; ``entity_field`` or ``targets`` say what they point at;
        ``strategy`` one of ``repoint``, ``union``, ``sum``, ``keep``, ``refuse``, or ``none``
        for a field that is no link) and :class:`~crmcore.merge.MergeField` values (``entity``,
        ``field``, ``strategy`` one of ``target``, ``concatenate``, ``max``, ``min``,
        ``union``), or ``None``.

    Example::

        @hookimpl
        def crm_merge_relations():
            return [
                MergeRelation(entity="chat_mention", field="target_id", entity_field="target_entity"),
                MergeRelation(entity="campaign_member", field="contact_id", strategy="union",
                              unique=("run_id",)),
                MergeField("account", "description", "concatenate"),
            ]

    .. versionadded:: 0.2
    """


# ---------------------------------------------------------------------------------------------
# Permissions
# ---------------------------------------------------------------------------------------------


@hookspec
def crm_permissions() -> list[str] | None:
    """Declare the actions a plugin adds to the permission model.

    Called once while the app is built. Profiles may then grant these actions like the core
    ones (create, read, update, delete, import, export); checking them is the plugin's job,
    through ``uow.require(entity, action)``. Names are ``<plugin>.<entity>.<verb>``.

    :returns: a list of action names, or ``None``.

    Example::

        @hookimpl
        def crm_permissions():
            return ["helpdesk.ticket.close"]

    .. versionadded:: 0.1
    """


@hookspec
def crm_profiles() -> list[Profile] | None:
    """Declare profiles in Python, beside those of ``[security.profiles]``.

    Called once while the app is built; a profile of the same name as one in the settings
    replaces it.

    :returns: a list of :class:`~crmcore.security.Profile`, or ``None``.

    Example::

        @hookimpl
        def crm_profiles():
            return [Profile("agent", privileges={"ticket": frozenset({"all"})})]

    .. versionadded:: 0.1
    """


@hookspec
def crm_sharing_rules() -> list[SharingRule] | None:
    """Declare sharing rules in Python, beside those of ``[[security.rules]]``.

    Called once while the app is built; the rules are checked like the settings' ones (unknown
    role, group or entity stops start-up).

    :returns: a list of :class:`~crmcore.security.SharingRule`, or ``None``.

    Example::

        @hookimpl
        def crm_sharing_rules():
            return [SharingRule("support reads accounts", "account",
                                Party("role-tree", "sales"), Party("group", "support"))]

    .. versionadded:: 0.1
    """


@hookspec
def crm_access_grants(context: AccessContext, entity: str, action: str) -> list[Grant] | None:
    """Grant record access beyond ownership, hierarchy, groups and sharing rules.

    Called each time a predicate is compiled for a non-system actor on an ownable entity whose
    sharing default does not already allow *action* (once per query, get, update or delete).
    The grants are OR-ed into the one predicate, so they apply in SQL on every read path and in
    memory for single-record checks alike. A grant only adds record access: the actor still
    needs the profile privilege.

    :param context: the actor's :class:`~crmcore.security.AccessContext` (actor, roles, groups).
    :param entity: the entity type.
    :param action: ``"read"``, ``"update"``, ``"delete"``, ``"export"`` or a plugin action.
    :returns: a list of :class:`~crmcore.security.Grant` (level, predicate, reason), or ``None``.

    Example::

        @hookimpl
        def crm_access_grants(context, entity, action):
            if entity == "account" and action == "read":
                mine = sa.select(territory.c.account_id).where(territory.c.user_id == context.actor.user_id)
                return [Grant("read", FieldIn("id", IdSet(query=mine)), "account in the user's territory")]

    .. versionadded:: 0.1
    """


@hookspec
def crm_access_restrictions(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    """Restrict record access: records must also satisfy each returned condition.

    Called each time a predicate is compiled for a non-system actor (ownable or not). The
    restrictions are AND-ed into the one predicate. The system actor is never restricted.

    :param context: the actor's :class:`~crmcore.security.AccessContext`.
    :param entity: the entity type.
    :param action: the action being checked.
    :returns: a list of :class:`~crmcore.security.Restriction`, or ``None``.

    Example::

        @hookimpl
        def crm_access_restrictions(context, entity, action):
            if entity == "opportunity" and "intern" in context.role_ids_by_name:
                return [Restriction(FieldEquals("stage", "won"), "interns see won deals only")]

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------------
# Workflow
# ---------------------------------------------------------------------------------------------


@hookspec
def crm_pipelines() -> list[Pipeline] | None:
    """Declare pipelines: stages, transitions, guards, required and locked fields.

    Called once while the app is built, after the registry is frozen. A pipeline of
    ``[pipelines.<name>]`` in the settings with the same name replaces a plugin's. Guards are
    type-checked against the registry at start-up: an unknown field stops it, naming it.

    :returns: a list of :class:`~crmcore.workflow.pipelines.Pipeline`, or ``None``.

    Example::

        @hookimpl
        def crm_pipelines():
            stages = (Stage("new"), Stage("open"), Stage("closed", kind="won"))
            return [Pipeline("helpdesk.ticket", "ticket", stages, tuple(default_transitions(stages)))]

    .. versionadded:: 0.1
    """


@hookspec
def crm_extend_pipeline(pipeline: PipelineBuilder, settings: dict[str, Any]) -> None:
    """Change a pipeline another plugin (or the settings) declared: a phase plugin.

    Called once per pipeline while the app is built, in plugin order, before the pipeline is
    frozen and checked. Insert stages, add or remove transitions, add guards, require or lock
    fields through the builder; never mutate a frozen pipeline.

    :param pipeline: a :class:`~crmcore.workflow.pipelines.PipelineBuilder`; its ``name`` and
        ``entity`` say which pipeline it is.
    :param settings: this plugin's ``[plugins.<name>]`` table with declared defaults filled in
        (a guard's threshold, say), as ``crm_configure`` receives it.
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_extend_pipeline(pipeline):
            if pipeline.name == "sales":
                pipeline.insert_stage(Stage("legal_review", probability=70), after="quotation_sent")

    .. versionadded:: 0.1
    """


@hookspec
def crm_before_move(uow: UnitOfWork, entity: str, moves: list[tuple[Record, Transition, Mapping[str, Any]]]) -> None:
    """Veto moves after their transitions, permissions and guards passed (approvals use it).

    Called inside the unit of work for the records whose stage changes, before the UPDATE:
    once for a single :meth:`UnitOfWork.move` (or update of the stage field; a batch of one),
    once per batch of :meth:`UnitOfWork.move_many`. All implementations are called; raise
    :class:`~crmcore.errors.TransitionError` naming the record to refuse: the whole batch is
    refused.

    :param uow: the unit of work.
    :param entity: the entity type's name.
    :param moves: ``[(record, transition, values)]``: each record in its current stage, the
        :class:`~crmcore.workflow.pipelines.Transition` taken and the record's values as they
        will be after the move (a read-only mapping), in the order the caller gave the records.
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_before_move(entity, moves):
            for record, transition, values in moves:
                if entity == "opportunity" and transition.target == "won" and not values.get("contact_id"):
                    raise TransitionError(f"opportunity {record.id} needs a contact to be won")

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
        Batch-shaped: ``(uow, entity, moves)`` instead of ``(uow, record, transition,
        values)``; replaces ``crm_before_move_many``.
    """


@hookspec
def crm_after_move(uow: UnitOfWork, entity: str, moves: list[tuple[Record, Record, str | None, str | None]]) -> None:
    """Take part in the transaction after records moved to other stages (rules on stage
    entered and stage left run here).

    Called inside the unit of work right after the UPDATE of the moves (from the builtin
    workflow's ``crm_after_update``): once for a single move (a batch of one), once per batch
    of :meth:`UnitOfWork.move_many`. An exception rolls the whole unit back. One
    ``record-moved`` signal per record follows after the commit.

    :param uow: the unit of work.
    :param entity: the entity type's name.
    :param moves: ``[(old, new, source, target)]``: each record before and after the move, the
        stage it left and the stage it entered, in the order the caller gave the records.
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_after_move(uow, entity, moves):
            won = [new for old, new, source, target in moves if target == "won"]
            if entity == "opportunity" and won:
                uow.tag_many(won, "handover")

    .. versionadded:: 0.2
        Replaces ``crm_record_moved`` and ``crm_records_moved``.
    """


@hookspec
def crm_rules(crm: Crm, settings: dict[str, Any]) -> list[Rule] | None:
    """Declare rules: on an event of an entity type, when a condition holds, then actions.

    Called once while the app starts, after the pipelines are built. All implementations are
    called. Every rule is checked against the registry, the pipelines and the known actions
    before the app is ready: an unknown field, stage, action or parameter stops start-up naming
    the rule. A ``[[rules]]`` table of the settings with a declared rule's name changes only the
    keys it gives (``enabled = false`` switches the rule off); two plugins declaring one name is
    an error.

    :param crm: the app being started (its registry is frozen).
    :param settings: this plugin's ``[plugins.<name>]`` table with declared defaults filled in.
    :returns: a list of :class:`~crmcore.workflow.rules.Rule`, or ``None``.

    Example::

        @hookimpl
        def crm_rules(settings):
            return [Rule("escalate_stale", "ticket", on="days_in_stage:open:3",
                         when="priority != 'low'",
                         then=[{"action": "notify", "to": ["owner_manager"],
                                "message": "Ticket {subject} is open for 3 days"}])]

    .. versionadded:: 0.1
    """


@hookspec
def crm_rule_actions() -> list[Action] | None:
    """Offer actions that rules may name in their ``then``, beside the builtin ones.

    Called once while the app starts, before the rules are checked. All implementations are
    called; two plugins offering one name is an error naming both. An action declares its
    parameters, so rules using it are type-checked at start-up, runs inside the unit of work
    of the event (as the system actor), and describes what it would do for ``crm rules
    simulate`` without writing.

    :returns: a list of :class:`~crmcore.workflow.actions.Action`, or ``None``.

    Example::

        def open_ticket(ctx, params):
            ctx.uow.create("ticket", subject=ctx.render(params["subject"]), account_id=ctx.record.id)

        @hookimpl
        def crm_rule_actions():
            return [Action("open_ticket", open_ticket, {"subject": Param("text", required=True, template=True)},
                           describe=lambda ctx, params: f"open a ticket {ctx.render(params['subject'])!r}")]

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------


@hookspec
def crm_migrations() -> str | None:
    """Name the folder of the plugin's Alembic revisions.

    Called by ``crm db upgrade`` and ``crm db check``. Each plugin owns one version branch,
    tracked in its own version table, so enabling a plugin later adds its schema and disabling
    it leaves its tables and rows in place. A plugin whose tables need no migration may return
    ``None``; its tables are then created from the registry when first needed.

    :returns: the path of a folder of Alembic revision scripts, or ``None``.

    Example::

        @hookimpl
        def crm_migrations():
            return str(Path(__file__).parent / "migrations")

    .. versionadded:: 0.1
    """


@hookspec
def crm_seed(crm: Crm, uow: UnitOfWork) -> list[str] | None:
    """Create the reference data a plugin needs (declared roles, default queues...).

    Called by ``crm db upgrade`` and :meth:`Crm.create_schema` after the schema is current,
    inside one unit of work of the system actor, which commits after every plugin ran. Create
    only what is missing: the hook runs on every upgrade.

    :param crm: the app.
    :param uow: a unit of work of the system actor.
    :returns: one line per thing created (shown by ``crm db upgrade``), or ``None``.

    Example::

        @hookimpl
        def crm_seed(uow):
            if not uow.query("queue").where(name="General").count():
                uow.create("queue", name="General")
                return ["queue General created"]

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------


@hookspec
def crm_job_handlers() -> dict[str, Callable[[UnitOfWork, Any], Any]] | None:
    """Name the functions that run jobs, by kind.

    Called once per app, the first time a job is enqueued or a worker starts
    (:func:`crmcore.jobs.job_handlers`). All implementations are called and the dicts are
    joined; two plugins handling the same kind is an error naming both. ``crm worker`` calls a
    handler with a unit of work of the system actor and the job's payload; the handler's writes
    and the job's completion commit together. A handler whose work must not hold that unit's
    transaction for its whole run (a delivery to another system, which on SQLite would keep the
    write lock meanwhile) may commit the unit first and work in short units of its own: the job
    is then marked done on its own once the handler returns, so such a handler must be safe to
    run again after a crash (idempotent). A handler that
    raises fails the job: it is retried later with a growing delay, and kept as ``failed`` with
    the error after its last attempt. A job of a kind nobody handles fails the same way. A
    handler that needs its job or the worker's time (frozen in tests) reads
    :func:`crmcore.jobs.current_job`.

    :returns: ``{kind: handler}``, each handler a function taking ``(uow, payload)``, or ``None``.
        Name kinds ``<plugin>.<verb>`` (``"helpdesk.escalate"``).

    Example::

        def escalate(uow, payload):
            ticket = uow.get("ticket", payload["ticket_id"])
            if ticket.status == "open":
                uow.update(ticket, priority="high")

        @hookimpl
        def crm_job_handlers():
            return {"helpdesk.escalate": escalate}

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


@hookspec
def crm_cli_commands() -> list[click.Command] | None:
    """Add subcommands to the ``crm`` command line.

    Called once when ``crm`` starts, after the app is built. Each command is mounted by its
    name: a click group named ``helpdesk`` becomes ``crm helpdesk ...``. Inside a command, get
    the app with :func:`crmcore.cli.current_app`.

    :returns: a list of click commands or groups, or ``None``.

    Example::

        @click.group("helpdesk")
        def helpdesk(): ...

        @hookimpl
        def crm_cli_commands():
            return [helpdesk]

    .. versionadded:: 0.1
    """


@hookspec
def crm_demo(crm: Crm, echo: Any, story: Story) -> None:
    """Tell a chapter of ``crm demo``.

    Called by ``crm demo`` after the core's chapters have created the sample company (its
    users, accounts, contacts, opportunities, activities and notes) and before the worker runs
    a day later (so the jobs a chapter schedules run too), in plugin order. Create records
    through ``crm.unit_of_work()`` (or as a demo user: ``story.actor(username)``) and print
    with *echo*.

    :param crm: the demo app, on its own SQLite file.
    :param echo: a function that prints one line.
    :param story: the :class:`crmcore.demo.Story` told so far: the users, teams, accounts,
        contacts and opportunities the core's chapters made, the day it is told and a seeded
        random generator; a chapter may add what it makes (``story.leads``, ``story.moved``).
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_demo(crm, echo):
            with crm.unit_of_work() as uow:
                uow.create("ticket", subject="Printer on fire")
                uow.commit()
            echo("Service: 1 ticket opened")

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 the *story* argument.
    """


@hookspec
def crm_demo_summary(crm: Crm, story: Story) -> list[str] | None:
    """Add a part to the summary that ends ``crm demo``.

    Called once per plugin, in plugin order, after the summary's pipeline by stage and before
    the reminders due. The part is printed after an empty line, as returned: a heading, then
    its lines (indented by two spaces, as the core's parts are).

    :param crm: the demo app.
    :param story: the :class:`crmcore.demo.Story` told.
    :returns: the lines of the part, or ``None`` for none.

    Example::

        @hookimpl
        def crm_demo_summary(crm):
            with crm.unit_of_work() as uow:
                count = uow.query("ticket").where(status="open").count()
            return ["Help desk", f"  {count} open tickets"]

    .. versionadded:: 0.2
    """


# ---------------------------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------------------------


@hookspec
def crm_shutdown(crm: Crm) -> None:
    """Release what a plugin holds when the app closes.

    Called once by :meth:`Crm.close` before the engine is disposed. All implementations are
    called; an exception is logged and the others still run.

    :param crm: the app being closed.
    :returns: ``None``.

    Example::

        @hookimpl
        def crm_shutdown(crm):
            crm.state(HelpdeskCache).clear()

    .. versionadded:: 0.1
    """
