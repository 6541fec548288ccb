"""The plugin manager: discovery, requirements, ordering and the hook dispatcher.

Plugins are modules (or objects) carrying ``@hookimpl`` functions. Installed plugins are found
through the entry point group ``crmcore.plugins``; a deployment enables them by name in
``[crm] plugins``. Each describes itself with a :class:`PluginInfo` in a ``PLUGIN`` attribute
(of the module or its package): name, version and the plugins it requires. The core's own
features are builtin plugins registered through the very same hooks.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import inspect
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

import attrs
import pluggy

from crmcore import hookspecs
from crmcore.errors import ConfigError, CrmError, PluginError
from crmcore.fields.base import shown

__all__ = [
    "Contribution",
    "DEFAULT_ENTRY_POINTS",
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "ESSENTIAL_PLUGINS",
    "PluginInfo",
    "PluginManager",
    "Setting",
    "hook_items",
    "installed_plugins",
    "plugin_info",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "crmcore.plugins"
#: The builtin plugins every app runs: listing one in ``[crm] disabled`` is a ConfigError.
ESSENTIAL_PLUGINS = ("crmcore.builtin.entities", "crmcore.builtin.permissions", "crmcore.builtin.workflow", "crmcore.builtin.opportunities")
#: Every builtin plugin, in registration order: the essential ones always, the others unless
#: listed in ``[crm] disabled``.
DEFAULT_PLUGINS = (
    "crmcore.builtin.entities", "crmcore.builtin.permissions", "crmcore.builtin.workflow", "crmcore.builtin.cli",
    "crmcore.builtin.query", "crmcore.builtin.access", "crmcore.builtin.transfer", "crmcore.builtin.jobs",
    "crmcore.builtin.rules", "crmcore.builtin.pipelines_cli", "crmcore.builtin.opportunities", "crmcore.builtin.tags",
    "crmcore.builtin.calendars",
    "crmcore.builtin.merge",
)
#: First-party plugins installed as packages of their own (entry points) that run by default
#: when installed, unless listed in ``[crm] disabled``; an app starts without one that is not
#: installed.
DEFAULT_ENTRY_POINTS = ("sales",)


@attrs.frozen
class Setting:
    """One key a plugin accepts in its ``[plugins.<name>]`` table.

    :param type: the expected Python type (``int``, ``str``, ``bool``, ``float``, ``list``) or a
        tuple of them.
    :param default: the value when the key is absent; ``required=True`` has none.
    :param minimum: the smallest number accepted (numbers only).
    :param maximum: the largest number accepted (numbers only); without it a number may not
        pass :data:`~crmcore.settings.NUMBER_LIMIT` either way. ``nan`` and infinities never pass.
    """

    type: type | tuple[type, ...]
    default: Any = None
    required: bool = False
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class PluginInfo:
    """What a plugin says about itself.

    :param name: short snake-case name used in settings and table prefixes.
    :param title: a human title.
    :param version: the plugin's version; defaults to its distribution's version.
    :param requires: names of the plugins it needs; they are enabled with it.
    :param settings: ``{key: Setting}`` accepted in ``[plugins.<name>]``.
    :param sections: top-level settings tables the plugin owns (``[pipelines]``, say).
    """

    name: str
    title: str = ""
    version: str = ""
    requires: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    settings: Mapping[str, Setting] = attrs.field(factory=dict)
    sections: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    description: str = ""


@attrs.frozen
class Contribution:
    """What one plugin's implementation returned from a hook called with
    :meth:`PluginManager.call_each`, or the exception it raised (with ``keep_going``).

    :ivar plugin: the plugin's name.
    :ivar result: the implementation's return value (``None`` when it raised).
    :ivar error: the exception it raised, or ``None``.
    """

    plugin: str
    result: Any = None
    error: BaseException | None = None


@attrs.frozen
class LoadedPlugin:
    """A plugin registered in one app."""

    info: PluginInfo
    obj: Any
    builtin: bool = False


def installed_plugins() -> dict[str, importlib.metadata.EntryPoint]:
    """The plugins installed in this environment, by name (entry point group ``crmcore.plugins``)."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def plugin_info(obj: Any, *, default_name: str) -> PluginInfo:
    """The :class:`PluginInfo` of a plugin object: its ``PLUGIN`` or its package's."""
    info = getattr(obj, "PLUGIN", None)
    if info is None and isinstance(obj, ModuleType) and "." in obj.__name__:
        parent = importlib.import_module(obj.__name__.rpartition(".")[0])
        info = getattr(parent, "PLUGIN", None)
    if info is None:
        info = PluginInfo(name=default_name)
    if not isinstance(info, PluginInfo):
        raise PluginError(f"plugin {default_name!r}: PLUGIN must be a crmcore.PluginInfo, got {info!r}", plugin=default_name)
    return info


def _wrap_impl(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    """The hook dispatcher: the one place that turns a plugin's stray exception into PluginError."""

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except CrmError:
            raise
        except Exception as exc:
            raise PluginError(
                f"hook {hook!r} in plugin {plugin!r} raised {type(exc).__name__}: {exc}",
                plugin=plugin, hook=hook,
            ) from exc

    return call


def hook_items(result: Any, expected: type | tuple[type, ...], *, plugin: str, hook: str, what: str) -> list[Any]:
    """The items a plugin's hook returned: a list (or tuple) of *expected*, or ``None`` for none.

    :param what: the expected items in words, for the message (``"crmcore.Field objects"``).
    :raises PluginError: naming the plugin, the hook, what it returned and what was expected.
    """
    if result is None:
        return []
    if not isinstance(result, (list, tuple)):
        raise PluginError(f"hook {hook!r} in plugin {plugin!r} returned {shown(result)}; expected a list of {what} "
                          "(or None)", plugin=plugin, hook=hook)
    for item in result:
        if not isinstance(item, expected):
            raise PluginError(f"hook {hook!r} in plugin {plugin!r} returned a list holding {shown(item)}; "
                              f"expected a list of {what}", plugin=plugin, hook=hook)
    return list(result)


def _check_disabled(
    disabled: tuple[str, ...], enabled: list[str], builtins: list[tuple[Any, PluginInfo, bool]], *,
    source: str, path: str | None,
) -> None:
    """Refuse an essential plugin, or one that is not a default plugin, in ``[crm] disabled``,
    and a plugin that is both enabled and disabled."""
    essential = [info.name for _, info, is_essential in builtins if is_essential]
    defaults = [*(info.name for _, info, is_essential in builtins if not is_essential), *DEFAULT_ENTRY_POINTS]
    for name in disabled:
        if name in essential:
            raise ConfigError(
                f"{source}: crm.disabled: plugin {name!r} is essential and cannot be disabled; "
                f"essential plugins: {', '.join(essential)}", path=path, key="crm.disabled",
            )
        if name not in defaults:
            raise ConfigError(
                f"{source}: crm.disabled: {name!r} is not a default plugin; default plugins: {', '.join(defaults)} "
                "(other plugins run only when listed in crm.plugins)", path=path, key="crm.disabled",
            )
        if name in enabled:
            raise ConfigError(
                f"{source}: plugin {name!r} is listed both in crm.plugins and in crm.disabled; keep one",
                path=path, key="crm.disabled",
            )
#: The record hooks and their batch-shaped signatures (a single write is a batch of one).
RECORD_HOOKS = {
    "crm_before_create": "crm_before_create(uow, entity, items: list[dict]) -> list[dict | None] | None",
    "crm_after_create": "crm_after_create(uow, entity, records: list[Record])",
    "crm_before_update": "crm_before_update(uow, entity, items: list[tuple[Record, dict]]) -> list[dict | None] | None",
    "crm_after_update": "crm_after_update(uow, entity, items: list[tuple[Record, Record, dict]])",
    "crm_before_delete": "crm_before_delete(uow, entity, records: list[Record])",
    "crm_after_delete": "crm_after_delete(uow, entity, records: list[Record])",
    "crm_before_move": "crm_before_move(uow, entity, moves: list[tuple[Record, Transition, Mapping]])",
    "crm_after_move": "crm_after_move(uow, entity, moves: list[tuple[Record, Record, str | None, str | None]])",
}
#: Record hooks that are gone, and the hook that replaces each.
RETIRED_HOOKS = {
    "crm_before_update_many": "crm_before_update",
    "crm_after_update_many": "crm_after_update",
    "crm_before_move_many": "crm_before_move",
    "crm_record_moved": "crm_after_move",
    "crm_records_moved": "crm_after_move",
}
#: Where plugin authors read how to convert their record hooks.
MIGRATION_NOTE = 'see "Migrating to batch-shaped record hooks" in docs/plugin-guide.md'
# the arguments of the per-record forms that the batch forms no longer pass
_FORMER_ARGUMENTS = {
    "crm_before_create": frozenset({"values"}),
    "crm_after_create": frozenset({"record"}),
    "crm_before_update": frozenset({"record", "changes"}),
    "crm_after_update": frozenset({"old", "new", "changes"}),
    "crm_before_delete": frozenset({"record"}),
    "crm_after_delete": frozenset({"record"}),
    "crm_before_move": frozenset({"record", "transition", "values"}),
    "crm_after_move": frozenset({"old", "new", "source", "target"}),
}


class PluginManager:
    """The plugins of one app: a pluggy manager plus what each plugin said about itself."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, LoadedPlugin] = {}
        self.own_settings: Mapping[str, Mapping[str, Any]] = {}  # set by the app once checked
        self._subsets: dict[tuple[str, str], Any] = {}  # see call_each
        #: the default plugins left out by ``[crm] disabled``
        self.disabled: tuple[str, ...] = ()
        #: the default first-party plugins (:data:`DEFAULT_ENTRY_POINTS`) that are not installed
        self.missing_defaults: tuple[str, ...] = ()
        if os.environ.get("CRM_TRACE_HOOKS"):
            self.pm.trace.root.setwriter(lambda text: log.debug("hook: %s", text.rstrip()))
            self.pm.enable_tracing()

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def load(
        self, enabled: Iterable[str], extra: Iterable[Any] = (), *, disabled: Iterable[str] = (),
        source: str = "settings", path: str | None = None,
    ) -> None:
        """Register the builtins, the enabled installed plugins (and what they require), the
        default first-party plugins that are installed (:data:`DEFAULT_ENTRY_POINTS`), then
        *extra* plugin objects, and check every hook implementation against a spec. A name
        (text) among *extra* enables that installed plugin, like a name in *enabled*.

        :param disabled: names of default plugins left out (``[crm] disabled``).
        :param source: where the settings come from, for messages; *path* their file.
        :raises ConfigError: an essential plugin, or a plugin that is not a default one, in
            *disabled*; a plugin both enabled and disabled.
        :raises PluginError: unknown plugin, missing requirement, cycle, misspelt hook.
        """
        extra = list(extra)
        enabled = [*enabled, *(name for name in extra if isinstance(name, str) and name not in enabled)]
        extra = [obj for obj in extra if not isinstance(obj, str)]
        builtins = []
        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            builtins.append((module, plugin_info(module, default_name=module_name), module_name in ESSENTIAL_PLUGINS))
        self.disabled = tuple(dict.fromkeys(disabled))
        _check_disabled(self.disabled, enabled, builtins, source=source, path=path)
        for module, info, _ in builtins:
            if info.name not in self.disabled:
                self._register(module, info, builtin=True)

        installed = installed_plugins()
        self.missing_defaults = tuple(n for n in DEFAULT_ENTRY_POINTS if n not in installed and n not in self.disabled)
        enabled = [*enabled, *(n for n in DEFAULT_ENTRY_POINTS if n in installed and n not in self.disabled and n not in enabled)]
        objects: dict[str, tuple[PluginInfo, Any]] = {}
        for obj in extra:
            info = plugin_info(obj, default_name=getattr(obj, "__name__", type(obj).__name__))
            objects[info.name] = (info, obj)

        def load_named(name: str, needed_by: str | None) -> tuple[PluginInfo, Any]:
            if name in objects:
                return objects[name]
            if name in self.disabled:
                raise PluginError(f"plugin {needed_by!r} requires {name!r}, which is disabled in [crm] disabled; "
                                  f"remove {name!r} from it or disable {needed_by!r} too", plugin=needed_by or name)
            if name not in installed:
                known = ", ".join(sorted(installed)) or "none"
                if needed_by:
                    raise PluginError(
                        f"plugin {needed_by!r} requires {name!r}, which is not installed; installed plugins: {known}",
                        plugin=needed_by,
                    )
                raise PluginError(
                    f"unknown plugin {name!r} in [crm] plugins; installed plugins: {known}", plugin=name
                )
            try:
                obj = installed[name].load()
            except Exception as exc:
                raise PluginError(f"plugin {name!r} failed to import: {type(exc).__name__}: {exc}", plugin=name) from exc
            info = plugin_info(obj, default_name=name)
            if info.name != name:
                info = attrs.evolve(info, name=name)
            if not info.version:
                dist = getattr(installed[name], "dist", None)
                info = attrs.evolve(info, version=getattr(dist, "version", "") or "")
            objects[name] = (info, obj)
            return objects[name]

        order: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, path: tuple[str, ...], needed_by: str | None) -> None:
            if state.get(name) == "done" or (name in self.plugins and name not in objects):
                return  # ordered already, or a builtin
            if state.get(name) == "visiting":
                cycle = " -> ".join((*path[path.index(name):], name))
                raise PluginError(f"plugins require each other in a cycle: {cycle}", plugin=name)
            state[name] = "visiting"
            info, _ = load_named(name, needed_by)
            for required in info.requires:
                visit(required, (*path, name), name)
            state[name] = "done"
            order.append(name)

        for name in [*enabled, *(n for n in objects if n not in enabled)]:
            visit(name, (), None)
        for name in order:
            info, obj = objects[name]
            self._register(obj, info, builtin=False)
        # plugins offering hooks of their own add the specs before implementations are checked
        self.pm.hook.crm_add_hookspecs.call_historic(kwargs={"plugin_manager": self.pm})
        self._check_pending()

    def _check_pending(self) -> None:
        """Refuse hook implementations that match no specification, naming plugin and hook."""
        specified = [n for n, c in vars(self.pm.hook).items() if not n.startswith("_") and c.has_spec()]
        for name, caller in sorted(vars(self.pm.hook).items()):
            if name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                close = difflib.get_close_matches(name, specified, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PluginError(
                    f"plugin {impl.plugin_name!r} implements unknown hook {name!r}{hint}; "
                    "check the spelling of the hook name",
                    plugin=impl.plugin_name, hook=name,
                )
        self.pm.check_pending()  # anything the loop above did not cover

    def _check_record_hooks(self, obj: Any, plugin: str) -> None:
        """Refuse a retired record hook, or a record hook with its former per-record
        arguments, naming the plugin, the hook and the batch-shaped signature to use."""
        for name in dir(obj):
            if not name.startswith("crm_") or self.pm.parse_hookimpl_opts(obj, name) is None:
                continue
            renamed = RETIRED_HOOKS.get(name)
            if renamed is not None:
                raise PluginError(
                    f"plugin {plugin!r} implements {name!r}, which is gone: record hooks are batch-shaped, one per event; "
                    f"implement {RECORD_HOOKS[renamed]} instead ({MIGRATION_NOTE})",
                    plugin=plugin, hook=name,
                )
            if name in RECORD_HOOKS:
                try:
                    arguments = set(inspect.signature(getattr(obj, name)).parameters)
                except (TypeError, ValueError):  # not introspectable: pluggy judges it
                    continue
                former = sorted(arguments & _FORMER_ARGUMENTS[name])
                if former:
                    raise PluginError(
                        f"plugin {plugin!r} implements {name!r} with the former per-record argument(s) "
                        f"{', '.join(former)}; the hook is batch-shaped now: {RECORD_HOOKS[name]} ({MIGRATION_NOTE})",
                        plugin=plugin, hook=name,
                    )

    def _name_of(self, obj: Any) -> str | None:
        for loaded in self.plugins.values():
            if loaded.obj is obj:
                return loaded.info.name
        return None

    def _register(self, obj: Any, info: PluginInfo, *, builtin: bool) -> None:
        if info.name in self.plugins:
            return
        self._check_record_hooks(obj, info.name)
        try:
            self.pm.register(obj, name=info.name)
        except ValueError as exc:  # the same object registered under two names
            raise PluginError(f"plugin {info.name!r} cannot be registered: {exc}", plugin=info.name) from None
        except pluggy.PluginValidationError as exc:
            detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise PluginError(f"plugin {info.name!r} cannot be registered: {detail}", plugin=info.name) from None
        for caller in self.pm.get_hookcallers(obj) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is obj and not (impl.wrapper or impl.hookwrapper):
                    impl.function = _wrap_impl(impl.function, info.name, caller.name)  # type: ignore[misc]  # Final in pluggy; wrapped on purpose
        self.plugins[info.name] = LoadedPlugin(info, obj, builtin)
        log.debug("registered plugin %s", info.name)

    def plugin_settings(self, settings: Mapping[str, Mapping[str, Any]], *, source: str) -> dict[str, dict[str, Any]]:
        """Check each ``[plugins.<name>]`` table against the plugin's declared settings.

        :returns: ``{plugin: settings with defaults}`` for every registered plugin.
        :raises ConfigError: naming the file, key and value.
        """
        from crmcore.settings import check_value

        for name in settings:
            if name not in self.plugins:
                raise ConfigError(
                    f"{source}: [plugins.{name}] configures a plugin that is not enabled; "
                    f"enabled: {', '.join(sorted(n for n, p in self.plugins.items() if not p.builtin)) or 'none'}",
                    path=source, key=f"plugins.{name}",
                )
        result: dict[str, dict[str, Any]] = {}
        for name, loaded in self.plugins.items():
            table = dict(settings.get(name, {}))
            declared = loaded.info.settings
            for key, value in table.items():
                if key not in declared:
                    known = ", ".join(sorted(declared)) or "none"
                    raise ConfigError(
                        f"{source}: unknown key plugins.{name}.{key} = {value!r}; known keys: {known}",
                        path=source, key=f"plugins.{name}.{key}",
                    )
                setting = declared[key]
                check_value(value, setting.type, key=f"plugins.{name}.{key}", source=source,
                            minimum=setting.minimum, maximum=setting.maximum)
            for key, setting in declared.items():
                if key not in table:
                    if setting.required:
                        raise ConfigError(f"{source}: plugins.{name}.{key} is required", path=source, key=f"plugins.{name}.{key}")
                    table[key] = setting.default
            result[name] = table
        return result

    def call_each(
        self, name: str, /, *, own_settings: bool = False, keep_going: bool = False, **kwargs: Any,
    ) -> list[Contribution]:
        """Call hook *name* through pluggy once for each plugin implementing it, in plugin order
        (builtin defaults marked ``trylast`` first, then the plugins in the order they were
        registered: every plugin after the plugins it requires), and return each non-``None``
        result with the name of the plugin that returned it.

        The core uses it for the hooks whose results it keeps per plugin (entity types, rules,
        commands, job handlers, migrations) and for the ones that must run in plugin order
        (``crm_configure``, ``crm_demo``, ``crm_shutdown``). Each plugin is called through a
        pluggy caller restricted to it, so tracing and hook wrappers apply as for any call.

        :param own_settings: pass each plugin its own ``[plugins.<name>]`` table (declared
            defaults filled in) as the ``settings`` argument.
        :param keep_going: when an implementation raises, record the exception in its
            :class:`Contribution` and call the next plugin (``crm_shutdown``).
        :returns: the contributions in plugin order.
        """
        implementing: list[str] = []
        hook = getattr(self.pm.hook, name, None)
        for impl in hook.get_hookimpls() if hook is not None else ():
            if impl.plugin_name not in implementing:
                implementing.append(impl.plugin_name)
        found: list[Contribution] = []
        for plugin in implementing:
            caller = self._subsets.get((name, plugin))
            if caller is None:
                others = [self.pm.get_plugin(p) for p in implementing if p != plugin]
                caller = self._subsets[(name, plugin)] = self.pm.subset_hook_caller(name, others)
            arguments = {**kwargs, "settings": self.own_settings.get(plugin, {})} if own_settings else kwargs
            try:
                results = caller(**arguments)
            except Exception as exc:
                if not keep_going:
                    raise
                found.append(Contribution(plugin, None, exc))
                continue
            found.extend(Contribution(plugin, result) for result in reversed(results))
        return found

    def owner_of_impl(self, obj: Any) -> str:
        return self._name_of(obj) or repr(obj)
