"""The app: one deployment's plugins, registry, engine and signals.

``create_app(settings)`` adds the hookspecs, registers the builtins, loads the enabled entry
points, checks every hook implementation against a spec, builds and freezes the registry,
derives the tables, then calls ``crm_configure`` with each plugin's own settings. Nothing lives at module level:
two apps with different plugins share a process without seeing each other.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.errors import (
    ConfigError,
    CrmError,
    DatabaseError,
    NotFoundError,
    PermissionDeniedError,
    PluginError,
)
from crmcore.fields import Field, timezone_named
from crmcore.plugins import PluginManager, hook_items
from crmcore.records import Record
from crmcore.registry import EntityType, Registry
from crmcore.schemas import SchemaFactory
from crmcore.security import AccessService, Decision, SecurityModel, parse_security
from crmcore.settings import Settings, load_settings
from crmcore.signals import Signals
from crmcore.storage.engine import (
    NAMING_CONVENTION,
    check_connection,
    make_engine,
    missing_sqlite_file,
    safe_url,
)
from crmcore.storage.tables import build_core_tables
from crmcore.storage.uow import UnitOfWork
from crmcore.workflow.engine import Workflow
from crmcore.workflow.pipelines import Pipeline, PipelineBuilder, pipeline_from_settings
from crmcore.workflow.rule_engine import RuleEngine

__all__ = ["Crm", "create_app"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class Crm:
    """One CRM deployment in one process. Build it with :func:`create_app`."""

    def __init__(self, settings: Settings, *, plugins: Iterable[Any] = (), engine: sa.Engine | None = None) -> None:
        self.settings = settings
        self._state: dict[type, Any] = {}
        self.plugins = PluginManager()
        self.plugins.load(settings.plugins, plugins, disabled=settings.disabled, source=settings.source, path=settings.path)
        self.hook = self.plugins.hook
        self._check_sections()
        self.registry = Registry(currency=settings.currency, timezone=timezone_named(settings.timezone))
        self._collect_entities()
        self.metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
        self.registry.build_tables(self.metadata)
        self.core_tables = build_core_tables(self.metadata)
        self.signals = Signals()
        self.plugin_settings = self.plugins.plugin_settings(settings.plugin_settings, source=settings.source)
        self.plugins.own_settings = self.plugin_settings
        self.access = AccessService(self.registry, self._security_model(), self.hook)
        self.workflow = Workflow(self.registry, self._pipelines(), permissions=self.access.model.actions)
        self._engine = engine
        self._file_checked = False  # a SQLite file is known to exist (or may be created)
        self._configure()
        log.info("app ready: %d entity types, plugins: %s", len(self.registry.entity_names), ", ".join(self.plugins.plugins))

    def _configure(self) -> None:
        """Call ``crm_configure`` in plugin order: each plugin receives its own
        ``[plugins.<name>]`` table."""
        self.plugins.call_each("crm_configure", own_settings=True, crm=self)

    # -- plugin state --------------------------------------------------------------------------
    def set_state(self, state: object) -> None:
        """Keep *state*, a plugin's own object (its parsed settings, caches, services), for the
        life of the app, found again by its type with :meth:`state`. A plugin sets its state in
        ``crm_configure``; each type is set once.

        :raises PluginError: when a state of that type is already set.
        """
        kind = type(state)
        if kind in self._state:
            raise PluginError(
                f"a {kind.__qualname__} is already kept in this app; each state type is set once "
                "(in the crm_configure of the plugin that owns it)",
            )
        self._state[kind] = state

    def state(self, kind: type[_T]) -> _T:
        """The state object of type *kind* a plugin set with :meth:`set_state`.

        :raises CrmError: when none is set (the plugin that owns it is not enabled).
        """
        try:
            return self._state[kind]  # type: ignore[no-any-return]
        except KeyError:
            raise CrmError(
                f"this app holds no {kind.__qualname__}: the plugin that keeps it is not enabled, or has not "
                "been configured yet; enable it in [crm] plugins",
            ) from None

    def find_state(self, kind: type[_T]) -> _T | None:
        """The state object of type *kind*, or ``None`` when no plugin set one."""
        return self._state.get(kind)  # type: ignore[no-any-return]

    def cached_state(self, kind: type[_T], make: Callable[[], _T]) -> _T:
        """The state object of type *kind*, made by *make* and kept on first use (for state a
        module derives lazily, such as prepared statements)."""
        found = self._state.get(kind)
        if found is None:
            found = self._state[kind] = make()
        return found  # type: ignore[no-any-return]

    def _check_sections(self) -> None:
        owned = {s for p in self.plugins.plugins.values() for s in p.info.sections}
        for section, value in self.settings.sections.items():
            if section not in owned:
                raise ConfigError(
                    f"{self.settings.source}: unknown table [{section}] = {value!r}; known tables: crm, plugins, "
                    f"custom_fields{''.join(', ' + s for s in sorted(owned))}",
                    path=self.settings.path, key=section,
                )

    def _pipelines(self) -> list[Pipeline]:
        declared: dict[str, Pipeline] = {}
        for result in self.hook.crm_pipelines():
            for pipeline in result or ():
                declared[pipeline.name] = pipeline
        try:
            tables = self.settings.sections.get("pipelines", {})
            if not isinstance(tables, Mapping):
                raise ConfigError(f"[pipelines] must hold one table per pipeline, got {tables!r}", key="pipelines")
            for name, table in tables.items():
                declared[name] = pipeline_from_settings(name, table)
            frozen = []
            for pipeline in declared.values():
                builder = PipelineBuilder.of(pipeline)
                self.plugins.call_each("crm_extend_pipeline", own_settings=True, pipeline=builder)
                frozen.append(builder.freeze())
            return frozen
        except ConfigError as exc:
            raise ConfigError(f"{self.settings.source}: {exc}", path=self.settings.path, key=exc.key) from None

    def _security_model(self) -> SecurityModel:
        def joined(results: list[Any]) -> list[Any]:
            return [item for result in results for item in (result or ())]

        registry = self.registry
        try:
            return parse_security(
                self.settings.sections.get("security"),
                entities={e.name: [f.name for f in e.fields] for e in registry},
                ownable=[e.name for e in registry if e.ownable],
                extra_profiles=joined(self.hook.crm_profiles()),
                extra_rules=joined(self.hook.crm_sharing_rules()),
                extra_actions=joined(self.hook.crm_permissions()),
            )
        except ConfigError as exc:
            raise ConfigError(f"{self.settings.source}: {exc}", path=self.settings.path, key=exc.key) from None

    def _collect_entities(self) -> None:
        for part in self.plugins.call_each("crm_entity_types"):
            for entity in hook_items(part.result, EntityType, plugin=part.plugin, hook="crm_entity_types",
                                     what="crmcore.registry.EntityType objects"):
                self.registry.add_entity(entity, origin=part.plugin)
        for name in list(self.registry.entity_names):
            for part in self.plugins.call_each("crm_entity_fields", entity_type=name, entity=self.registry.entity(name)):
                fields = hook_items(part.result, Field, plugin=part.plugin, hook="crm_entity_fields",
                                    what="crmcore.fields.Field objects")
                if fields:
                    self.registry.extend_entity(name, fields, origin=part.plugin)
        try:
            self.registry.add_custom_fields(self.settings.custom_fields)
            self.registry.freeze()
        except ConfigError as exc:
            if exc.key and exc.key.startswith("custom_fields"):
                raise ConfigError(f"{self.settings.source}: {exc}", path=self.settings.path, key=exc.key) from None
            raise

    # -- database ------------------------------------------------------------------------------
    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (created on first use)."""
        if self._engine is None:
            self._engine = make_engine(self.settings.database, echo=self.settings.echo_sql, busy_timeout=self.settings.busy_timeout)
        return self._engine

    @property
    def database_url(self) -> str:
        """The database URL with any password masked."""
        return safe_url(self.engine.url)

    def connect(self, *, create: bool = False) -> sa.Connection:
        """A new connection; failure to reach the database is one clear :class:`DatabaseError`.

        A SQLite file that does not exist is such a failure unless *create* is true: only
        :meth:`create_schema` and the migrations (:meth:`upgrade`: ``crm init``, ``crm db
        upgrade``; ``crm db check`` and ``revision``) create one, so a command pointed at a
        mistyped path does not leave an empty database behind.
        """
        if not self._file_checked and not create:
            missing = missing_sqlite_file(self.engine.url)
            if missing is not None:
                raise DatabaseError(
                    f"the database file {missing!r} does not exist; create it with 'crm init' or "
                    "'crm db upgrade' (Crm.upgrade()), or check [crm] database (or --db)"
                )
            self._file_checked = True
        try:
            return self.engine.connect()
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseError(
                f"cannot reach database {self.database_url}: {reason}; check [crm] database "
                "(or --db) and that the server is running"
            ) from None

    def check_connection(self) -> None:
        check_connection(self.engine)

    def create_schema(self) -> None:
        """Create every missing table of the enabled set straight from the registry.

        Tests and throwaway databases use it; deployments use :meth:`upgrade`, which also
        records the migration state.
        """
        with self.connect(create=True) as connection, connection.begin():
            self.metadata.create_all(connection)
        self.seed()

    def seed(self) -> list[str]:
        """Create the reference data plugins need (``crm_seed``), in one system unit of work.

        :returns: one line per thing created.
        """
        with self.unit_of_work() as uow:
            done = [line for result in self.hook.crm_seed(crm=self, uow=uow) for line in (result or ())]
            uow.commit()
        return done

    def upgrade(self) -> list[str]:
        """Bring the database to the enabled set of plugins (``crm db upgrade``).

        :returns: one line per step applied.
        """
        from crmcore.storage import migrations

        return [*migrations.upgrade(self), *self.seed()]

    def pending(self) -> list[str]:
        """What :meth:`upgrade` would do (``crm db check``); empty when the database is current."""
        from crmcore.storage import migrations

        return migrations.pending(self)

    # -- work ----------------------------------------------------------------------------------
    def unit_of_work(self, actor: Actor | str | None = None) -> UnitOfWork:
        """Open a unit of work (use it as a context manager).

        :param actor: an :class:`Actor`, a username, or ``None`` for the system actor.
        :raises NotFoundError: for an unknown username.
        :raises PermissionDeniedError: for the username of a deactivated user.
        """
        if isinstance(actor, str):
            actor = self.actor(actor)
        return UnitOfWork(self, actor or Actor.system())

    def explain(self, actor: Actor | str, entity: str | Record, id: int | None = None, action: str = "read") -> Decision:
        """Whether *actor* may *action* a record, and the chain of rules behind the decision.

        ``crm.explain("rep1", "lead", 42, "update")`` or ``crm.explain(actor, record)``.

        :raises NotFoundError: when the record does not exist.
        """
        if isinstance(actor, str):  # explaining is not acting: a deactivated user's access is explained too
            actor = self._user_actor(actor, acting=False)
        if isinstance(entity, Record):
            record_given = entity
            entity, id = record_given.entity, record_given.id
        with self.unit_of_work(Actor.system()) as system:  # an administrator's question
            return system.explain(system.get(entity, id), action, user=actor)  # type: ignore[arg-type]

    def actor(self, username: str) -> Actor:
        """The actor for the active user called *username* (``crm.unit_of_work("rep1")`` and the
        command line's ``--as rep1`` use it).

        :raises NotFoundError: when there is no such user.
        :raises PermissionDeniedError: when the user is deactivated (``active`` is false).
        """
        return self._user_actor(username, acting=True)

    def _user_actor(self, username: str, *, acting: bool) -> Actor:
        table = self.registry.table("user")
        with self.connect() as connection:
            row = connection.execute(
                sa.select(table.c.id, table.c.username, table.c.active).where(table.c.username == username)
            ).first()
        if row is None:
            raise NotFoundError(
                f"no user named {username!r}; add one with 'crm user add {username}' ('crm user list' lists the users)",
                entity="user", id=username,
            )
        if acting and row.active is False:
            raise PermissionDeniedError(
                f"user {username!r} is deactivated and cannot act; act as an active user, or reactivate it "
                f"with 'crm update user {row.id} active=true'"
            )
        return Actor(row.id, row.username)

    @property
    def rules(self) -> RuleEngine:
        """The rules of the app, checked at start-up (builtin plugin ``core.rules``):
        ``crm.rules.simulate("opportunity", {"amount": "60000"}, stage="rfp_received")``."""
        engine = self.find_state(RuleEngine)
        if engine is None:
            raise CrmError("this app has no rule engine: the builtin plugin 'core.rules' is not registered")
        return engine

    @property
    def schemas(self) -> SchemaFactory:
        """Marshmallow schemas derived from the registry: ``crm.schemas.for_entity("lead")``."""
        return self.cached_state(SchemaFactory, lambda: SchemaFactory(self.registry))

    def close(self) -> None:
        """Call ``crm_shutdown`` on every plugin and dispose of the engine."""
        errors = []
        for part in self.plugins.call_each("crm_shutdown", keep_going=True, crm=self):
            if part.error is not None:  # every plugin gets its turn; the first failure is reported
                errors.append(part.error)
                log.warning("crm_shutdown of plugin %s raised %s", part.plugin, type(part.error).__name__)
        if self._engine is not None:
            self._engine.dispose()
        if errors:
            raise errors[0]

    def __enter__(self) -> Crm:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        enabled = [n for n, p in self.plugins.plugins.items() if not p.builtin]
        return f"<Crm plugins={enabled} database={safe_url(self.settings.database)!r}>"


def create_app(
    settings: str | os.PathLike[str] | Mapping[str, Any] | Settings | None = None,
    /,
    *,
    plugins: Iterable[Any] = (),
    engine: sa.Engine | None = None,
    **overrides: Any,
) -> Crm:
    """Build an app.

    :param settings: a ``crm.toml`` path, a dict shaped like the file, :class:`Settings`, or
        ``None`` (defaults: ``sqlite:///crm.db``, no optional plugins).
    :param plugins: plugin objects to register besides the enabled entry points (modules or
        instances carrying ``@hookimpl`` functions), for embedding and tests.
    :param engine: an engine to use instead of one made from the database URL.
    :param overrides: keys of ``[crm]`` (``database=``, ``plugins=``, ``currency=``...) and
        ``custom_fields=`` / ``plugin_settings=``.
    :raises ConfigError: for bad settings, naming the file, key and value.
    :raises PluginError: for an unknown or broken plugin.
    """
    return Crm(load_settings(settings, **overrides), plugins=plugins, engine=engine)
