"""The conformance check of a plugin: does it follow the rules every crmcore plugin follows?

:func:`check_plugin` looks at one plugin, installed (entry point group ``crmcore.plugins``) or
given as an object, and collects *every* failure before raising one :class:`AssertionError`
that lists them all, so a plugin author fixes them in one go:

- the plugin is installed or given, and its :class:`~crmcore.plugins.PluginInfo` carries the
  name it is enabled by;
- every ``@hookimpl`` matches a hook specification (the core's, or one a plugin adds through
  ``crm_add_hookspecs``), and asks only for arguments that specification offers;
- every plugin it requires exists;
- an app with the plugin starts;
- the tables it owns are named ``<plugin>_<entity>``, and the columns it adds to other entity
  types' tables ``<plugin>_<field>``;
- the permissions it declares are named ``<plugin>.<...>``;
- the marshmallow schema of each entity type it owns or extends round-trips a sample record
  created through a unit of work;
- its package has a ``README.md``;
- its source reaches records only through the unit of work's secured road: no use of the
  unit's ``connection``, of ``registry.table(...)`` or of the core's tables (a plugin's own
  non-record tables go through ``uow.raw(plugin)``); see
  :func:`crmcore.storage.raw.raw_access_uses`. Plugins in :data:`RAW_ACCESS_SCHEDULED`, whose
  conversion is scheduled, are exempt until it lands.

A plugin's ``tests/test_conformance.py`` is usually one line::

    from crmcore.testing import check_plugin

    def test_plugin_conforms():
        check_plugin("helpdesk")
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.metadata
import inspect
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from crmcore import hookspecs
from crmcore.errors import CrmError
from crmcore.plugins import DEFAULT_PLUGINS, PluginInfo, installed_plugins, plugin_info
from crmcore.storage.raw import raw_access_uses

if TYPE_CHECKING:
    from crmcore.app import Crm
    from crmcore.registry import EntityType

__all__ = ["RAW_ACCESS_SCHEDULED", "ConformanceReport", "check_plugin", "conformance_failures"]

#: Plugins whose raw-connection reads and writes of records predate the secured data API and
#: whose conversion to it is scheduled: the data-access check does not fail them meanwhile
#: (``raw_access_uses`` still lists their uses). Remove a name once its plugin is converted.
RAW_ACCESS_SCHEDULED: frozenset[str] = frozenset()


class ConformanceReport:
    """The failures found for one plugin, in the order the checks ran."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failures: list[str] = []

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def __bool__(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        if not self.failures:
            return f"plugin {self.name!r} conforms"
        lines = [f"plugin {self.name!r} does not conform ({len(self.failures)} problem(s)):"]
        lines += [f"  - {failure}" for failure in self.failures]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ConformanceReport {self.name} failures={len(self.failures)}>"


def check_plugin(
    name: str,
    *,
    plugins: Sequence[Any] = (),
    database: str = "sqlite://",
    settings: Mapping[str, Any] | None = None,
) -> None:
    """Check that plugin *name* follows the plugin rules; see the module docs for the list.

    :param name: the plugin's name (its entry point name, and its ``PluginInfo.name``).
    :param plugins: plugin objects to use besides the installed ones (the plugin itself, when it
        is not installed, and any it requires).
    :param database: where to build the throwaway app; on PostgreSQL the check works in a schema
        of its own, dropped afterwards.
    :param settings: a dict shaped like ``crm.toml`` for the throwaway app, for a plugin with
        required settings (its ``[crm] database`` and ``plugins`` are set by the check).
    :raises AssertionError: listing every problem found.
    """
    report = conformance_failures(name, plugins=plugins, database=database, settings=settings)
    if not report:
        raise AssertionError(str(report))


def conformance_failures(
    name: str,
    *,
    plugins: Sequence[Any] = (),
    database: str = "sqlite://",
    settings: Mapping[str, Any] | None = None,
) -> ConformanceReport:
    """Run every check on plugin *name* and return the report instead of raising."""
    report = ConformanceReport(name)
    installed = installed_plugins()
    given = _given_by_name(plugins)
    obj = _resolve(name, given, installed, report)
    if obj is None:
        return report
    info = _check_info(name, obj, given, installed, report)
    requirements_ok = _check_requirements(name, info, given, installed, report)
    related = [o for n, o in given.items() if n != name]
    related += _load_installed(info.requires, given, installed)
    hooks_ok = _check_hookimpls(name, obj, related, report)
    if not (requirements_ok and hooks_ok):
        report.fail("the remaining checks need an app with the plugin; fix the problems above first")
    else:
        with _app(name, obj, plugins, given, database, settings, report) as crm:
            if crm is not None:
                _check_names(name, crm, report)
                _check_permissions(name, crm, report)
                _check_round_trip(name, crm, report)
    _check_readme(name, obj, report)
    _check_data_access(name, obj, report)
    return report


# -- finding the plugin ------------------------------------------------------------------------


def _given_by_name(plugins: Sequence[Any]) -> dict[str, Any]:
    given: dict[str, Any] = {}
    for obj in plugins:
        default = getattr(obj, "__name__", type(obj).__name__)
        try:
            info = plugin_info(obj, default_name=default)
        except CrmError:
            info = PluginInfo(name=default)
        given[info.name] = obj
    return given


def _resolve(name: str, given: dict[str, Any], installed: dict[str, importlib.metadata.EntryPoint], report: ConformanceReport) -> Any:
    if name in given:
        return given[name]
    if name not in installed:
        known = ", ".join(sorted(installed)) or "none"
        report.fail(
            f"plugin {name!r} is not installed (no entry point {name!r} in group 'crmcore.plugins'; "
            f"installed plugins: {known}) and was not given in plugins=[...]; install its package "
            "with 'pip install -e <folder>' or pass the plugin object"
        )
        return None
    try:
        return installed[name].load()
    except Exception as exc:  # any import failure of third-party code is a finding
        report.fail(f"entry point {installed[name].value!r} of plugin {name!r} fails to import: {type(exc).__name__}: {exc}")
        return None


def _check_info(name: str, obj: Any, given: dict[str, Any], installed: dict[str, importlib.metadata.EntryPoint], report: ConformanceReport) -> PluginInfo:
    try:
        info = plugin_info(obj, default_name=name)
    except CrmError as exc:
        report.fail(str(exc))
        return PluginInfo(name=name)
    declared = getattr(obj, "PLUGIN", None)
    if declared is None and isinstance(obj, ModuleType) and "." in obj.__name__:
        declared = getattr(sys.modules.get(obj.__name__.rpartition(".")[0]), "PLUGIN", None)
    if declared is None:
        report.fail(
            f"plugin {name!r} declares no PluginInfo; add PLUGIN = PluginInfo(name={name!r}, ...) "
            "to its package's __init__.py"
        )
    elif info.name != name:
        where = f"entry point {name!r}" if name in installed and name not in given else f"name {name!r}"
        report.fail(f"PluginInfo name {info.name!r} does not match the {where}; use the same name in both")
    return info


def _check_requirements(name: str, info: PluginInfo, given: dict[str, Any], installed: dict[str, importlib.metadata.EntryPoint], report: ConformanceReport) -> bool:
    ok = True
    builtin = {_builtin_name(module) for module in DEFAULT_PLUGINS}
    for required in info.requires:
        if required == name:
            report.fail(f"plugin {name!r} requires itself; remove {name!r} from PluginInfo.requires")
            ok = False
        elif required not in installed and required not in given and required not in builtin:
            known = ", ".join(sorted(installed)) or "none"
            report.fail(f"plugin {name!r} requires {required!r}, which is not installed; installed plugins: {known}")
            ok = False
    return ok


def _builtin_name(module_name: str) -> str:
    module = importlib.import_module(module_name)
    return plugin_info(module, default_name=module_name).name


def _load_installed(names: Iterable[str], given: dict[str, Any], installed: dict[str, importlib.metadata.EntryPoint]) -> list[Any]:
    found = []
    for required in names:
        if required in installed and required not in given:
            with contextlib.suppress(Exception):  # reported by _check_requirements / the app start
                found.append(installed[required].load())
    return found


# -- hook implementations ----------------------------------------------------------------------


def _hookimpls(pm: pluggy.PluginManager, obj: Any) -> Iterator[tuple[str, str, Any, Any]]:
    """``(attribute, hook name, function, options)`` of every ``@hookimpl`` on *obj*."""
    for attribute in sorted(dir(obj)):
        if attribute.startswith("__"):
            continue
        try:
            opts = pm.parse_hookimpl_opts(obj, attribute)
        except Exception:  # an attribute that cannot be inspected is not a hookimpl
            continue
        if opts is None:
            continue
        function = getattr(obj, attribute)
        yield attribute, opts.get("specname") or attribute, function, opts


def _check_hookimpls(name: str, obj: Any, related: Sequence[Any], report: ConformanceReport) -> bool:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for plugin in (*related, obj):
        for _, hook_name, function, _ in _hookimpls(pm, plugin):
            if hook_name == "crm_add_hookspecs":
                try:
                    function(*[{"plugin_manager": pm}.get(a) for a in _argnames(function)])
                except Exception as exc:  # third-party code: report, keep checking
                    if plugin is obj:
                        report.fail(f"crm_add_hookspecs of plugin {name!r} raised {type(exc).__name__}: {exc}")
    known = sorted(n for n in vars(pm.hook) if not n.startswith("_"))
    ok = True
    for attribute, hook_name, function, opts in _hookimpls(pm, obj):
        caller = getattr(pm.hook, hook_name, None)
        spec = caller.spec if caller is not None else None
        if spec is None:
            if opts.get("optionalhook"):
                continue
            close = difflib.get_close_matches(hook_name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known hooks: {', '.join(known)}"
            label = hook_name if attribute == hook_name else f"{hook_name} (function {attribute!r})"
            report.fail(f"hookimpl {label} of plugin {name!r} matches no hook specification{hint}")
            ok = False
            continue
        args = _argnames(function)
        unknown = [a for a in args if a not in spec.argnames and a not in spec.kwargnames]
        if unknown:
            report.fail(
                f"hookimpl {hook_name} of plugin {name!r} asks for {', '.join(map(repr, unknown))}, "
                f"which the spec does not offer; it offers: {', '.join(spec.argnames) or 'nothing'}"
            )
            ok = False
        if caller is not None and caller.is_historic() and (opts.get("wrapper") or opts.get("hookwrapper")):
            report.fail(f"hookimpl {hook_name} of plugin {name!r} is a wrapper, but the hook is historic")
            ok = False
    return ok


def _argnames(function: Any) -> list[str]:
    """The arguments a hookimpl asks for: positional parameters without a default."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in positional and p.default is inspect.Parameter.empty]


# -- the app -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _app(
    name: str,
    obj: Any,
    plugins: Sequence[Any],
    given: dict[str, Any],
    database: str,
    settings: Mapping[str, Any] | None,
    report: ConformanceReport,
) -> Iterator[Crm | None]:
    from crmcore.app import create_app
    from crmcore.settings import load_settings

    schema = f"conformance_{uuid.uuid4().hex[:12]}" if database.startswith("postgresql") else None
    url = database if schema is None else _create_schema(database, schema)
    objects = list(plugins) if name in given else [*plugins, obj]
    crm = None
    try:
        try:
            data = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in (settings or {}).items()}
            data["crm"] = {**data.get("crm", {}), "database": url, "plugins": [name]}
            crm = create_app(load_settings(data), plugins=objects)
            crm.create_schema()
        except Exception as exc:  # anything that stops the app is the finding
            report.fail(f"an app with plugin {name!r} does not start: {type(exc).__name__}: {exc}")
            crm = None
        yield crm
    finally:
        if crm is not None:
            with contextlib.suppress(Exception):
                crm.close()
        if schema is not None:
            _drop_schema(database, schema)


def _create_schema(database: str, schema: str) -> str:
    import sqlalchemy as sa

    from crmcore.storage.engine import make_engine

    engine = make_engine(database)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        engine.dispose()
    url = sa.engine.make_url(database).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _drop_schema(database: str, schema: str) -> None:
    from crmcore.storage.engine import make_engine

    engine = make_engine(database)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        engine.dispose()


def _check_names(name: str, crm: Crm, report: ConformanceReport) -> None:
    prefix = f"{name}_"
    for entity in crm.registry:
        if entity.origin == name:
            if not entity.table.startswith(prefix):
                report.fail(
                    f"table {entity.table!r} of entity type {entity.name!r} does not start with {prefix!r}; "
                    f"leave EntityType(table=...) unset to get {prefix + entity.name!r}"
                )
            continue
        for field in entity.fields:
            if field.origin == name and not field.column.startswith(prefix):
                report.fail(
                    f"column {field.column!r} that plugin {name!r} adds to {entity.table!r} (field "
                    f"{entity.name}.{field.name}) does not start with {prefix!r}; leave Field(column=...) unset"
                )


def _permission_names(name: str, crm: Crm) -> list[str]:
    """The permission names plugin *name* declares, wherever the app keeps them.

    Permissions come from hooks whose name ends in ``permissions`` and that take no arguments
    (declarations), and from a registry that keeps ``permissions`` with an ``origin``.
    """
    names: list[str] = []

    def collect(values: Any) -> None:
        if values is None:
            return
        if isinstance(values, str):
            names.append(values)
            return
        if isinstance(values, dict):
            values = list(values.values()) if all(not isinstance(k, str) for k in values) else list(values)
        for value in values:
            if isinstance(value, str):
                names.append(value)
            elif isinstance(getattr(value, "name", None), str):
                names.append(value.name)

    for hook_name, caller in vars(crm.hook).items():
        if hook_name.startswith("_") or not hook_name.endswith("permissions") or caller.spec is None or caller.spec.argnames:
            continue
        for part in crm.plugins.call_each(hook_name, keep_going=True):  # a failing hook is found by the app's own tests
            if part.plugin == name and part.error is None:
                collect(part.result)
    declared = getattr(crm.registry, "permissions", None)
    if declared is not None and not callable(declared):
        items = declared.values() if isinstance(declared, dict) else declared
        collect([p for p in items if getattr(p, "origin", None) == name])
    return sorted(set(names))


def _check_permissions(name: str, crm: Crm, report: ConformanceReport) -> None:
    prefix = f"{name}."
    for permission in _permission_names(name, crm):
        if not permission.startswith(prefix):
            report.fail(f"permission {permission!r} of plugin {name!r} does not start with {prefix!r}")


def _check_round_trip(name: str, crm: Crm, report: ConformanceReport) -> None:
    from crmcore.testing import create_sample, sample_values

    entities: list[EntityType] = [
        e for e in crm.registry if e.origin == name or any(f.origin == name for f in e.fields)
    ]
    for entity in entities:
        if entity.origin == name:
            attempts = [sample_values(entity)]
        else:  # another's entity: samples for the fields the plugin adds, the owner's required
            # ones; when the owner's rules want some of its optional fields too (an opportunity
            # line names a product or a description), samples for all of them
            added = {k: v for k, v in sample_values(entity).items() if entity.field(k).origin == name}
            attempts = [added, {**sample_values(entity), **added}]
        first: Exception | None = None
        for values in attempts:
            try:
                with crm.unit_of_work() as uow:
                    created = create_sample(uow, entity, values)
                    record = uow.get(entity.name, created.id)
                break
            except Exception as exc:  # the finding is that no sample record can be made
                first = first or exc
        else:
            report.fail(f"cannot create a sample {entity.name!r} record: {type(first).__name__}: {first}")
            continue
        schema = crm.schemas.for_entity(entity.name)
        try:
            dumped = schema.dump(record.values)
            loaded = schema.load(dumped)
        except Exception as exc:  # marshmallow errors and type errors alike
            report.fail(f"the schema of {entity.name!r} does not round-trip a sample record: {type(exc).__name__}: {exc}")
            continue
        for field in entity.fields:
            before, after = record.values.get(field.name), loaded.get(field.name)
            if field.parse(before) != after:
                report.fail(
                    f"the schema of {entity.name!r} does not round-trip field {field.name!r}: "
                    f"{before!r} dumped as {dumped.get(field.name)!r}, loaded as {after!r}"
                )


# -- packaging ---------------------------------------------------------------------------------


def _module_of(obj: Any) -> ModuleType | None:
    if isinstance(obj, ModuleType):
        return obj
    return sys.modules.get(getattr(type(obj), "__module__", ""))


def _readme_candidates(module: ModuleType) -> list[Path]:
    top = sys.modules.get(module.__name__.partition(".")[0], module)
    file = getattr(top, "__file__", None)
    if not file:
        return []
    path = Path(file).resolve()
    if path.name == "__init__.py":
        return [path.parent / "README.md", path.parent.parent / "README.md"]
    return [path.parent / "README.md"]


def _distribution_has_readme(module: ModuleType) -> bool:
    top = module.__name__.partition(".")[0]
    for dist_name in importlib.metadata.packages_distributions().get(top, []):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            metadata = importlib.metadata.metadata(dist_name)
            if (metadata.get_payload() or "").strip():  # type: ignore[attr-defined]
                return True
    return False


def _check_readme(name: str, obj: Any, report: ConformanceReport) -> None:
    module = _module_of(obj)
    if module is None:
        report.fail(f"cannot find the package of plugin {name!r} to look for its README.md")
        return
    candidates = _readme_candidates(module)
    if any(path.is_file() for path in candidates) or _distribution_has_readme(module):
        return
    where = " or ".join(str(path) for path in candidates) or f"the package of {module.__name__}"
    report.fail(
        f"plugin {name!r} has no README.md (looked for {where}); write one saying what the plugin "
        "adds, the hooks it implements and offers, and its settings"
    )


def _check_data_access(name: str, obj: Any, report: ConformanceReport) -> None:
    module = _module_of(obj)
    if module is None or name in RAW_ACCESS_SCHEDULED or module.__name__.partition(".")[0] == "crmcore":
        return  # not found (reported by the README check), scheduled, or the core itself
    top = sys.modules.get(module.__name__.partition(".")[0], module)
    file = getattr(top, "__file__", None)
    if not file:
        return
    path = Path(file).resolve()
    uses = raw_access_uses(path.parent if path.name == "__init__.py" else path)
    if uses:
        shown = "; ".join(uses[:5]) + (f"; and {len(uses) - 5} more" if len(uses) > 5 else "")
        report.fail(
            f"plugin {name!r} reaches records past the unit of work's secured road ({shown}); read and write "
            "records with uow.get, uow.query, uow.select, uow.update_where and uow.delete_where, and its own "
            "non-record tables with uow.raw(plugin)"
        )
