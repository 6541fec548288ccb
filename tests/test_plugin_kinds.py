"""Essential, default and optional plugins: essential builtins always run and cannot be
disabled; default ones (the other builtins, and the first-party ``sales`` plugin when it is
installed) run unless ``[crm] disabled`` lists them; the others run when ``[crm] plugins`` does."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest
from click.testing import CliRunner

from crmcore import ConfigError, PluginError, PluginInfo, create_app, hookimpl
from crmcore.cli import CliState, main
from crmcore.settings import load_settings


class FakeEntryPoint:
    """Stands in for an installed plugin's entry point."""

    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self._obj = obj
        self.dist = types.SimpleNamespace(version="2.0.0")

    def load(self) -> Any:
        return self._obj


def plugin(name: str, *, requires: tuple[str, ...] = ()) -> Any:
    return type(f"Plugin_{name}", (), {"PLUGIN": PluginInfo(name=name, title=f"The {name} plugin", requires=requires)})()


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``installed(name=obj, ...)`` makes those the installed plugins (and no other)."""

    def install(**objects: Any) -> None:
        entry_points = {name: FakeEntryPoint(name, obj) for name, obj in objects.items()}
        monkeypatch.setattr("crmcore.plugins.installed_plugins", lambda: entry_points)
        monkeypatch.setattr("crmcore.builtin.cli.installed_plugins", lambda: entry_points)

    return install


def names(app: Any) -> list[str]:
    return list(app.plugins.plugins)


@pytest.mark.parametrize("name", ["core", "core.permissions", "core.workflow", "core.opportunities"])
def test_an_essential_plugin_cannot_be_disabled(crm_factory: Any, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        crm_factory(settings={"crm": {"disabled": [name]}})
    assert str(info.value) == (
        f"settings: crm.disabled: plugin {name!r} is essential and cannot be disabled; "
        "essential plugins: core, core.permissions, core.workflow, core.opportunities"
    )
    assert info.value.key == "crm.disabled"


def test_a_default_builtin_can_be_disabled(crm_factory: Any) -> None:
    app = crm_factory(settings={"crm": {"disabled": ["core.rules", "core.access"]}})
    assert "core.rules" not in names(app) and "core.access" not in names(app)
    assert {"core", "core.query", "core.jobs"} <= set(names(app))


def test_only_default_plugins_can_be_disabled(crm_factory: Any, installed: Any) -> None:
    installed(helpdesk=plugin("helpdesk"))
    with pytest.raises(ConfigError, match=r"crm.disabled: 'helpdesk' is not a default plugin; default plugins: core.cli, "
                                          r".*, sales \(other plugins run only when listed in crm.plugins\)"):
        crm_factory(settings={"crm": {"disabled": ["helpdesk"]}})


def test_a_plugin_both_enabled_and_disabled_is_refused(crm_factory: Any, installed: Any) -> None:
    installed(sales=plugin("sales"))
    with pytest.raises(ConfigError, match="plugin 'sales' is listed both in crm.plugins and in crm.disabled; keep one"):
        crm_factory(["sales"], settings={"crm": {"disabled": ["sales"]}})


def test_a_plugin_requiring_a_disabled_one_is_refused(crm_factory: Any, installed: Any) -> None:
    installed(sales=plugin("sales"), quotes=plugin("quotes", requires=("sales",)))
    with pytest.raises(PluginError, match="plugin 'quotes' requires 'sales', which is disabled in \\[crm\\] disabled"):
        crm_factory(["quotes"], settings={"crm": {"disabled": ["sales"]}})


def test_the_sales_plugin_runs_by_default_when_installed_and_can_be_disabled(crm_factory: Any, installed: Any) -> None:
    installed(sales=plugin("sales"), helpdesk=plugin("helpdesk"))
    app = crm_factory()
    assert "sales" in names(app) and "helpdesk" not in names(app)
    assert app.plugins.plugins["sales"].info.version == "2.0.0"
    assert "sales" not in names(crm_factory(settings={"crm": {"disabled": ["sales"]}}))


def test_without_the_sales_plugin_installed_an_app_still_starts(crm_factory: Any, installed: Any) -> None:
    installed()
    app = crm_factory()
    assert "sales" not in names(app) and app.plugins.missing_defaults == ("sales",)
    with app.unit_of_work() as uow:  # the core keeps the lead and its sales fields
        lead = uow.create("lead", last_name="Hopper")
        assert lead.values["temperature"] is None and "domain" in app.registry.entity("account").field_names


def test_crm_plugins_keeps_working_beside_the_default_ones(crm_factory: Any, installed: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    installed(sales=plugin("sales"), helpdesk=plugin("helpdesk"))
    monkeypatch.setenv("CRM_PLUGINS", "helpdesk")
    assert {"sales", "helpdesk"} <= set(names(crm_factory()))


def test_disabled_must_be_a_list_of_names() -> None:
    with pytest.raises(ConfigError, match="crm.disabled must be a list, got 'sales'"):
        load_settings({"crm": {"disabled": "sales"}})


class Hello:
    PLUGIN = PluginInfo(name="hello", title="Hello")

    @hookimpl
    def crm_configure(self) -> None:
        return None


def test_plugins_list_shows_the_kinds_and_a_default_plugin_not_installed(installed: Any, tmp_path: Any) -> None:
    installed(helpdesk=plugin("helpdesk"))
    url = f"sqlite:///{tmp_path / 'kinds.db'}"
    create_app(database=url).close()
    result = CliRunner().invoke(main, ["--db", url, "plugins", "list", "--json"], obj=CliState(plugins=[Hello()]),
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert (rows["core"]["kind"], rows["core"]["enabled"]) == ("essential", True)
    assert (rows["core.rules"]["kind"], rows["core.rules"]["enabled"]) == ("default", True)
    assert (rows["helpdesk"]["kind"], rows["helpdesk"]["enabled"]) == ("optional", False)
    assert rows["sales"] == {"name": "sales", "enabled": False, "builtin": False, "kind": "default", "installed": False,
                             "version": "", "requires": [], "title": "not installed"}
    table = CliRunner().invoke(main, ["--db", url, "plugins", "list"], catch_exceptions=False).stdout
    assert any(line.split()[:3] == ["sales", "no", "default"] and line.endswith("not installed") for line in table.splitlines())


def test_plugins_list_shows_a_disabled_builtin(tmp_path: Any) -> None:
    settings = tmp_path / "crm.toml"
    url = f"sqlite:///{tmp_path / 'off.db'}"
    settings.write_text(f'[crm]\ndatabase = "{url}"\ndisabled = ["core.rules"]\n')
    create_app(str(settings)).close()
    result = CliRunner().invoke(main, ["--config", str(settings), "plugins", "list", "--json"], catch_exceptions=False)
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert (rows["core.rules"]["enabled"], rows["core.rules"]["kind"]) == (False, "default")
